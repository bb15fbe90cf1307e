#![doc = include_str!("../README.md")]
//!
//! ## Modules
//!
//! * [`record`]: one [`Record`] per patchable site (Linux's `dyn_ftrace`).
//! * [`arch`]: the [`Arch`] trait every backend implements, with the
//!   read-compare-write protocol and [`PatchError`].
//! * [`platform`]: the [`Platform`] trait the embedding kernel implements.
//! * [`context`]: interrupt-context marks (Linux's `irq_enter`/`irq_exit`)
//!   for [`Platform::context`].
//! * [`link`]: the site table and the symbol table of a linked kernel
//!   ([`patchable_sites`](link::patchable_sites),
//!   [`reserve_symtab!`]), with errors naming a skipped build step.
//! * [`ops`]: callbacks ([`Ops`], Linux's `ftrace_ops`) and the lock-free
//!   dispatchers trampolines call.
//! * [`filter`]: `set_ftrace_filter`-style glob patterns.
//! * [`update`]: the engine, [`Ftrace`], that patches sites to match the
//!   registered callbacks, built from: [`site`] (one table of sites: record,
//!   target, region, name), [`planner`] (what each site should call, pure),
//!   the batch commit, and [`reclaim`] (freeing what lock-free readers may
//!   hold, after grace periods); [`error`] and [`insn`] hold what it reports.
//! * [`region`]: code added after boot with its own site table and stubs
//!   ([`CodeRegion`], Linux's module load and unload).
//! * [`fgraph`]: return hooking through a per-task shadow return stack
//!   ([`GraphOps`]: entry and exit handlers, Linux's `fgraph_ops`).
//! * [`regs`]: the register frame trampolines build.
//! * [`recursion`]: per-CPU, per-context recursion protection.
//! * [`tracer`]: the function tracer, its per-CPU event buffer and Linux's
//!   output format.
//! * [`control`]: run-time control with Linux's tracefs files
//!   (`current_tracer`, `set_ftrace_filter`, `trace`, ...) read and written
//!   as text ([`Control`]).
//! * [`tramp`]: the pool of per-callback trampolines backends offer through
//!   [`Arch::ops_trampoline`].
//! * `mock` (feature `mock`, and in tests): a simulated arch and platform.
//!
//! Nothing here is architecture-specific: no `asm!`, no `cfg(target_arch)`.
#![no_std]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod arch;
pub mod context;
pub mod control;
pub mod error;
pub mod fgraph;
pub mod filter;
pub mod insn;
pub mod link;
#[cfg(any(test, feature = "mock"))]
pub mod mock;
pub mod ops;
pub mod planner;
pub mod platform;
pub mod reclaim;
pub mod record;
pub mod recursion;
pub mod region;
pub mod regs;
pub mod site;
pub mod symbols;
pub mod tracer;
pub mod tramp;
pub mod update;

/// The symbol-table format and section names shared with `ftrace-tools`
/// (the `ftrace-abi` crate), so a kernel needs no second dependency.
pub use ftrace_abi as abi;

pub use arch::{Arch, Insn, PatchError, SiteError, Trampoline};
pub use control::{Control, ControlError, ControlState};
pub use fgraph::{GraphEntry, GraphOps, GraphReturn, ShadowStack};
pub use ops::{FtraceFunc, Ops, OpsFlags};
pub use platform::{Context, Platform, TextFault};
pub use record::{RecFlags, Record};
pub use recursion::RecursionGuard;
pub use region::{CodeRegion, RegionId, RegionReport};
pub use regs::FtraceRegs;
pub use symbols::Symbols;
pub use update::{Error, Ftrace, InitReport, Phase, SiteFailure, SiteState};

#[cfg(test)]
mod tests;
