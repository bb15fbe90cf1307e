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
static JOB_FNS: &[fn(usize)] = &[crate::stress::worker, timer_job];

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
/// `h` flag. Always inlined into the arch's handler, so that the trace
/// names that handler as `tick_work`'s parent on every build (the tests
/// expect it), whatever the compiler's inlining heuristics decide.
#[inline(always)]
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

/// Ticks each CPU must take in `test=timer`.
const TIMER_SCENARIO_TICKS: usize = 3;

/// A secondary CPU's job in `test=timer`: start its periodic timer (the
/// idle loop then takes its interrupts).
fn timer_job(_cpu: usize) {
    arch::timer_start(1000);
}

/// `test=timer`: the periodic timer on every CPU, its handler's traced
/// functions (`tick_work`, `tick_leaf`) under the function tracer: the
/// trace shows them on every CPU, in hardirq context (`h`) with
/// interrupts off (`d`), and the header counts every CPU (`#P:N`).
pub fn timer_scenario() -> bool {
    let n = online();
    let started = crate::tracing::start(&crate::tracing::Setup {
        function: true,
        filter: Some("tick_work,tick_leaf"),
        ..Default::default()
    });
    let base: [usize; MAX_CPUS] = core::array::from_fn(ticks);
    arch::timer_start(1000);
    for cpu in 1..n {
        run_on(cpu, timer_job);
    }
    // Until every CPU took its ticks (bounded: the timers run at 1 kHz).
    let mut spins = 0u64;
    while (0..n).any(|c| ticks(c) < base[c] + TIMER_SCENARIO_TICKS) && spins < 4_000_000_000 {
        core::hint::spin_loop();
        spins += 1;
    }
    crate::tracing::pause();
    let all = (0..n).all(|c| ticks(c) >= base[c] + TIMER_SCENARIO_TICKS);
    crate::kprintln!(
        "timer: every CPU took {TIMER_SCENARIO_TICKS} ticks or more: {}",
        if all { "yes" } else { "NO" }
    );
    crate::tracing::print_function_trace();
    let differ = crate::tracing::stop(started);
    all && differ == 0
}
