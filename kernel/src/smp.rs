//! Several CPUs, arch-neutral half: how many came online, work handed to
//! secondary CPUs, and the periodic timer tick, whose handler calls traced
//! functions (so traces show hardirq context). Safe code only: the arch
//! backends start the CPUs (`arch::smp_start`), program the timers
//! (`arch::timer_start`) and call [`ap_main`] / [`timer_tick`].

use core::hint::black_box;
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::arch;

/// CPUs the kernel supports (per-CPU arrays are this long).
pub const MAX_CPUS: usize = 8;

/// CPUs online, the boot CPU included.
static ONLINE: AtomicUsize = AtomicUsize::new(1);

/// Per CPU: the job to run (a `fn(usize)` as an address; 0: none).
static JOBS: [AtomicUsize; MAX_CPUS] = [const { AtomicUsize::new(0) }; MAX_CPUS];
/// Per CPU: jobs finished.
static DONE: [AtomicUsize; MAX_CPUS] = [const { AtomicUsize::new(0) }; MAX_CPUS];
/// Per CPU: timer ticks taken.
static TICKS: [AtomicUsize; MAX_CPUS] = [const { AtomicUsize::new(0) }; MAX_CPUS];

/// Starts the secondary CPUs (at most `wanted` CPUs in all) and waits for
/// them; returns how many are online.
pub fn init(wanted: usize) -> usize {
    let n = arch::smp_start(wanted.clamp(1, MAX_CPUS));
    debug_assert_eq!(n, online());
    online()
}

/// CPUs online.
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
pub fn online() -> usize {
    ONLINE.load(Ordering::Acquire)
}

/// Where a secondary CPU lands once the arch set up its stack and per-CPU
/// state (`arch::cpu_id()` returns `cpu`): counts itself online, then runs
/// the jobs it is given, idling in between.
pub fn ap_main(cpu: usize) -> ! {
    ONLINE.fetch_add(1, Ordering::AcqRel);
    loop {
        let job = JOBS[cpu].swap(0, Ordering::AcqRel);
        if job == 0 {
            arch::cpu_idle();
            continue;
        }
        let f: fn(usize) = JOB_FNS[job - 1];
        f(cpu);
        DONE[cpu].fetch_add(1, Ordering::AcqRel);
    }
}

/// The jobs secondary CPUs can run, by index + 1 in [`JOBS`] (a table
/// instead of transmuted addresses keeps this module free of `unsafe`).
static JOB_FNS: &[fn(usize)] = &[crate::stress::worker];

/// Runs job `f` (one of [`JOB_FNS`]) on secondary CPU `cpu`; returns false
/// when `cpu` is not online or `f` is not a known job.
pub fn run_on(cpu: usize, f: fn(usize)) -> bool {
    let Some(i) = JOB_FNS.iter().position(|&g| g as usize == f as usize) else {
        return false;
    };
    if cpu == 0 || cpu >= online() {
        return false;
    }
    JOBS[cpu].store(i + 1, Ordering::Release);
    true
}

/// Jobs `cpu` has finished so far.
pub fn done(cpu: usize) -> usize {
    DONE[cpu].load(Ordering::Acquire)
}

/// Timer ticks `cpu` has taken.
pub fn ticks(cpu: usize) -> usize {
    TICKS[cpu].load(Ordering::Relaxed)
}

/// The periodic timer's handler, called by the arch in hardirq context on
/// whichever CPU took the interrupt: counts the tick and runs a little
/// traced work (`tick_work`, `tick_leaf`), which the tracers show with the
/// `h` flag.
pub fn timer_tick() {
    let cpu = arch::cpu_id();
    if let Some(t) = TICKS.get(cpu) {
        t.fetch_add(1, Ordering::Relaxed);
    }
    black_box(tick_work(black_box(cpu as u64)));
}

/// Traced work done in the timer interrupt.
#[inline(never)]
pub fn tick_work(x: u64) -> u64 {
    black_box(tick_leaf(black_box(x)) + 1)
}

/// Traced leaf called from [`tick_work`]: `3x + 1`.
#[inline(never)]
pub fn tick_leaf(x: u64) -> u64 {
    black_box(3 * black_box(x) + 1)
}
