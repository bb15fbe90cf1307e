//! The tracer's ppc64 items (see `kernel/src/arch/mod.rs`): the backend and
//! its stub area, writing text with the cache maintenance code needs, the
//! timebase clock, interrupt masking, and the ppc64-only scenarios
//! (`cpu_id`, `context` and `sync_cores` are in `smp.rs`).
//!
//! Everything the tracing hot path calls is notrace
//! (`#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]`).

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use ftrace::arch::ppc64::Ppc64Arch;

/// The ppc64 backend of the tracer.
pub type FtraceArch = Ppc64Arch;

/// What `test=corrupt` writes over a site: `xori r0,r0,0`, which executes
/// as a no-op but is not the canonical `nop` (`ori r0,r0,0`).
pub const CORRUPT_SITE: &[u8] = &[0x68, 0x00, 0x00, 0x00];

/// QEMU `pseries` timebase frequency (`SPAPR_TIMEBASE_FREQ`), used until
/// [`read_timebase_frequency`] has read the firmware's value.
const DEFAULT_TB_HZ: u64 = 512_000_000;

/// Timebase frequency in Hz (`/cpus/<first cpu>/timebase-frequency`).
static TB_HZ: AtomicU64 = AtomicU64::new(DEFAULT_TB_HZ);

/// Nanoseconds per tick as a 32.32 fixed-point factor (Linux's clocksource
/// `mult` with `shift` = 32): computed once with a division when the
/// frequency is known, so [`clock_ns`], which every traced event calls,
/// only multiplies and shifts. The tracer's hot path reads it too
/// (`ClockSource::Scaled` in `crate::platform::PLATFORM`) and computes the
/// same value in line.
pub static NS_PER_TICK_32_32: AtomicU64 = AtomicU64::new(ns_per_tick_32_32(DEFAULT_TB_HZ));

const fn ns_per_tick_32_32(hz: u64) -> u64 {
    (1_000_000_000u64 << 32) / hz
}

unsafe extern "C" {
    // linker/ppc64.ld: the stub area, one 16-byte stub per site.
    static __ftrace_stubs_start: u32;
    static __ftrace_stubs_stop: u32;
}

/// The backend over the linker's stub area (the site ranked `i` in the
/// engine's sorted table owns stub `i`).
pub fn ftrace_arch() -> FtraceArch {
    let start = core::ptr::addr_of!(__ftrace_stubs_start) as usize;
    let stop = core::ptr::addr_of!(__ftrace_stubs_stop) as usize;
    Ppc64Arch::new(start..stop)
}

unsafe extern "C" {
    // linker/ppc64.ld: the code region's stub area, one 16-byte stub per
    // entry of the region's site table, `trap` while unused.
    static __ftrace_region_stubs_start: u32;
    static __ftrace_region_stubs_stop: u32;
}

/// The code region `test=region` registers after boot: the `demo_region`
/// crate's site table (global entries) and its own stub area.
pub fn code_region() -> ftrace::CodeRegion {
    let start = core::ptr::addr_of!(__ftrace_region_stubs_start) as usize;
    let stop = core::ptr::addr_of!(__ftrace_region_stubs_stop) as usize;
    ftrace::CodeRegion {
        name: "demo_region",
        sites: crate::platform::code_region_sites().to_vec(),
        stubs: start..stop,
    }
}

/// Stubs of the code region's area holding anything but `trap` (read
/// through the platform's text accessor).
pub fn code_region_stubs_in_use() -> usize {
    use ftrace::arch::ppc64::insn::{STUB_SIZE, TRAP, to_insn};
    let trap = to_insn(TRAP);
    code_region()
        .stubs
        .step_by(STUB_SIZE)
        .filter(|&stub| {
            (0..STUB_SIZE / 4)
                .any(|i| crate::platform::read_insn(stub + 4 * i, 4).is_ok_and(|w| w != trap))
        })
        .count()
}

/// The site table: global entries (the backend moves each to its nop).
pub fn ftrace_sites() -> Vec<usize> {
    crate::platform::sites().to_vec()
}

/// Text writes: the crate's helper (aligned word stores with `dcbst; sync;
/// icbi; sync; isync`), never traced. Core synchronisation is `smp.rs`'s
/// (IPIs to the other CPUs).
pub use ftrace::arch::ppc64::helpers::text_write;

/// Nanoseconds of guest time from the timebase.
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
pub fn clock_ns() -> u64 {
    let mult = NS_PER_TICK_32_32.load(Ordering::Relaxed);
    ((u128::from(super::clock_ticks()) * u128::from(mult)) >> 32) as u64
}

/// Nothing to install: ppc64 patching needs no exception handler.
pub fn trap_init() {}

/// Reads the timebase frequency from the first CPU node under `/cpus`
/// (QEMU pseries: 512 MHz). Keeps the default when the firmware has none.
pub fn read_timebase_frequency() {
    let Some(cpus) = super::of::finddevice(b"/cpus\0") else {
        return;
    };
    let Some(cpu) = super::of::child(cpus) else {
        return;
    };
    if let Some(hz) = super::of::getprop_u32(cpu, b"timebase-frequency\0")
        && hz != 0
    {
        TB_HZ.store(u64::from(hz), Ordering::Relaxed);
        NS_PER_TICK_32_32.store(ns_per_tick_32_32(u64::from(hz)), Ordering::Relaxed);
    }
}

/// The timebase frequency in use, in Hz.
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
pub fn timebase_hz() -> u64 {
    TB_HZ.load(Ordering::Relaxed)
}

/// ppc64-only `test=` scenarios; `None` for any other name.
pub fn scenario(name: &str) -> Option<bool> {
    match name {
        "stubs" => Some(super::scenarios::stubs()),
        "abi" => Some(super::scenarios::abi()),
        "fp-callback" => Some(super::scenarios::fp_callback()),
        "timebase" => {
            crate::kprintln!("ppc64: timebase {} Hz", timebase_hz());
            Some(true)
        }
        _ => None,
    }
}

/// Where the trampolines' fast path reads the CPU's index and context
/// (`Ftrace::use_cpu_local`): r13-relative, in this CPU's `PerCpu`.
pub fn cpu_local() -> Option<ftrace::ops::CpuLocal> {
    Some(super::smp::cpu_local())
}
