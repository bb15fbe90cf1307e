//! x86_64 backend: PVH boot (boot/x86_64.S), COM1 console, isa-debug-exit.

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

/// The tracer's backend on this arch.
pub type FtraceArch = ftrace::arch::x86::X86_64;

/// The backend over the trampolines of the `ftrace` crate.
pub fn ftrace_arch() -> FtraceArch {
    FtraceArch::new()
}

/// The sites the tracer manages: the compiler's table, minus the arch and
/// platform code ([`tracer::filter_sites`]).
pub fn ftrace_sites() -> alloc::vec::Vec<usize> {
    tracer::filter_sites(crate::platform::sites().iter().copied())
}

core::arch::global_asm!(
    include_str!("../../../../boot/x86_64.S"),
    options(att_syntax)
);

/// Printed at boot.
pub const NAME: &str = "x86_64";

/// What rustc emits at every `-Zpatchable-function-entry=5` site on x86_64.
pub const COMPILER_NOP: [u8; 5] = [0x0f, 0x1f, 0x44, 0x00, 0x08];

/// Magic of PVH's `hvm_start_info`.
const PVH_MAGIC: u32 = 0x336e_c578;

/// Longest command line accepted from the loader (longer ones are cut here
/// and reported as truncated by the parser, which keeps 4 KiB).
const CMDLINE_MAX: usize = 64 * 1024;

/// Does the site at `addr` hold the compiler's entry nop?
pub fn compiler_site_ok(addr: usize) -> bool {
    // SAFETY: site addresses come from the linker's table and point into
    // the kernel's mapped text.
    unsafe { common::read_bytes::<5>(addr) == COMPILER_NOP }
}

/// Called from boot/x86_64.S in long mode with `start_info` = the physical
/// address of `hvm_start_info`.
#[unsafe(no_mangle)]
extern "C" fn x86_64_entry(start_info: u32) -> ! {
    smp::boot_cpu_init();
    common::serial_init();
    let info = start_info as usize;
    // SAFETY: PVH hands over a valid hvm_start_info in identity-mapped low
    // memory: u32 magic at 0, u64 cmdline_paddr at 24.
    let (magic, cmdline) = unsafe {
        (
            core::ptr::read_volatile(info as *const u32),
            core::ptr::read_volatile((info + 24) as *const u64),
        )
    };
    let line: &'static [u8] = if magic != PVH_MAGIC || cmdline == 0 {
        &[]
    } else {
        // SAFETY: the loader placed a NUL-terminated command line there and
        // nothing reuses that memory.
        unsafe { common::c_string(cmdline as usize, CMDLINE_MAX) }
    };
    crate::kmain(line)
}
