//! i686 backend: Multiboot1 boot (boot/i686.S), COM1 console, isa-debug-exit.

#[path = "callconv.rs"]
pub mod callconv;
#[path = "common.rs"]
mod common;
#[path = "smp.rs"]
mod smp;
#[path = "tracer.rs"]
mod tracer;
#[path = "trap.rs"]
mod trap;

/// The raw cycle counter benchmarks read: the time-stamp counter (`rdtsc`),
/// one tick per retired instruction under `-icount shift=0`.
pub use common::clock_ticks as cycles;
pub use common::{
    CALIBRATION_INSNS_PER_ITER, calibration_loop, console_read, console_write, exit, walk_stack,
};
pub use smp::{cpu_id, cpu_idle, smp_start, sync_cores, timer_start};
pub use tracer::{
    CORRUPT_SITE, clock_ns, code_region, code_region_stubs_in_use, context, cpu_local,
    irqs_disabled, scenario, text_write,
};
pub use trap::trap_init;

use ftrace::arch::x86::I686Mode;

/// The tracer's backend on this arch.
pub type FtraceArch = ftrace::arch::x86::I686;

// The `mcount` the compiler calls in the mcount builds (-Zinstrument-mcount).
// mcount: a plain return, called only until `init_site` turns every call
// into the 5-byte nop. nodynamic: the crate's entry that tests
// `ftrace_trace_function`; a tail jump keeps the stack exactly as the
// compiler's call left it.
#[cfg(all(feature = "mcount", not(feature = "nodynamic")))]
core::arch::global_asm!(
    ".text",
    ".balign 16",
    ".globl mcount",
    ".type mcount, @function",
    "mcount:",
    "    ret",
    ".size mcount, . - mcount",
    options(att_syntax)
);
#[cfg(feature = "nodynamic")]
core::arch::global_asm!(
    ".text",
    ".balign 16",
    ".globl mcount",
    ".type mcount, @function",
    "mcount:",
    "    jmp ftrace_nodyn_mcount",
    ".size mcount, . - mcount",
    options(att_syntax)
);

#[cfg(any(feature = "mcount", feature = "nodynamic"))]
unsafe extern "C" {
    fn mcount();
    static __ftrace_mcount_sites_start: u32;
}

/// The build's instrumentation mode.
fn mode() -> I686Mode {
    #[cfg(feature = "nodynamic")]
    return I686Mode::NoDynamic {
        mcount: mcount as *const () as usize,
    };
    #[cfg(all(feature = "mcount", not(feature = "nodynamic")))]
    return I686Mode::Mcount {
        mcount: mcount as *const () as usize,
    };
    #[cfg(not(any(feature = "mcount", feature = "nodynamic")))]
    I686Mode::Fentry
}

/// The backend over the trampolines of the `ftrace` crate, in this build's
/// mode.
pub fn ftrace_arch() -> FtraceArch {
    FtraceArch::new(mode())
}

/// The sites the tracer manages. fentry: the compiler's table. mcount
/// builds: the `.ftrace_mcount_sites` table `ftrace-tools mcount-sites`
/// wrote after linking. Both minus the functions of `kernel::arch` and
/// `kernel::platform` ([`tracer::filter_sites`]): `-Zinstrument-mcount`
/// ignores the notrace attribute, trait methods cannot carry it, and the
/// #BP handler must never run a site the int3 protocol is rewriting (Linux
/// builds such files without `-pg`).
pub fn ftrace_sites() -> alloc::vec::Vec<usize> {
    #[cfg(any(feature = "mcount", feature = "nodynamic"))]
    {
        let base = core::ptr::addr_of!(__ftrace_mcount_sites_start);
        // SAFETY: the linker script reserves the section (a u32 count then
        // u32 addresses, ftrace_abi::MCOUNT_SITES_RESERVED bytes) and the
        // post-link tool filled it; it is never written at run time.
        let all = unsafe {
            let n =
                (core::ptr::read_volatile(base) as usize).min(ftrace_abi::MCOUNT_SITES_CAPACITY);
            core::slice::from_raw_parts(base.add(1), n)
        };
        tracer::filter_sites(all.iter().map(|&a| a as usize))
    }
    #[cfg(not(any(feature = "mcount", feature = "nodynamic")))]
    tracer::filter_sites(crate::platform::sites().iter().copied())
}

core::arch::global_asm!(include_str!("../../../../boot/i686.S"), options(att_syntax));

/// Printed at boot.
pub const NAME: &str = "i686";

/// What rustc emits at every `-Zpatchable-function-entry=5` site on i686:
/// three nops (`xchg %ax,%ax; xchg %ax,%ax; nop`), rewritten to one 5-byte
/// nop at boot before anything could be interrupted between them.
pub const COMPILER_NOP: [u8; 5] = [0x66, 0x90, 0x66, 0x90, 0x90];

/// Value in %eax from a Multiboot1 loader.
const MULTIBOOT_LOADER_MAGIC: u32 = 0x2bad_b002;
/// Multiboot info flag: `cmdline` is valid.
const MULTIBOOT_INFO_CMDLINE: u32 = 1 << 2;
const CMDLINE_MAX: usize = 64 * 1024;

/// Does the site at `addr` hold the compiler's entry nops?
pub fn compiler_site_ok(addr: usize) -> bool {
    // SAFETY: site addresses come from the linker's table and point into
    // the kernel's mapped text.
    unsafe { common::read_bytes::<5>(addr) == COMPILER_NOP }
}

/// Called from boot/i686.S with the loader's magic and multiboot info.
#[unsafe(no_mangle)]
extern "C" fn i686_entry(magic: u32, info: u32) -> ! {
    smp::boot_cpu_init();
    common::serial_init();
    let info = info as usize;
    let mut line: &'static [u8] = &[];
    if magic == MULTIBOOT_LOADER_MAGIC {
        // SAFETY: a Multiboot1 loader passes a valid info structure: u32
        // flags at 0, u32 cmdline address at 16 (valid when flag bit 2 set).
        let (flags, cmdline) = unsafe {
            (
                core::ptr::read_volatile(info as *const u32),
                core::ptr::read_volatile((info + 16) as *const u32),
            )
        };
        if flags & MULTIBOOT_INFO_CMDLINE != 0 && cmdline != 0 {
            // SAFETY: the loader placed a NUL-terminated string there that
            // nothing reuses.
            line = unsafe { common::c_string(cmdline as usize, CMDLINE_MAX) };
        }
    }
    crate::kmain(skip_kernel_path(line))
}

/// QEMU's Multiboot loader puts the kernel's path first: drop it and the
/// single space QEMU adds after it, keeping the user's line byte-exact.
fn skip_kernel_path(line: &'static [u8]) -> &'static [u8] {
    match line.iter().position(|&b| b == b' ') {
        Some(i) => &line[i + 1..],
        None => &[],
    }
}
