//! ppc64 multiprocessor support: starting the secondary CPUs through RTAS
//! `start-cpu`, per-CPU identity, the decrementer and inter-processor
//! interrupts. Single-CPU placeholder until that code lands: no secondary
//! CPU is started.

/// Starts up to `max - 1` secondary CPUs; each runs `crate::smp::ap_main`.
/// Returns the CPUs online.
pub fn smp_start(_max: usize) -> usize {
    1
}

/// Index of the running CPU (0: the boot CPU).
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
pub fn cpu_id() -> usize {
    0
}

/// Waits a moment for work (a secondary CPU's idle loop).
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
pub fn cpu_idle() {
    core::hint::spin_loop();
}

/// Starts this CPU's periodic timer: `crate::smp::timer_tick` runs `hz`
/// times a second in hardirq context.
pub fn timer_start(_hz: u32) {}
