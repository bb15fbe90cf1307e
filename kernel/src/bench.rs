//! `test=bench`: deterministic per-call costs of the tracer, measured the
//! way `../shared/reference` (relative to the project root) measured Linux's (see `BENCHMARKS.md`).
//!
//! Under QEMU TCG with `-icount shift=0` guest time is the retired
//! instruction count, so a raw counter read (`arch::cycles()`) around a
//! loop of [`N`] calls gives the same figure on every run. The counter is
//! first calibrated against an asm loop of known length
//! (`arch::calibration_loop`): on x86 `rdtsc` reads one tick per
//! instruction, on ppc64 the 512 MHz timebase about 0.512. Every figure is
//! then printed in instructions.
//!
//! In one run, [`bench_target`] is called [`N`] times in a loop for each
//! configuration:
//!
//! - an empty loop (no call): the loop's own cost;
//! - (a) untraced: the site is a nop (the baseline);
//! - (b) the function tracer filtered to `bench_target`, recording on: one
//!   event per call, cost per event = (b - a) / N;
//! - (c) the same with recording off (`function::set_recording(false)`):
//!   the callback is entered and returns, dispatch cost = (c - a) / N
//!   (the function tracer's callback takes the recursion guard itself,
//!   only to record: `OpsFlags::RECURSION`);
//! - (d) recording off and a second, empty callback on the site: the site
//!   calls the list dispatcher, list dispatch cost = (d - a) / N;
//! - (e) the second callback alone: an empty callback without
//!   `RECURSION`, whose trampoline takes the recursion guard for it,
//!   dispatch including the guard = (e - a) / N (the figure to compare
//!   with Linux's, whose callbacks run under its recursion lock);
//! - then the function_graph tracer (its own loop, below).
//!
//! The figures are printed, never judged: the scenario fails only when a
//! configuration did not do what it should (wrong results, events missing
//! or lost, sites left patched). Safe code only.

use core::hint::black_box;

use ftrace::tracer::{function, graph};
use ftrace::{FtraceRegs, Ops, OpsFlags, SiteState};

use crate::arch;
use crate::kprintln;
use crate::tracing::{Engine, with_engine};

/// Calls per configuration (Linux's reference used the same count; the
/// function tracer's buffer holds [`crate::tracing::EVENTS_PER_CPU`] = 64K
/// events per CPU, so none is lost; checked at compile time).
pub const N: u64 = 50_000;

const _: () = assert!(N as usize <= crate::tracing::EVENTS_PER_CPU);

/// Iterations of the short and the long calibration loop; the difference
/// is timed, so the fixed cost of a measurement cancels out.
const CALIBRATION_ITERS: (usize, usize) = (10_000, 210_000);

/// The traced function, as small as Linux's `getpid()` handler (one load of
/// a value, one add): not inlined, and its argument and result go through
/// `black_box` so every call happens.
#[inline(never)]
pub fn bench_target(x: u64) -> u64 {
    black_box(black_box(x) + 1)
}

/// The measured loop: `n` calls of [`bench_target`].
#[inline(never)]
fn call_loop(n: u64) -> u64 {
    let mut acc = 0u64;
    for i in 0..n {
        acc = acc.wrapping_add(bench_target(black_box(i)));
    }
    black_box(acc)
}

/// [`call_loop`] without the call: the loop's own cost.
#[inline(never)]
fn empty_loop(n: u64) -> u64 {
    let mut acc = 0u64;
    for i in 0..n {
        acc = acc.wrapping_add(black_box(i) + 1);
    }
    black_box(acc)
}

/// What [`call_loop`] and [`empty_loop`] return for [`N`]: the sum of
/// `1..=N`.
const EXPECTED_SUM: u64 = N * (N + 1) / 2;

/// Counter ticks of one `f(N)` call, and its result. Not inlined: every
/// configuration is timed by the same instructions.
#[inline(never)]
fn timed(f: fn(u64) -> u64) -> (u64, u64) {
    let t0 = arch::cycles();
    let r = f(black_box(N));
    let t1 = arch::cycles();
    (t1.wrapping_sub(t0), r)
}

/// Ticks of one `arch::calibration_loop(iters)` call. Not inlined: both
/// lengths are timed by the same instructions, so their fixed cost cancels.
/// Calls of the function_graph measurement: two events each must fit the
/// graph tracer's buffer.
pub const NG: u64 = 20_000;

const _: () = assert!(2 * NG as usize <= crate::tracing::GRAPH_EVENTS_PER_CPU);

/// Like [`timed`] for `n` iterations.
#[inline(never)]
fn timed_n(f: fn(u64) -> u64, n: u64) -> (u64, u64) {
    let t0 = arch::cycles();
    let r = f(black_box(n));
    let t1 = arch::cycles();
    (t1.wrapping_sub(t0), r)
}

/// Extra instructions per call of the function_graph tracer (entry and
/// return recorded, return hooked) on `bench_target`, over `NG` calls
/// untraced in the same run; also the events written and lost.
fn graph_per_call(cal: &Calibration) -> Option<(i64, i64, usize, usize, usize)> {
    let (untraced, s0) = timed_n(call_loop, NG);
    graph::reset();
    let g = graph::ops();
    let ok = with_engine(|e| {
        graph::configure(graph::GraphFilters::default())
            .map_err(|err| log::error!("bench: {err}"))
            .ok()?;
        e.set_filter(g.ops(), FILTER)
            .and_then(|_| e.register_graph(g))
            .map_err(|err| log::error!("bench: cannot register the graph tracer: {err}"))
            .ok()
    });
    ok?;
    let (traced, s1) = timed_n(call_loop, NG);
    let (written, lost) = (graph::written(), graph::lost());
    let differ = with_engine(|e| {
        let _ = e.unregister_graph(g);
        let _ = e.clear_filter(g.ops());
        e.check_all_nops().max(crate::tracing::sites_changed())
    });
    graph::reset();
    let expect = NG * (NG + 1) / 2;
    if (s0, s1) != (expect, expect) {
        log::error!("bench: graph loop results {s0} {s1}, expected {expect}");
        return None;
    }
    let d = cal.insns(traced) as i64 - cal.insns(untraced) as i64;
    let n = NG as i64;
    Some(((d + n / 2) / n, differ as i64, written, lost, 0))
}

#[inline(never)]
fn timed_calibration(iters: usize) -> u64 {
    let t0 = arch::cycles();
    arch::calibration_loop(black_box(iters));
    let t1 = arch::cycles();
    t1.wrapping_sub(t0)
}

/// The counter's rate in ticks per [`KINSN`] instructions, rounded to an
/// integer: 1000 for x86's `rdtsc`, 512 for ppc64's 512 MHz timebase.
///
/// Rounding makes the conversion exact for both and keeps it identical
/// across runs: the timebase ticks about every 1.95 instructions, and the
/// phase of those ticks against the instruction count varies from boot to
/// boot (QEMU's virtual clock does not start at the same value), so a raw
/// tick count over the calibration loop differs by one now and then.
#[derive(Debug, Clone, Copy)]
struct Calibration {
    /// Ticks per [`KINSN`] instructions.
    ticks_per_kinsn: u64,
}

/// The instruction count [`Calibration`] states its rate for.
const KINSN: u64 = 1000;

impl Calibration {
    /// Times the short and the long calibration loop; the difference
    /// retired `(long - short) * CALIBRATION_INSNS_PER_ITER` instructions.
    fn measure() -> Self {
        let (short, long) = CALIBRATION_ITERS;
        let t_short = timed_calibration(short);
        let t_long = timed_calibration(long);
        let insns = (long - short) as u64 * arch::CALIBRATION_INSNS_PER_ITER;
        let ticks = t_long.saturating_sub(t_short);
        Calibration {
            ticks_per_kinsn: ((ticks * KINSN + insns / 2) / insns).max(1),
        }
    }

    /// `ticks` in instructions, rounded to the nearest.
    fn insns(&self, ticks: u64) -> u64 {
        let r = u128::from(self.ticks_per_kinsn);
        ((u128::from(ticks) * u128::from(KINSN) + r / 2) / r) as u64
    }
}

/// Instructions per call, rounded to the nearest: `(total - base) / N`.
fn per_call(total: u64, base: u64) -> i64 {
    let d = total as i64 - base as i64;
    let n = N as i64;
    (d + d.signum() * n / 2) / n
}

/// `extra / base` with one decimal, from the loops' totals (in
/// instructions), e.g. `13.6x`; `-` when the baseline is not positive.
fn ratio(extra: i64, base: i64) -> alloc::string::String {
    if base <= 0 {
        return "-".into();
    }
    let tenths = (extra * 10 + extra.signum() * base / 2) / base;
    let sign = if tenths < 0 { "-" } else { "" };
    alloc::format!("{sign}{}.{}x", tenths.abs() / 10, tenths.abs() % 10)
}

/// The second callback of configuration (d): does nothing, so the figure
/// is the list dispatcher's and the two callbacks' entry and return; alone
/// on the site in configuration (e).
extern "C" fn empty_callback(_ip: usize, _parent_ip: usize, _ops: &Ops, _regs: &mut FtraceRegs) {}

/// Configuration (d)'s second callback on `bench_target`.
static SECOND_OPS: Ops = Ops::new(empty_callback, OpsFlags::empty());

/// The filter both callbacks use.
const FILTER: &str = "bench_target";

/// What `bench_target`'s site calls now: `nop`, `ops trampoline` (a
/// callback's own trampoline), `list` (the list dispatcher) or `failed`.
fn target_path(e: &Engine) -> &'static str {
    let Some(i) = (0..e.len()).find(|&i| e.record_name(i) == Some("kernel::bench::bench_target"))
    else {
        return "no site";
    };
    match e.site_state(i) {
        SiteState::Failed => "failed",
        SiteState::Nop => "nop",
        SiteState::Caller | SiteState::RegsCaller => "list",
        SiteState::OpsTrampoline(_) => "ops trampoline",
    }
}

/// Sets `ops`' filter to [`FILTER`] and registers it; logs and returns
/// false on an error.
fn register_on_target(ops: &'static Ops) -> bool {
    with_engine(|e| {
        e.set_filter(ops, FILTER)
            .and_then(|_| e.register(ops))
            .map_err(|err| log::error!("bench: cannot register a callback: {err}"))
            .is_ok()
    })
}

/// Unregisters `ops` and clears its filter; false on an error.
fn unregister(ops: &'static Ops) -> bool {
    with_engine(|e| {
        e.unregister(ops)
            .and_then(|()| e.clear_filter(ops))
            .map_err(|err| log::error!("bench: cannot unregister a callback: {err}"))
            .is_ok()
    })
}

/// The filter of the per-site figures: the same few demo functions in
/// every build, matched against every site's name.
const SITE_FILTER: &str = "demo_*";

/// What [`site_costs`] measured, in instructions.
struct SiteCosts {
    /// Sites of this build (records).
    sites: usize,
    /// Boot: preparing every site ([`ftrace::Ftrace::init`]).
    init: u64,
    /// Registering a callback without a filter: every site enabled.
    enable_all: u64,
    /// Unregistering it: every site a nop again.
    disable_all: u64,
    /// Setting [`SITE_FILTER`] (every name matched against it).
    filter: u64,
    /// Functions [`SITE_FILTER`] matched.
    matched: usize,
    /// Sites found calling something while the callback was registered.
    enabled: usize,
    /// Generated functions of the scale build that returned a wrong value
    /// while every site was enabled, and after.
    wrong: usize,
    /// Sites that are not the nop afterwards (engine's check and the
    /// independent snapshot's, the larger).
    differ: usize,
}

/// The engine's bulk operations over every site of this build: boot-time
/// preparation (timed at boot), enabling and disabling all, applying a
/// filter. The function tracer is the callback, with recording off (it is
/// entered on every traced call meanwhile, and records nothing).
fn site_costs(cal: &Calibration) -> Option<SiteCosts> {
    let ftr = function::ops();
    function::set_recording(false);
    let sites = with_engine(|e| e.len());
    let t0 = arch::cycles();
    let registered = with_engine(|e| e.register(ftr));
    let t1 = arch::cycles();
    let (enabled, wrong_on) = match registered {
        Ok(()) => (
            with_engine(|e| {
                (0..e.len())
                    .filter(|&i| e.site_state(i) != SiteState::Nop)
                    .count()
            }),
            crate::scale::check_all(),
        ),
        Err(err) => {
            log::error!("bench: cannot enable every site: {err}");
            function::set_recording(true);
            return None;
        }
    };
    let t2 = arch::cycles();
    let unregistered = with_engine(|e| e.unregister(ftr));
    let t3 = arch::cycles();
    let filtered = with_engine(|e| e.set_filter(ftr, SITE_FILTER));
    let t4 = arch::cycles();
    let cleared = with_engine(|e| e.clear_filter(ftr));
    function::set_recording(true);
    function::reset();
    let (Ok(()), Ok(matched), Ok(())) = (unregistered, filtered, cleared) else {
        log::error!("bench: unregistering, filtering or clearing failed");
        return None;
    };
    let differ = with_engine(|e| e.check_all_nops().max(crate::tracing::sites_changed()));
    Some(SiteCosts {
        sites,
        init: cal.insns(crate::tracing::init_ticks()),
        enable_all: cal.insns(t1.wrapping_sub(t0)),
        disable_all: cal.insns(t3.wrapping_sub(t2)),
        filter: cal.insns(t4.wrapping_sub(t3)),
        matched,
        enabled,
        wrong: wrong_on + crate::scale::check_all(),
        differ,
    })
}

/// `total` instructions over `n` sites, rounded to the nearest.
fn per_site(total: u64, n: usize) -> u64 {
    let n = n.max(1) as u64;
    (total + n / 2) / n
}

/// The empty and the untraced loop's lines (instructions per iteration).
fn print_loops(empty: u64, untraced: u64) {
    kprintln!(
        "bench: N={N} empty loop {} insn/iteration",
        per_call(empty, 0)
    );
    kprintln!(
        "bench: N={N} untraced {} insn/call",
        per_call(untraced, empty)
    );
}

/// `test=bench`: runs the calibration and the configurations, prints
/// the figures (instructions, integers, with ratios to this run's untraced
/// baseline), then clears the function tracer's buffer. A kernel built
/// without patchable entries (`--variant nopatch`) times the two loops
/// only.
pub fn run_bench() -> bool {
    let cal = Calibration::measure();
    kprintln!(
        "bench: clock: {} ticks per {KINSN} instructions",
        cal.ticks_per_kinsn
    );

    let (empty, empty_sum) = timed(empty_loop);
    let (untraced, a_sum) = timed(call_loop);
    if with_engine(|e| e.is_empty()) {
        // Built without patchable entries (`--variant nopatch`): only the
        // untraced loop means anything. scripts/bench.sh compares it with
        // the normal build's, whose sites hold the nop.
        print_loops(cal.insns(empty), cal.insns(untraced));
        kprintln!("bench: no patchable sites (built without them): nothing to trace");
        if [empty_sum, a_sum] != [EXPECTED_SUM; 2] {
            log::error!("bench: loop results {empty_sum}, {a_sum}, expected {EXPECTED_SUM} each");
            return false;
        }
        return true;
    }

    let ftr = function::ops();
    function::set_recording(true);
    function::reset();
    let mut ok = register_on_target(ftr);
    let path_alone = with_engine(|e| target_path(e));
    let (event, b_sum) = timed(call_loop);
    let (written, lost) = (function::written(), function::lost());

    function::set_recording(false);
    let (dispatch, c_sum) = timed(call_loop);

    ok &= register_on_target(&SECOND_OPS);
    let path_two = with_engine(|e| target_path(e));
    let (list, d_sum) = timed(call_loop);

    // (e) The second callback alone: an empty callback without
    // `RECURSION`, so its own trampoline takes the recursion guard for it.
    ok &= unregister(ftr);
    let path_guarded = with_engine(|e| target_path(e));
    let (guarded, f_sum) = timed(call_loop);

    ok &= unregister(&SECOND_OPS);
    function::set_recording(true);
    function::reset();
    let differ = with_engine(|e| e.check_all_nops().max(crate::tracing::sites_changed()));

    let [empty, untraced, event, dispatch, list, guarded] =
        [empty, untraced, event, dispatch, list, guarded].map(|t| cal.insns(t));
    let base = untraced as i64 - empty as i64;
    let (e, d, l, g) = (
        event as i64 - untraced as i64,
        dispatch as i64 - untraced as i64,
        list as i64 - untraced as i64,
        guarded as i64 - untraced as i64,
    );
    print_loops(empty, untraced);
    kprintln!(
        "bench: function tracer +{} insn/event ({} baseline), dispatch only +{} ({}), list dispatch (2 callbacks) +{} ({})",
        per_call(event, untraced),
        ratio(e, base),
        per_call(dispatch, untraced),
        ratio(d, base),
        per_call(list, untraced),
        ratio(l, base)
    );
    kprintln!(
        "bench: dispatch including the recursion guard +{} insn/call ({}): an empty callback without RECURSION alone -> {path_guarded}",
        per_call(guarded, untraced),
        ratio(g, base)
    );
    kprintln!("bench: paths: function tracer alone -> {path_alone}, two callbacks -> {path_two}");
    kprintln!(
        "bench: {written} events written, {lost} lost; buffer cleared, {differ} sites differ from nop"
    );

    let graph_ok = match graph_per_call(&cal) {
        Some((per_call_g, differ_g, written_g, lost_g, _)) => {
            kprintln!(
                "bench: function_graph +{per_call_g} insn/call (entry and return, {} baseline); N={NG}, {written_g} events written, {lost_g} lost, {differ_g} sites differ from nop",
                ratio(per_call_g * N as i64, base)
            );
            written_g as u64 == 2 * NG && lost_g == 0 && differ_g == 0
        }
        None => false,
    };

    let sites_ok = match site_costs(&cal) {
        Some(c) => {
            let n = c.sites;
            kprintln!(
                "bench: sites: {n} records; boot init +{} insn/site, enable all +{} insn/site, disable all +{} insn/site, filter '{SITE_FILTER}' +{} insn/site ({} matched)",
                per_site(c.init, n),
                per_site(c.enable_all, n),
                per_site(c.disable_all, n),
                per_site(c.filter, n),
                c.matched,
            );
            kprintln!(
                "bench: sites: {} enabled at once, {} generated functions wrong, {} sites differ from nop",
                c.enabled,
                c.wrong,
                c.differ
            );
            c.enabled == n && c.wrong == 0 && c.differ == 0
        }
        None => false,
    };
    kprintln!(
        "bench: memory: {} bytes per site record, {} per function event, {} per graph event",
        ftrace::site::SITE_BYTES,
        function::EVENT_BYTES,
        graph::EVENT_BYTES
    );

    let sums = [empty_sum, a_sum, b_sum, c_sum, d_sum, f_sum];
    if sums != [EXPECTED_SUM; 6] {
        log::error!("bench: loop results {sums:?}, expected {EXPECTED_SUM} each");
        ok = false;
    }
    ok && graph_ok
        && sites_ok
        && written as u64 == N
        && lost == 0
        && differ == 0
        && path_alone != "nop"
        && path_two == "list"
}
