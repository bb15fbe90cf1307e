//! ppc64 with several CPUs (`run-qemu.sh --smp N`): the secondary CPUs come
//! online through RTAS `start-cpu`, every scenario prints the same lines as
//! with one CPU but `cpus: 4 online` (and the function tracer's `#P:4`),
//! and `test=smp-stress` changes the tracer under three CPUs running traced
//! code with their timers on, with nothing lost or wrong.

use qemu_tests::{
    Boot, Outcome, assert_graph, boot_lines_cpus, boot_with, demo_calls, demo_graph,
    event_line_flags, expect, function_header, graph_header, graph_lines, line_matches,
    ppc64_abi_lines, region_events,
};

/// CPUs the scenarios boot with.
const CPUS: usize = 4;

fn boot_smp(cmdline: &str, cpus: usize, extra: &[&str]) -> Boot {
    let n = cpus.to_string();
    let mut args = vec!["--smp", n.as_str()];
    args.extend_from_slice(extra);
    boot_with("ppc64", "fentry", cmdline.as_bytes(), &args)
}

/// Boots `cmdline` with [`CPUS`] CPUs (multi-threaded TCG).
fn boot4(cmdline: &str) -> Boot {
    boot_smp(cmdline, CPUS, &[])
}

fn boot_lines(cmdline: &str) -> Vec<String> {
    boot_lines_cpus("ppc64", cmdline, 0, CPUS)
}

/// The function tracer's header for `n` events with [`CPUS`] CPUs.
fn header(n: usize) -> Vec<String> {
    function_header(n)
        .into_iter()
        .map(|l| l.replace("   #P:1", &format!("   #P:{CPUS}")))
        .collect()
}

/// Two and four CPUs. (Eight come online too, but the tracers' per-CPU
/// buffers, about 4 MiB each, then exceed the kernel's 16 MiB heap.)
/// With several CPUs the ppc64 boot CPU runs the workload with external
/// interrupts enabled (MSR[EE], for the IPIs), so no `d` in the flags.
fn event_line(function: &str, parent: &str) -> String {
    event_line_flags(".....", function, parent)
}

#[test]
fn secondary_cpus_come_online() {
    for cpus in [2, CPUS] {
        let b = boot_smp("", cpus, &[]);
        let mut want = boot_lines_cpus("ppc64", "", 0, cpus);
        want.extend(["demo: outer=12 fib=55".into(), "rftrace: success".into()]);
        expect(&b, Outcome::Success, &want);
    }
}

#[test]
fn function_tracer_traces_exactly_the_demo_calls() {
    let line = "ftrace=function ftrace_filter=demo_*";
    let b = boot4(line);
    let calls = demo_calls();
    let mut want = boot_lines(line);
    want.push("demo: outer=12 fib=55".into());
    want.extend(header(calls.len()));
    want.extend(calls.iter().map(|(f, p)| event_line(f, p)));
    want.push("ftrace: 0 recursions refused, 0 events lost".into());
    want.push("rftrace: success".into());
    expect(&b, Outcome::Success, &want);
}

#[test]
fn function_graph_gives_the_demo_tree_exactly() {
    let line = "ftrace=function_graph ftrace_filter=demo_*";
    let b = boot4(line);
    let mut want = boot_lines(line);
    want.push("demo: outer=12 fib=55".into());
    want.extend(graph_header());
    let n = graph_lines(&b).len();
    want.extend((0..n).map(|_| "{GRAPH}".to_owned()));
    want.push("function_graph: 0 recursions refused, 0 events lost, 0 overruns".into());
    want.push("rftrace: success".into());
    let lines = b.lines();
    let ok = lines.len() == want.len()
        && lines
            .iter()
            .zip(&want)
            .all(|(l, w)| w == "{GRAPH}" || line_matches(w, l));
    assert!(
        ok && b.outcome == Outcome::Success,
        "output differs.\n--- expected ---\n{}\n--- actual ---\n{}\n{}",
        want.join("\n"),
        b.text(),
        b.stderr
    );
    assert_graph(&b, &demo_graph(&[], 0, false), line);
}

#[test]
fn toggle_restores_every_nop() {
    let line = "test=toggle ftrace_filter=demo_*";
    let b = boot4(line);
    let n = demo_calls().len();
    let mut want = boot_lines(line);
    for round in 1..=2 {
        want.push(format!(
            "toggle {round}: outer=12 fib=55, {n} events, 0 sites differ from nop after disable"
        ));
    }
    want.push("rftrace: success".into());
    expect(&b, Outcome::Success, &want);
}

#[test]
fn redirect_changes_the_result_until_unregistered() {
    let b = boot4("test=redirect");
    let mut want = boot_lines("test=redirect");
    want.push("redirect on: outer=15 fib=55".into());
    want.push("redirect off: outer=12 fib=55, 0 sites differ from nop".into());
    want.push("rftrace: success".into());
    expect(&b, Outcome::Success, &want);
}

#[test]
fn per_callback_trampolines() {
    let b = boot4("test=direct");
    let mut want = boot_lines("test=direct");
    want.extend([
        "direct: demo_leaf -> ops trampoline, demo_inner -> ops trampoline, demo_outer -> list"
            .into(),
        "direct: A saw 4 calls, B saw 4 calls".into(),
        "direct: demo_leaf -> ops trampoline, demo_inner -> nop, demo_outer -> ops trampoline"
            .into(),
        "direct: A saw 4 calls, B saw 0 calls".into(),
        "direct: 4 calls of demo_leaf: A saw 4, the platform was asked for the context 0 times"
            .into(),
        "direct: R on demo_leaf -> ops trampoline, calling demo_leaf from R: entered 3 times, \
         0 times inside itself, 3 recursions refused"
            .into(),
        "direct: S (RECURSION) on demo_leaf -> ops trampoline, calling demo_leaf under its own \
         guard: entered 6 times, guarded 3 times, 0 times inside itself, 3 recursions refused"
            .into(),
        "direct: 0 sites differ from nop after unregister".into(),
        "rftrace: success".into(),
    ]);
    expect(&b, Outcome::Success, &want);
}

#[test]
fn region_is_traced_then_removed() {
    let b = boot4("test=region");
    let mut want = boot_lines("test=region");
    want.extend([
        "region: filter region_* selects 1 functions".into(),
        "region: before add: sum_squares(3)=5".into(),
        "region: added demo_region, 2 sites, 0 failed".into(),
        "region: traced: sum_squares(3)=5, 2 stubs in use".into(),
        "region: removed, 0 sites differ from nop, 0 stubs in use".into(),
        "region: after remove: sum_squares(3)=5".into(),
    ]);
    let trace = region_events(event_line);
    want.extend(header(trace.len()));
    want.extend(trace);
    want.push("ftrace: 0 recursions refused, 0 events lost".into());
    want.push("rftrace: success".into());
    expect(&b, Outcome::Success, &want);
}

#[test]
fn stubs_hold_the_expected_encoding() {
    let b = boot4("test=stubs");
    let mut want = boot_lines("test=stubs");
    for phase in ["init", "ops trampoline", "ftrace_regs_caller"] {
        want.push(format!(
            "ppc64: {phase}: {{N}} stubs match the expected encoding, 0 differ"
        ));
    }
    want.push("demo: outer=12 fib=55".into());
    want.push("ppc64: disabled: {N} stubs match the expected encoding, 0 differ".into());
    want.push(
        "ppc64: enable/disable twice: {N} bytes of sites and stubs compared, 0 differ".into(),
    );
    want.push("rftrace: success".into());
    expect(&b, Outcome::Success, &want);
}

#[test]
fn abi_survives_every_trampoline() {
    let b = boot4("test=abi");
    let mut want = boot_lines("test=abi");
    want.extend(ppc64_abi_lines());
    want.push("rftrace: success".into());
    expect(&b, Outcome::Success, &want);
}

/// The decimal numbers in `line`, in order.
fn numbers(line: &str) -> Vec<u64> {
    line.split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect()
}

/// `test=smp-stress` with four CPUs under `-icount` (one host thread runs
/// the vCPUs in turn: the run takes seconds even on a busy host; without
/// `--icount` it passes too, see the README). Every count is checked apart
/// from the kernel's own verdict: results, event accounting per CPU, text
/// byte for byte, heap.
fn stress(line: &str, ops: usize, extra: &[&str]) {
    let b = boot_smp(line, CPUS, extra);
    let mut want = boot_lines(line);
    want.push(format!(
        "smp-stress: {ops} engine operations on CPU 0 while {} CPUs ran the workload",
        CPUS - 1
    ));
    want.push(
        "smp-stress: cpu0: 0 rounds, 0 wrong results, {N} timer ticks, callback ran 0 times, 0 events written = 0 in buffer + 0 lost".into(),
    );
    for cpu in 1..CPUS {
        want.push(format!(
            "smp-stress: cpu{cpu}: {{N}} rounds, 0 wrong results, {{N}} timer ticks, callback ran {{N}} times, {{N}} events written = {{N}} in buffer + {{N}} lost"
        ));
    }
    want.push(
        "smp-stress: redirected calls {N}, second callback calls {N}; after: 0 site bytes differ from the snapshot, heap 0 bytes more than before".into(),
    );
    want.push("rftrace: success".into());
    expect(&b, Outcome::Success, &want);

    let lines = b.lines();
    let ctx = || b.text();
    for cpu in 0..CPUS {
        let prefix = format!("smp-stress: cpu{cpu}: ");
        let l = lines.iter().find(|l| l.starts_with(&prefix)).unwrap();
        // cpu, rounds, wrong, ticks, calls, written, in buffer, lost
        let [_, rounds, _, ticks, calls, written, in_buf, lost] = numbers(l)[..] else {
            panic!("malformed line {l:?}");
        };
        assert!(ticks > 0, "cpu{cpu} took no timer tick:\n{}", ctx());
        assert!(cpu == 0 || rounds > 0, "cpu{cpu} ran no round:\n{}", ctx());
        assert_eq!(written, calls, "cpu{cpu}: events written vs callback runs");
        assert_eq!(in_buf + lost, written, "cpu{cpu}: buffer accounting");
    }
    let last = &lines[lines.len() - 2];
    let n = numbers(last);
    assert!(
        n[0] > 0 && n[1] > 0,
        "the redirect and the second callback never ran:\n{}",
        ctx()
    );
}

#[test]
fn stress_changes_the_tracer_under_three_busy_cpus() {
    stress("test=smp-stress", 10_000, &["--icount"]);
}

/// The same without `--icount`: QEMU runs the four vCPUs in parallel host
/// threads (fewer operations: each one waits for every vCPU to be
/// scheduled, which takes milliseconds on a two-core host).
#[test]
fn stress_with_cpus_in_parallel_threads() {
    stress(
        "test=smp-stress smp_stress_ops=2000",
        2_000,
        &["--timeout", "900"],
    );
}
