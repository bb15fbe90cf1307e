//! The per-arch half of the test kernel's platform: boot entry, console,
//! exit, clock and the checks of compiler-emitted sites.
//!
//! Exactly one backend is compiled, chosen here and nowhere else. Each one
//! provides the same items:
//!
//! - `NAME`: the arch name printed at boot;
//! - `console_write(&[u8])`: raw bytes to the console;
//! - `console_read() -> Option<u8>`: the next byte of console input if one
//!   has arrived, without waiting (x86: COM1's receiver; ppc64:
//!   `H_GET_TERM_CHAR`);
//! - `exit(ExitStatus) -> !`: leave QEMU with a status the runner decodes;
//! - `compiler_site_ok(addr) -> bool`: the site-table entry at `addr` holds
//!   the pattern the compiler is documented to emit;
//! - `cycles() -> u64`: the raw monotonic counter, unconverted (x86:
//!   `rdtsc`, one tick per retired instruction under `-icount shift=0`;
//!   ppc64: the 512 MHz timebase, about 0.512 ticks per instruction there);
//! - `calibration_loop(iters: usize)` and `CALIBRATION_INSNS_PER_ITER: u64`:
//!   an asm loop retiring exactly `CALIBRATION_INSNS_PER_ITER` instructions
//!   per iteration, which `crate::bench` times with `cycles()` to convert
//!   ticks to instructions.
//!
//! - `walk_stack(visit: &mut dyn FnMut(usize, Option<usize>) -> bool)`:
//!   the panic backtrace's frame walk, innermost first, starting at the
//!   caller of `walk_stack` itself: `visit(ret, slot)` gets each return
//!   address as found on the stack (possibly `return_to_handler`) and, where
//!   the arch's shadow-stack frames record it (x86), the address of the
//!   stack slot it was read from; it returns false to stop. Every read stays
//!   within the boot stack; the walk ends at a null, unaligned or
//!   out-of-range frame, or one that does not lie above the previous one.
//!
//! and calls [`crate::kmain`] with the command line once it has a stack.
//!
//! For the tracer, each backend also provides (used by `crate::platform`'s
//! `ftrace::Platform` implementation and `crate::tracing`):
//!
//! - `type FtraceArch` (implements `ftrace::Arch`) and
//!   `fn ftrace_arch() -> FtraceArch`;
//! - `fn ftrace_sites() -> alloc::vec::Vec<usize>`: the addresses handed to
//!   `Ftrace::new` (normally `crate::platform::sites().to_vec()`; i686
//!   mcount builds read the post-link table instead);
//! - `unsafe fn text_write(addr: usize, bytes: &[u8]) -> Result<(), ftrace::TextFault>`
//!   (with whatever cache maintenance the arch needs for code);
//! - `fn sync_cores()`,
//!   `fn clock_ns() -> u64`, `fn context() -> ftrace::Context`;
//! - `fn cpu_local() -> Option<ftrace::ops::CpuLocal>`: where the
//!   trampolines' fast path reads the CPU's index and context
//!   (`Ftrace::use_cpu_local`; `None` where the backend has none);
//! - `fn trap_init()`: install exception handlers the tracer needs (x86:
//!   the `#BP` handler of the int3 patching protocol);
//! - `const CORRUPT_SITE: &[u8]`: harmless, executable bytes that are not
//!   the canonical nop, written over one site by `test=corrupt`;
//! - `fn scenario(name: &str) -> Option<bool>`: arch-only `test=` scenarios
//!   (None: not an arch scenario).
//! - `fn code_region() -> ftrace::CodeRegion`: the code registered after
//!   boot by `test=region` (the `demo_region` crate's site table from
//!   `crate::platform::code_region_sites`, and on ppc64 its own stub area);
//! - `fn code_region_stubs_in_use() -> usize`: stubs of that area holding
//!   anything but the linker's fill (x86: always 0, it has none).
//!
//! The x86 backends also provide `callconv`: the calling-convention facts
//! and the bounded stack accesses of the x86 `test=abi` (`crate::abi`).

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
