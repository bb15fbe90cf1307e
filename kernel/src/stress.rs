//! `test=smp-stress`: secondary CPUs call traced functions in a tight loop,
//! with the timer interrupt on, while the boot CPU enables, disables,
//! retargets (per-callback trampoline, list, regs) and redirects their sites
//! and changes filters under them, [`OPERATIONS`] times. Checked at the end
//! against evidence that does not come from the engine: every result the
//! workers computed, the traced text byte for byte against a snapshot taken
//! before, per-CPU event counts against the callback's own counts, the heap.

use alloc::vec::Vec;
use core::hint::black_box;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use ftrace::tracer::function;
use ftrace::{Arch, FtraceRegs, Ops, OpsFlags};

use crate::demo;
use crate::kprintln;
use crate::platform;
use crate::smp::{self, MAX_CPUS};
use crate::tracing::with_engine;

/// Engine operations the boot CPU performs by default (`smp_stress_ops=`
/// changes it).
pub const OPERATIONS: usize = 10_000;

/// Heap bytes the run may leave on top of the warm-up's: the engine keeps
/// the capacity its list of retired snapshots reached (a `Vec` drained by
/// `reclaim`, which defers frees while dispatchers on other CPUs read), a
/// few doublings of 16-byte entries. A leak per operation would be
/// thousands of times larger.
const HEAP_SLACK: usize = 1024;

/// Timer frequency during the run.
const TIMER_HZ: u32 = 1000;

/// Set to make the workers return.
static STOP: AtomicBool = AtomicBool::new(false);
/// Per CPU: workload rounds run.
static ROUNDS: [AtomicUsize; MAX_CPUS] = [const { AtomicUsize::new(0) }; MAX_CPUS];
/// Per CPU: results that were wrong.
static WRONG: [AtomicUsize; MAX_CPUS] = [const { AtomicUsize::new(0) }; MAX_CPUS];
/// Per CPU: calls of the tracing callback (its own count, apart from the
/// buffer's).
static CALLS: [AtomicUsize; MAX_CPUS] = [const { AtomicUsize::new(0) }; MAX_CPUS];
/// Calls that reached the redirect target.
static REDIRECTED: AtomicUsize = AtomicUsize::new(0);
/// Calls of the second (list) callback.
static SECOND_CALLS: AtomicUsize = AtomicUsize::new(0);

/// `7x + 3`: the function the redirect callback sends elsewhere.
#[inline(never)]
pub fn stress_f(x: u64) -> u64 {
    black_box(7 * black_box(x) + 3)
}

/// The redirect target: the same value, computed another way, counted.
#[inline(never)]
pub fn stress_f_alt(x: u64) -> u64 {
    REDIRECTED.fetch_add(1, Ordering::Relaxed);
    black_box((black_box(x) << 3) - x + 3)
}

/// A secondary CPU's job: start its timer, then the demo workload and
/// `stress_f` until [`STOP`], checking every result.
pub fn worker(cpu: usize) {
    crate::arch::timer_start(TIMER_HZ);
    let mut x = cpu as u64;
    while !STOP.load(Ordering::Acquire) {
        let (outer, fib) = black_box(demo::demo_run());
        let f = stress_f(black_box(x));
        if (outer, fib) != (12, 55) || f != 7 * x + 3 {
            WRONG[cpu].fetch_add(1, Ordering::Relaxed);
        }
        ROUNDS[cpu].fetch_add(1, Ordering::Relaxed);
        x = x.wrapping_add(1) & 0xffff;
    }
}

/// The tracing callback: counts itself per CPU, then records through the
/// function tracer.
extern "C" fn trace_call(ip: usize, parent_ip: usize, ops: &Ops, regs: &mut FtraceRegs) {
    if let Some(c) = CALLS.get(crate::arch::cpu_id()) {
        c.fetch_add(1, Ordering::Relaxed);
    }
    function::function_trace_call(ip, parent_ip, ops, regs);
}

extern "C" fn count_second(_ip: usize, _parent_ip: usize, _ops: &Ops, _regs: &mut FtraceRegs) {
    SECOND_CALLS.fetch_add(1, Ordering::Relaxed);
}

extern "C" fn redirect(_ip: usize, _parent_ip: usize, _ops: &Ops, regs: &mut FtraceRegs) {
    regs.ip = stress_f_alt as *const () as usize;
}

static TRACE: Ops = Ops::new(trace_call, OpsFlags::empty());
static SECOND: Ops = Ops::new(count_second, OpsFlags::SAVE_REGS);
static REDIRECT: Ops = Ops::new(redirect, OpsFlags::IPMODIFY);

/// Every site's bytes, read apart from the engine.
fn text_snapshot() -> Vec<u8> {
    let (ips, len) = with_engine(|e| {
        let len = e.arch().nop_insn().len();
        (e.site_ips().collect::<Vec<_>>(), len)
    });
    let mut out = alloc::vec![0u8; ips.len() * len];
    for (ip, chunk) in ips.iter().zip(out.chunks_mut(len)) {
        platform::read_text(*ip, chunk);
    }
    out
}

/// One engine operation, `i` of [`OPERATIONS`]: a cycle of registering,
/// retargeting, redirecting, filtering and unregistering.
fn operation(i: usize) -> Result<(), ftrace::Error> {
    with_engine(|e| match i % 10 {
        0 => e.set_filter(&TRACE, "demo_*,stress_f").map(drop),
        1 => e.register(&TRACE), // alone: its own trampoline
        2 => e.set_filter(&SECOND, "demo_leaf,demo_inner").map(drop),
        3 => e.register(&SECOND), // shared sites: list, regs trampoline
        4 => e
            .set_filter(&REDIRECT, "stress_f")
            .and_then(|_| e.register(&REDIRECT)),
        5 => e.unregister(&SECOND),
        6 => e.set_filter(&TRACE, "demo_leaf").map(drop),
        7 => e.unregister(&REDIRECT),
        8 => e.unregister(&TRACE),
        _ => e.clear_filter(&TRACE),
    })
}

/// Unregisters the three callbacks and clears their filters (the
/// scenario's own allocations), then frees what the engine retired;
/// returns whether the engine was killed.
fn cleanup() -> bool {
    with_engine(|e| {
        for o in [&TRACE, &SECOND, &REDIRECT] {
            let _ = e.unregister(o);
            let _ = e.clear_filter(o);
        }
        e.reclaim();
        e.is_killed()
    })
}

/// `test=smp-stress` (module docs).
pub fn run(operations: usize) -> bool {
    let n = smp::online();
    if n < 2 {
        kprintln!("smp-stress: needs 2 CPUs or more, {n} online (boot with --smp 4)");
        return false;
    }
    // One cycle of operations before anything is measured: the engine
    // keeps what its first registrations allocated (vector capacities,
    // snapshots), which is not growth; the heap check is that the run adds
    // at most HEAP_SLACK on top of that.
    let mut warmup = None;
    for i in 0..10 {
        if let Err(err) = operation(i) {
            warmup = Some((i, err));
            break;
        }
    }
    if cleanup() {
        warmup.get_or_insert((10, ftrace::Error::Killed));
    }
    if let Some((i, err)) = warmup {
        kprintln!("smp-stress: warm-up operation {i} failed: {err}");
        return false;
    }
    function::reset();
    let before = text_snapshot();
    let mut failed = None;
    let heap0 = platform::heap_used();
    crate::arch::timer_start(TIMER_HZ);
    for cpu in 1..n {
        smp::run_on(cpu, worker);
    }
    for i in 0..operations {
        if failed.is_some() {
            break;
        }
        if let Err(err) = operation(i) {
            failed = Some((i, err));
        }
    }
    STOP.store(true, Ordering::Release);
    for cpu in 1..n {
        while smp::done(cpu) == 0 {
            core::hint::spin_loop();
        }
    }
    let cleanup = cleanup();
    let differ = before
        .iter()
        .zip(&text_snapshot())
        .filter(|(a, b)| a != b)
        .count();
    let heap1 = platform::heap_used();
    if let Some((i, err)) = &failed {
        kprintln!("smp-stress: operation {i} failed: {err}");
    }
    kprintln!(
        "smp-stress: {operations} engine operations on CPU 0 while {} CPUs ran the workload",
        n - 1
    );
    let mut ok = failed.is_none() && !cleanup;
    for cpu in 0..n {
        let (rounds, wrong) = (
            ROUNDS[cpu].load(Ordering::Relaxed),
            WRONG[cpu].load(Ordering::Relaxed),
        );
        let calls = CALLS[cpu].load(Ordering::Relaxed);
        let (written, in_buf, lost) = function::cpu_counts(cpu);
        let ticks = smp::ticks(cpu);
        kprintln!(
            "smp-stress: cpu{cpu}: {rounds} rounds, {wrong} wrong results, {ticks} timer ticks, callback ran {calls} times, {written} events written = {in_buf} in buffer + {lost} lost"
        );
        ok &= wrong == 0 && written == calls && in_buf + lost == written && ticks > 0;
        ok &= cpu == 0 || rounds > 0;
    }
    kprintln!(
        "smp-stress: redirected calls {}, second callback calls {}; after: {differ} site bytes differ from the snapshot, heap {} bytes more than before",
        REDIRECTED.load(Ordering::Relaxed),
        SECOND_CALLS.load(Ordering::Relaxed),
        heap1 as isize - heap0 as isize
    );
    ok && differ == 0 && heap1 <= heap0 + HEAP_SLACK
}
