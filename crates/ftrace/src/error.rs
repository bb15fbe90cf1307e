//! What the engine reports: failures located at a site ([`SiteFailure`]),
//! the boot summary ([`InitReport`]) and the errors of its operations
//! ([`Error`]).

use alloc::vec::Vec;
use core::fmt;

use crate::filter::FilterError;
use crate::insn::PatchError;
use crate::symbols::SymAddr;

/// When a site failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// While preparing the site at boot ([`Ftrace::init`](crate::Ftrace::init)).
    Init,
    /// While enabling, disabling or retargeting it.
    Update,
    /// While releasing its backend resources after its region was removed
    /// ([`Arch::release_site`](crate::Arch::release_site)).
    Release,
}

/// A site that failed (Linux's `ftrace_bug` report). Display gives the line
/// the kernel prints, e.g.
/// `ftrace: failed to init site kernel::foo+0x0 at 0xffff: expected 0f 1f 44 00 00, found cc cc cc cc cc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SiteFailure {
    /// When it failed.
    pub phase: Phase,
    /// Site address (record `ip`, or the trampoline for a failed
    /// [`Arch::update_ftrace_func`](crate::Arch::update_ftrace_func)).
    pub ip: usize,
    /// The function containing the site.
    pub function: SymAddr,
    /// What went wrong, with expected and found bytes for a mismatch.
    pub error: PatchError,
}

impl fmt::Display for SiteFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let phase = match self.phase {
            Phase::Init => "init",
            Phase::Update => "update",
            Phase::Release => "release",
        };
        f.write_str("ftrace: failed to ")?;
        f.write_str(phase)?;
        match self.function.sym {
            Some(_) => write!(f, " site {}", self.function)?,
            None => f.write_str(" site <unknown>")?,
        }
        write!(f, " at {:#x}: {}", self.ip, self.error)
    }
}

/// Result of [`Ftrace::init`](crate::Ftrace::init).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitReport {
    /// Number of sites.
    pub total: usize,
    /// Sites that failed; each is marked FAILED and never touched again.
    pub failed: Vec<SiteFailure>,
}

impl fmt::Display for InitReport {
    /// The summary line; print each of [`failed`](Self::failed) too.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ftrace: {} sites, {} failed",
            self.total,
            self.failed.len()
        )
    }
}

/// Errors of the engine's operations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// [`Ftrace::init`](crate::Ftrace::init) has not run.
    NotInitialized,
    /// Tracing was killed after a patch failure; nothing is patched any more.
    Killed,
    /// The ops is already registered (here or with another engine).
    AlreadyRegistered,
    /// The ops is not registered with this engine.
    NotRegistered,
    /// Two callbacks with [`OpsFlags::IPMODIFY`](crate::ops::OpsFlags::IPMODIFY)
    /// would want the same function; nothing changed.
    IpmodifyConflict {
        /// The first site they share.
        ip: usize,
        /// Its function.
        function: SymAddr,
    },
    /// The pattern string was rejected; nothing changed. One entry per bad
    /// or unmatched pattern.
    Filter(Vec<FilterError>),
    /// Patching failed: tracing is now killed.
    Patch(SiteFailure),
    /// [`Ftrace::add_region`](crate::Ftrace::add_region): the region's sites or stubs overlap code the
    /// engine already knows; nothing changed.
    RegionOverlap {
        /// The region being added.
        name: &'static str,
        /// What it overlaps: another region's name, or `kernel` for the
        /// boot site table.
        with: &'static str,
    },
    /// [`Ftrace::remove_region`](crate::Ftrace::remove_region): no region with this id.
    NoSuchRegion,
    /// The ops belongs to another engine (it was registered with it, or its
    /// filters were set through it); only that engine may change it.
    OtherEngine,
    /// [`Ftrace::new`](crate::Ftrace::new): an engine already exists for this platform (one
    /// engine per kernel: two would patch the same sites and free each
    /// other's snapshots).
    EngineExists,
    /// [`Ftrace::register_graph`](crate::Ftrace::register_graph): the arch backend cannot hook returns
    /// ([`Arch::return_hook`](crate::Arch::return_hook) is `None`).
    GraphUnsupported,
    /// [`Ftrace::register_graph`](crate::Ftrace::register_graph): every one of the
    /// [`MAX_GRAPH_USERS`](crate::fgraph::MAX_GRAPH_USERS) slots is taken.
    GraphUsersFull,
    /// [`Ftrace::remove_region`](crate::Ftrace::remove_region): the region is removed and its sites are
    /// nops, but the backend could not release a site's resources
    /// ([`Arch::release_site`](crate::Arch::release_site); the first failure). Tracing goes on.
    Release(SiteFailure),
    /// [`Ftrace::new`](crate::Ftrace::new) or
    /// [`Ftrace::add_region`](crate::Ftrace::add_region): a site lies more
    /// than 2 GiB from the lowest boot site (the engine stores each site's
    /// address as a 32-bit offset; only 64-bit CPUs can meet this).
    /// Nothing changed.
    OutOfReach {
        /// The site.
        ip: usize,
        /// What the offsets are relative to.
        base: usize,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotInitialized => f.write_str("ftrace: not initialised"),
            Error::Killed => f.write_str("ftrace: tracing disabled after an earlier failure"),
            Error::AlreadyRegistered => f.write_str("ftrace: ops already registered"),
            Error::NotRegistered => f.write_str("ftrace: ops not registered"),
            Error::IpmodifyConflict { ip, function } => {
                write!(
                    f,
                    "ftrace: two IPMODIFY callbacks would share {function} at {ip:#x}"
                )
            }
            Error::Filter(errs) => {
                for (i, e) in errs.iter().enumerate() {
                    if i > 0 {
                        f.write_str("\n")?;
                    }
                    write!(f, "{e}")?;
                }
                Ok(())
            }
            Error::Patch(s) => write!(f, "{s}"),
            Error::RegionOverlap { name, with } => {
                write!(f, "ftrace: region {name} overlaps {with}")
            }
            Error::NoSuchRegion => f.write_str("ftrace: no such region"),
            Error::OtherEngine => f.write_str("ftrace: ops belongs to another engine"),
            Error::EngineExists => {
                f.write_str("ftrace: an engine already exists for this platform (one per kernel)")
            }
            Error::GraphUnsupported => {
                f.write_str("ftrace: this arch backend cannot hook function returns")
            }
            Error::GraphUsersFull => write!(
                f,
                "ftrace: all {} graph user slots are taken",
                crate::fgraph::MAX_GRAPH_USERS
            ),
            Error::Release(s) => write!(f, "{s}"),
            Error::OutOfReach { ip, base } => write!(
                f,
                "ftrace: site {ip:#x} is more than 2 GiB from the site table's base {base:#x}"
            ),
        }
    }
}
