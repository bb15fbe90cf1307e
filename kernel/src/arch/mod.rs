//! The per-arch half of the test kernel's platform: boot entry, console,
//! exit, clock and the checks of compiler-emitted sites.
//!
//! Exactly one backend is compiled, chosen here and nowhere else. Each one
//! provides the same items:
//!
//! - `NAME`: the arch name printed at boot;
//! - `console_write(&[u8])`: raw bytes to the console;
//! - `exit(ExitStatus) -> !`: leave QEMU with a status the runner decodes;
//! - `compiler_site_ok(addr) -> bool`: the site-table entry at `addr` holds
//!   the pattern the compiler is documented to emit;
//! - `clock_ticks() -> u64`: a monotonic counter (one tick is one
//!   nanosecond of guest time under `-icount shift=0`).
//!
//! and calls [`crate::kmain`] with the command line once it has a stack.

#[cfg_attr(target_arch = "x86_64", path = "x86/x86_64.rs")]
#[cfg_attr(target_arch = "x86", path = "x86/i686.rs")]
#[cfg_attr(target_arch = "powerpc64", path = "ppc64/mod.rs")]
mod imp;

pub use imp::*;

/// How the kernel leaves QEMU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Everything the scenario checked held.
    Success,
    /// A panic or a failed check.
    Failure,
}
