//! The site table: one entry per patchable site, carrying everything the
//! engine knows about it (Linux's `dyn_ftrace` plus the engine's view).
//!
//! An entry holds the [`Record`] (address, wanted-state flags with the
//! reference count, the arch word), the call target the site holds now
//! (0: the nop; it always agrees with the bytes), the region it belongs to
//! and its function's name. Whether a site is enabled, calls the regs
//! trampoline or a callback's own trampoline is *derived* from its target
//! ([`Site::flags`]), never stored beside it.

use alloc::vec::Vec;

use crate::record::{RecFlags, Record};

/// One patchable site.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Site {
    pub(crate) rec: Record,
    /// Current call target (0: nop); agrees with the bytes.
    pub(crate) target: usize,
    /// 0 for the boot table, else a [`crate::RegionId`]'s number.
    pub(crate) region: u32,
    /// The function's name, when symbols are known.
    pub(crate) name: Option<&'static str>,
}

/// The shared trampolines' addresses, to tell targets apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Targets {
    /// `ftrace_caller`.
    pub caller: usize,
    /// `ftrace_regs_caller`.
    pub regs_caller: usize,
}

impl Site {
    /// A site not yet calling anything.
    pub(crate) fn new(rec: Record, region: u32, name: Option<&'static str>) -> Self {
        Site {
            rec,
            target: 0,
            region,
            name,
        }
    }

    /// The record.
    pub fn record(&self) -> &Record {
        &self.rec
    }

    /// The site's address.
    pub fn ip(&self) -> usize {
        self.rec.ip
    }

    /// What the site calls now (0: the nop).
    pub fn target(&self) -> usize {
        self.target
    }

    /// The function's name, when symbols are known.
    pub fn name(&self) -> Option<&'static str> {
        self.name
    }

    /// True when the site failed a check and is never touched again.
    pub fn is_failed(&self) -> bool {
        self.rec.is_failed()
    }

    /// True when the site calls a trampoline.
    pub fn is_enabled(&self) -> bool {
        self.target != 0
    }

    /// The record's stored flags (FAILED, REGS, IPMODIFY, TRAMP) with the
    /// state derived from the target: ENABLED, REGS_EN (the regs
    /// trampoline), TRAMP_EN (a callback's own trampoline).
    pub fn flags(&self, t: &Targets) -> RecFlags {
        let mut f = self.rec.rec_flags();
        f.set(RecFlags::ENABLED, self.target != 0);
        f.set(
            RecFlags::REGS_EN,
            self.target != 0 && self.target == t.regs_caller,
        );
        f.set(
            RecFlags::TRAMP_EN,
            self.target != 0 && self.target != t.caller && self.target != t.regs_caller,
        );
        f
    }
}

/// Every site, sorted by address.
#[derive(Debug, Default)]
pub(crate) struct SiteTable {
    sites: Vec<Site>,
}

impl SiteTable {
    /// Sites for these addresses in any order (zeros and duplicates
    /// dropped), all nops, in region `region`.
    pub(crate) fn from_addrs(addrs: impl IntoIterator<Item = usize>, region: u32) -> Self {
        let mut ips: Vec<usize> = addrs.into_iter().filter(|&ip| ip != 0).collect();
        ips.sort_unstable();
        ips.dedup();
        SiteTable {
            sites: ips
                .into_iter()
                .map(|ip| Site::new(Record::new(ip), region, None))
                .collect(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.sites.len()
    }

    pub(crate) fn as_slice(&self) -> &[Site] {
        &self.sites
    }

    pub(crate) fn as_mut_slice(&mut self) -> &mut [Site] {
        &mut self.sites
    }

    /// Index of the site at exactly `ip`. O(log n).
    pub(crate) fn index_of(&self, ip: usize) -> Option<usize> {
        self.sites.binary_search_by_key(&ip, |s| s.rec.ip).ok()
    }

    /// Re-sorts after backends moved addresses (within their functions)
    /// during init.
    pub(crate) fn resort(&mut self) {
        self.sites.sort_by_key(|s| s.rec.ip);
    }

    /// Keeps the sites `keep` accepts.
    pub(crate) fn retain(&mut self, keep: impl FnMut(&Site) -> bool) {
        self.sites.retain(keep);
    }

    /// Adds sites (of a region) and sorts; the caller checked that no
    /// address is already present.
    pub(crate) fn merge(&mut self, more: impl IntoIterator<Item = Site>) {
        self.sites.extend(more);
        self.resort();
        debug_assert!(
            self.sites.windows(2).all(|w| w[0].rec.ip < w[1].rec.ip),
            "duplicate site"
        );
    }
}

impl core::ops::Index<usize> for SiteTable {
    type Output = Site;
    fn index(&self, i: usize) -> &Site {
        &self.sites[i]
    }
}

impl core::ops::IndexMut<usize> for SiteTable {
    fn index_mut(&mut self, i: usize) -> &mut Site {
        &mut self.sites[i]
    }
}
