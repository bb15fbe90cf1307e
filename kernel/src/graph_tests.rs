//! `test=graph-*` and `test=fprobe`: the function_graph tracer and return
//! hooking checked against values computed apart from the tracer (call
//! counts, Fibonacci numbers, the shadow stack's size). Safe code only.

use alloc::string::ToString;
use alloc::vec::Vec;
use core::hint::black_box;
use core::sync::atomic::{AtomicUsize, Ordering};

use ftrace::fgraph::{self, GraphEntry, GraphOps, GraphReturn};
use ftrace::tracer::graph::{self, GraphEvent, GraphKind};
use ftrace::{FtraceRegs, Ops, OpsFlags};

use crate::demo;
use crate::kprintln;
use crate::platform::{self, SHADOW_STACK_DEPTH};
use crate::tracing::{self, Setup, with_engine};

/// Runs the scenario `name` (`None`: not one of these).
pub fn scenario(name: &str) -> Option<bool> {
    Some(match name {
        "graph-fib" => graph_fib(),
        "graph-deep" => graph_deep_scenario(),
        "graph-corrupt" => graph_corrupt(),
        "graph-abi" => graph_abi(),
        "fprobe" => fprobe(),
        _ => return None,
    })
}

/// What [`graph_only`] saw: the events and how many were lost, copied
/// before the tracer stopped (stopping empties the buffers).
struct Traced {
    events: Vec<GraphEvent>,
    lost: usize,
}

/// Runs `work` with only the function_graph tracer, hooking `filter`;
/// returns its result, what was recorded and how many sites still differ
/// from the nop afterwards.
fn graph_only<R>(filter: &str, work: impl FnOnce() -> R) -> (R, Traced, usize) {
    let started = tracing::start(&Setup {
        graph: true,
        filter: Some(filter),
        ..Setup::default()
    });
    let r = work();
    tracing::pause();
    let traced = Traced {
        events: graph::events(),
        lost: graph::lost(),
    };
    (r, traced, tracing::stop(started))
}

/// Calls of the naive Fibonacci recursion for `n`, counted apart from the
/// tracer: c(0) = c(1) = 1, c(n) = 1 + c(n-1) + c(n-2).
fn fib_calls(n: u64) -> u64 {
    let (mut a, mut b) = (1u64, 1u64);
    for _ in 1..n {
        (a, b) = (b, 1 + a + b);
    }
    if n == 0 { a } else { b }
}

/// Fibonacci by iteration.
fn fib(n: u64) -> u64 {
    let (mut a, mut b) = (0u64, 1u64);
    for _ in 0..n {
        (a, b) = (b, a + b);
    }
    a
}

/// What a walk over graph events found.
#[derive(Debug, Default, PartialEq, Eq)]
struct Walk {
    entries: usize,
    returns: usize,
    max_depth: u32,
    /// Returns not matching the innermost open entry (function or depth),
    /// entries at the wrong depth.
    unmatched: usize,
    /// Durations negative, or a parent shorter than its children.
    bad_times: usize,
    /// Non-leaf returns whose value is not the sum of their children's
    /// (Fibonacci), or leaf values other than 0 and 1.
    bad_values: usize,
}

/// Checks the events as a call tree.
fn walk(events: &[GraphEvent]) -> Walk {
    struct Open {
        func: usize,
        depth: u32,
        children: usize,
        child_sum: usize,
        child_time: u64,
    }
    let mut w = Walk::default();
    let mut stack: Vec<Open> = Vec::new();
    for e in events {
        match e.kind {
            GraphKind::Entry => {
                w.entries += 1;
                w.max_depth = w.max_depth.max(e.depth);
                if e.depth as usize != stack.len() {
                    w.unmatched += 1;
                }
                stack.push(Open {
                    func: e.func,
                    depth: e.depth,
                    children: 0,
                    child_sum: 0,
                    child_time: 0,
                });
            }
            GraphKind::Return => {
                w.returns += 1;
                let Some(o) = stack.pop() else {
                    w.unmatched += 1;
                    continue;
                };
                if o.func != e.func || o.depth != e.depth {
                    w.unmatched += 1;
                }
                let dur = e.rettime.checked_sub(e.calltime);
                if dur.is_none_or(|d| d < o.child_time) {
                    w.bad_times += 1;
                }
                let ok = if o.children == 0 {
                    e.retval <= 1
                } else {
                    o.children == 2 && e.retval == o.child_sum
                };
                if !ok {
                    w.bad_values += 1;
                }
                if let Some(p) = stack.last_mut() {
                    p.children += 1;
                    p.child_sum += e.retval;
                    p.child_time += dur.unwrap_or(0);
                }
            }
        }
    }
    w.unmatched += stack.len();
    w
}

/// `test=graph-fib`: `demo_fib(20)` under the graph tracer: every entry has
/// its return, depths follow the recursion, every return value is the sum
/// of its two children's (leaves 0 or 1), durations nest.
fn graph_fib() -> bool {
    const N: u64 = 20;
    let (r, traced, differ) = graph_only("demo_fib", || demo::demo_fib(black_box(N)));
    let w = walk(&traced.events);
    let calls = fib_calls(N) as usize;
    kprintln!(
        "graph-fib: demo_fib({N})={r}, {} entries, {} returns, max depth {}, {} unmatched, {} bad durations, {} bad values, {} lost",
        w.entries,
        w.returns,
        w.max_depth,
        w.unmatched,
        w.bad_times,
        w.bad_values,
        traced.lost
    );
    kprintln!(
        "graph-fib: expected {calls} calls, max depth {}, result {}",
        N - 1,
        fib(N)
    );
    r == fib(N)
        && w == Walk {
            entries: calls,
            returns: calls,
            max_depth: N as u32 - 1,
            ..Walk::default()
        }
        && differ == 0
}

/// Recursion `n` levels deep: `graph_deep(n) = n`.
#[inline(never)]
pub fn graph_deep(n: u64) -> u64 {
    if black_box(n) == 0 {
        0
    } else {
        black_box(graph_deep(black_box(n - 1))) + 1
    }
}

/// `test=graph-deep`: recursion deeper than the shadow stack: the first
/// `SHADOW_STACK_DEPTH` calls are hooked, the rest counted as overruns and
/// run unhooked; the result is right.
fn graph_deep_scenario() -> bool {
    const N: u64 = 100;
    platform::reset_shadow_overruns();
    let (r, traced, differ) = graph_only("graph_deep", || graph_deep(black_box(N)));
    let w = walk_counts(&traced.events);
    let overruns = platform::shadow_overruns();
    let calls = N as usize + 1;
    let hooked = calls.min(SHADOW_STACK_DEPTH);
    kprintln!(
        "graph-deep: graph_deep({N})={r}, {} entries, {} returns, {overruns} overruns",
        w.0,
        w.1
    );
    kprintln!(
        "graph-deep: expected {calls} calls on a shadow stack of {SHADOW_STACK_DEPTH}: {hooked} hooked, {} overruns",
        calls - hooked
    );
    r == N && w == (hooked, hooked) && overruns == calls - hooked && differ == 0
}

fn walk_counts(events: &[GraphEvent]) -> (usize, usize) {
    let e = events.iter().filter(|e| e.kind == GraphKind::Entry).count();
    (e, events.len() - e)
}

/// Return slots `test=graph-corrupt` put back behind the tracer's back.
static UNDONE: AtomicUsize = AtomicUsize::new(0);

extern "C" fn corrupt_return(_ip: usize, _parent: usize, _ops: &Ops, regs: &mut FtraceRegs) {
    if UNDONE.load(Ordering::Relaxed) == 0 && platform::undo_return_hook(regs) {
        UNDONE.fetch_add(1, Ordering::Relaxed);
    }
}

/// Registered after the graph tracer on `demo_leaf`: runs right after the
/// tracer hooked the return, and puts the original return address back.
static CORRUPT_OPS: Ops = Ops::new(corrupt_return, OpsFlags::empty());

/// `test=graph-corrupt`: the first `demo_leaf` call's return slot is put
/// back to the original after the tracer hooked it, so its hooked return is
/// skipped. The next hooked return (`demo_inner`'s) does not match the top
/// frame: reported once, graph tracing stops, and every call still returns
/// where it should (the demo's results are right).
fn graph_corrupt() -> bool {
    let started = tracing::start(&Setup {
        graph: true,
        filter: Some("demo_*"),
        ..Setup::default()
    });
    let registered = with_engine(|e| {
        e.set_filter(&CORRUPT_OPS, "demo_leaf")
            .and_then(|_| e.register(&CORRUPT_OPS))
            .map_err(|err| log::error!("graph-corrupt: {err}"))
            .is_ok()
    });
    let (outer, fib) = tracing::workload();
    let unregistered = with_engine(|e| e.unregister(&CORRUPT_OPS).is_ok());
    tracing::pause();
    kprintln!("demo: outer={outer} fib={fib}");
    kprintln!(
        "graph-corrupt: {} return slot put back behind the tracer's back",
        UNDONE.load(Ordering::Relaxed)
    );
    tracing::print_graph_trace();
    let differ = tracing::stop(started);
    registered
        && unregistered
        && (outer, fib) == (12, 55)
        && differ == 0
        && fgraph::is_stopped()
        && fgraph::mismatch().is_some()
}

/// A 128-bit result (two return registers on x86_64 and ppc64; memory on
/// i686).
#[inline(never)]
pub fn graph_wide(a: u64, b: u64) -> u128 {
    black_box((black_box(a) as u128) * (black_box(b) as u128) + 1)
}

/// Ten arguments: some passed on the stack on every arch.
#[inline(never)]
#[expect(clippy::too_many_arguments, reason = "the point of the test")]
pub fn graph_args10(
    a: u64,
    b: u64,
    c: u64,
    d: u64,
    e: u64,
    f: u64,
    g: u64,
    h: u64,
    i: u64,
    j: u64,
) -> u64 {
    black_box(a + 2 * b + 3 * c + 4 * d + 5 * e + 6 * f + 7 * g + 8 * h + 9 * i + 10 * j)
}

/// Floating point in and out (floating-point registers on ppc64).
#[inline(never)]
pub fn graph_float(x: f64, y: f64) -> f64 {
    black_box(black_box(x) * 1.5 + black_box(y))
}

fn abi_calls() -> (u128, u64, f64) {
    (
        graph_wide(black_box(0x1_0000_0001), black_box(0xffff_ffff_0000_0003)),
        graph_args10(1, 2, 3, 4, 5, 6, 7, 8, 9, black_box(10)),
        graph_float(black_box(2.5), black_box(0.25)),
    )
}

/// `test=graph-abi`: results of a two-register return, ten arguments and
/// floating point are identical traced and untraced; the tracer saw each
/// return, with `graph_args10`'s value.
fn graph_abi() -> bool {
    let plain = abi_calls();
    let (traced, seen, differ) = graph_only("graph_*", abi_calls);
    let ev = seen.events;
    let rets: Vec<&GraphEvent> = ev.iter().filter(|e| e.kind == GraphKind::Return).collect();
    let args10 = with_engine(|e| {
        rets.iter()
            .find(|r| {
                e.symbols()
                    .display(r.func)
                    .to_string()
                    .starts_with("kernel::graph_tests::graph_args10")
            })
            .map(|r| r.retval)
    });
    let want = (
        0x1_0000_0001u128 * 0xffff_ffff_0000_0003u128 + 1,
        385u64,
        4.0f64,
    );
    let same = |a: bool| if a { "identical" } else { "DIFFERENT" };
    kprintln!(
        "graph-abi: wide {}, args10 {}, float {} (traced vs untraced)",
        same(plain.0 == traced.0 && traced.0 == want.0),
        same(plain.1 == traced.1 && traced.1 == want.1),
        same(plain.2 == traced.2 && traced.2 == want.2)
    );
    let args10_ok = args10 == Some(want.1 as usize);
    kprintln!(
        "graph-abi: {} returns seen, graph_args10 returned {}",
        rets.len(),
        if args10_ok { "385" } else { "a wrong value" }
    );
    plain == traced && traced == want && rets.len() == 3 && args10_ok && differ == 0
}

/// What `test=fprobe`'s second graph user saw, in order: (function,
/// depth, entry?, return value).
static PROBE_LOG: spin::Mutex<Vec<(usize, usize, bool, usize)>> = spin::Mutex::new(Vec::new());

fn probe_entry(_g: &GraphOps, e: &GraphEntry<'_>, _regs: &mut FtraceRegs) -> bool {
    if let Some(mut l) = PROBE_LOG.try_lock() {
        l.push((e.func, e.depth, true, 0));
    }
    true
}

fn probe_return(_g: &GraphOps, r: &GraphReturn<'_>) {
    if let Some(mut l) = PROBE_LOG.try_lock() {
        l.push((r.func, r.depth, false, r.retval));
    }
}

/// A second graph user, an fprobe-style entry/exit pair.
static PROBE: GraphOps = GraphOps::new(probe_entry, probe_return, 0);

/// `test=fprobe`: the function_graph tracer (on `demo_*`) and a second
/// graph user (on `demo_inner,demo_leaf`) at once. They share one shadow
/// frame per call: the probe sees `demo_inner` at depth 2 and `demo_leaf`
/// at 3, exactly the tracer's depths (a second frame per call would
/// double them); its exit handler sees `demo_leaf` return `2x + 1` for
/// x = 0, 1, 2. The tracer's own output is unchanged.
fn fprobe() -> bool {
    PROBE_LOG.lock().clear();
    let started = tracing::start(&Setup {
        graph: true,
        filter: Some("demo_*"),
        ..Setup::default()
    });
    let registered = with_engine(|e| {
        e.set_filter(PROBE.ops(), "demo_inner,demo_leaf")
            .and_then(|_| e.register_graph(&PROBE))
            .map_err(|err| log::error!("fprobe: {err}"))
            .is_ok()
    });
    let (outer, fib) = tracing::workload();
    let unreg = with_engine(|e| e.unregister_graph(&PROBE).is_ok());
    tracing::pause();
    kprintln!("demo: outer={outer} fib={fib}");
    let log = core::mem::take(&mut *PROBE_LOG.lock());
    let names: Vec<(alloc::string::String, usize, bool, usize)> = with_engine(|e| {
        log.iter()
            .map(|&(f, d, en, v)| (e.symbols().display(f).to_string(), d, en, v))
            .collect()
    });
    let short = |n: &str| {
        n.split('+')
            .next()
            .unwrap_or("")
            .rsplit("::")
            .next()
            .unwrap_or("")
            .to_string()
    };
    let mut depths_ok = true;
    let mut leaf_values = Vec::new();
    for (n, d, entry, v) in &names {
        let want = match short(n).as_str() {
            "demo_inner" => 2,
            "demo_leaf" => 3,
            _ => usize::MAX,
        };
        depths_ok &= *d == want;
        if !entry && short(n) == "demo_leaf" {
            leaf_values.push(*v);
        }
    }
    let entries = names.iter().filter(|x| x.2).count();
    kprintln!(
        "fprobe: {} entries, {} returns, depths {} (one shadow frame per call), demo_leaf returned {:?}",
        entries,
        names.len() - entries,
        if depths_ok { "inner 2 leaf 3" } else { "WRONG" },
        leaf_values
    );
    tracing::print_graph_trace();
    let differ = tracing::stop(started);
    registered
        && unreg
        && depths_ok
        && entries == 6
        && names.len() == 12
        && leaf_values == [1, 3, 5]
        && (outer, fib) == (12, 55)
        && differ == 0
}
