//! Code registered after boot (Linux's module load and unload): a
//! [`CodeRegion`] brings its own site table and, for backends whose sites
//! call through out-of-line stubs (ppc64), its own stub area.
//!
//! [`Ftrace::add_region`](crate::Ftrace::add_region) records and prepares
//! the region's sites and enables those the registered callbacks want;
//! [`Ftrace::remove_region`](crate::Ftrace::remove_region) turns them back
//! into nops in one batch, lets the backend release their stubs and forgets
//! them. See [`Ftrace::add_region`](crate::Ftrace::add_region) for how
//! filters apply to sites that appear later.

use alloc::vec::Vec;
use core::fmt;
use core::ops::Range;

use crate::error::SiteFailure;

/// A region of code added after boot: its site table and stub area.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeRegion {
    /// A name for reports (Linux: the module name).
    pub name: &'static str,
    /// The region's site table, in the form the boot table has (x86: the
    /// site addresses; ppc64: the functions' global entries). Any order;
    /// zeros and duplicates are dropped.
    pub sites: Vec<usize>,
    /// Memory the backend may use for the region's stubs (ppc64: one
    /// 16-byte stub per site, filled with `trap` while unused, within
    /// +-32 MiB of the sites). Empty when the backend needs none (x86).
    pub stubs: Range<usize>,
}

impl CodeRegion {
    /// The lowest and highest site-table entry (zeros ignored), if any.
    pub fn span(&self) -> Option<(usize, usize)> {
        let mut it = self.sites.iter().copied().filter(|&s| s != 0);
        let first = it.next()?;
        Some(it.fold((first, first), |(lo, hi), s| (lo.min(s), hi.max(s))))
    }
}

/// Names a region added with [`Ftrace::add_region`](crate::Ftrace::add_region).
/// Never reused by an engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RegionId(pub(crate) u32);

impl RegionId {
    /// The number (the boot table is region 0; added regions count from 1).
    pub fn get(self) -> u32 {
        self.0
    }
}

/// Result of [`Ftrace::add_region`](crate::Ftrace::add_region).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionReport {
    /// The new region, for [`Ftrace::remove_region`](crate::Ftrace::remove_region).
    pub id: RegionId,
    /// Its name.
    pub name: &'static str,
    /// Number of sites recorded.
    pub total: usize,
    /// Sites that failed to initialise (marked FAILED, never touched
    /// again), as [`InitReport::failed`](crate::InitReport::failed).
    pub failed: Vec<SiteFailure>,
    /// Sites enabled at once because registered callbacks want them.
    pub enabled: usize,
}

impl fmt::Display for RegionReport {
    /// The summary line; print each of [`failed`](Self::failed) too.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ftrace: region {}: {} sites, {} failed",
            self.name,
            self.total,
            self.failed.len()
        )
    }
}
