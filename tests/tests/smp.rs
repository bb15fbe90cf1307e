//! Several CPUs on x86 (`--smp 4`): the secondary CPUs come up
//! (`cpus: 4 online`), every scenario of the one-CPU tests prints the same
//! lines with them idling beside the boot CPU, and `test=smp-stress` runs
//! 10,000 engine operations on CPU 0 while the three others run traced code
//! with their timers on, on x86_64 and every i686 build variant. The
//! scenarios without a four-CPU test of their own (here or in
//! `smp_ppc64.rs`) are compared with their one-CPU output on all three
//! arches.

use qemu_tests::{
    Boot, Outcome, assert_graph, boot_lines_cpus, boot_with, demo_calls, demo_graph,
    direct_self_guarded_line, event_line, expect, function_header_cpus, graph_header, graph_lines,
    line_matches, region_events, root,
};

/// CPUs every boot here has.
const CPUS: usize = 4;

/// Every x86 build: (arch, variant).
const X86_BUILDS: &[(&str, &str)] = &[
    ("x86_64", "fentry"),
    ("i686", "fentry"),
    ("i686", "nofp"),
    ("i686", "mcount"),
    ("i686", "nodynamic"),
];

/// Seconds `test=smp-stress` may take: on a host with fewer cores than
/// four busy vCPUs, every `sync_cores` waits for the host to schedule the
/// other vCPUs' threads (minutes for the 10,000 operations).
const STRESS_TIMEOUT: &str = "1500";

fn boot4(arch: &str, variant: &str, cmdline: &str, extra: &[&str]) -> Boot {
    let mut args = vec!["--smp", "4"];
    args.extend_from_slice(extra);
    boot_with(arch, variant, cmdline.as_bytes(), &args)
}

/// The boot lines with four CPUs, then `rest`.
fn lines(arch: &str, cmdline: &str, rest: &[&str]) -> Vec<String> {
    let mut want = boot_lines_cpus(arch, cmdline, 0, CPUS);
    want.extend(rest.iter().map(|l| l.to_string()));
    want
}

#[test]
fn runner_asks_for_multithreaded_tcg() {
    let out = std::process::Command::new(root().join("run-qemu.sh"))
        .args([
            "x86_64",
            "",
            "--smp",
            "4",
            "--kernel",
            "/nonexistent",
            "--print-command",
        ])
        .output()
        .expect("cannot run run-qemu.sh");
    let cmd = String::from_utf8_lossy(&out.stdout);
    assert!(
        cmd.contains("-smp 4") && cmd.contains("thread=multi"),
        "QEMU command: {cmd}"
    );
}

#[test]
fn four_cpus_come_online_and_the_demo_runs() {
    for &(arch, variant) in X86_BUILDS {
        let b = boot4(arch, variant, "", &[]);
        expect(
            &b,
            Outcome::Success,
            &lines(arch, "", &["demo: outer=12 fib=55", "rftrace: success"]),
        );
    }
}

#[test]
fn function_tracer_with_four_cpus() {
    let cmd = "ftrace=function ftrace_filter=demo_*";
    let calls = demo_calls();
    for &(arch, variant) in X86_BUILDS {
        let b = boot4(arch, variant, cmd, &[]);
        let mut want = lines(arch, cmd, &["demo: outer=12 fib=55"]);
        want.extend(function_header_cpus(calls.len(), CPUS));
        want.extend(calls.iter().map(|(f, p)| event_line(f, p)));
        want.push("ftrace: 0 recursions refused, 0 events lost".into());
        want.push("rftrace: success".into());
        expect(&b, Outcome::Success, &want);
    }
}

#[test]
fn function_graph_with_four_cpus() {
    let cmd = "ftrace=function_graph ftrace_filter=demo_*";
    for &(arch, variant) in X86_BUILDS {
        let b = boot4(arch, variant, cmd, &[]);
        let mut want = lines(arch, cmd, &["demo: outer=12 fib=55"]);
        want.extend(graph_header());
        let n = graph_lines(&b).len();
        want.extend((0..n).map(|_| "{GRAPH}".to_owned()));
        want.push("function_graph: 0 recursions refused, 0 events lost, 0 overruns".into());
        want.push("rftrace: success".into());
        let got = b.lines();
        let ok = got.len() == want.len()
            && got
                .iter()
                .zip(&want)
                .all(|(l, w)| w == "{GRAPH}" || line_matches(w, l));
        assert!(
            ok && b.outcome == Outcome::Success,
            "{arch}/{variant}: output differs.\n--- expected ---\n{}\n--- actual ---\n{}\n{}",
            want.join("\n"),
            b.text(),
            b.stderr
        );
        assert_graph(
            &b,
            &demo_graph(&[], 0, false),
            &format!("{arch}/{variant}: {cmd}"),
        );
    }
}

#[test]
fn toggle_int3_redirect_with_four_cpus() {
    let n = demo_calls().len();
    let toggle: Vec<String> = (1..=2)
        .map(|r| {
            format!(
                "toggle {r}: outer=12 fib=55, {n} events, 0 sites differ from nop after disable"
            )
        })
        .collect();
    for &(arch, variant) in X86_BUILDS {
        let cmd = "test=toggle ftrace_filter=demo_*";
        let mut rest: Vec<&str> = toggle.iter().map(String::as_str).collect();
        rest.push("rftrace: success");
        expect(
            &boot4(arch, variant, cmd, &[]),
            Outcome::Success,
            &lines(arch, cmd, &rest),
        );
        expect(
            &boot4(arch, variant, "test=int3", &[]),
            Outcome::Success,
            &lines(
                arch,
                "test=int3",
                &[
                    "int3: traced demo_leaf(5)=11, callback ran 1 times",
                    "int3: nop->call with int3 in place: demo_leaf(5)=11 11, callback ran 2 times, 2 traps emulated",
                    "int3: call->nop with int3 in place: demo_leaf(5)=11 11, callback ran 0 times, 2 traps emulated",
                    "int3: 0 sites differ from nop after unregister",
                    "rftrace: success",
                ],
            ),
        );
        expect(
            &boot4(arch, variant, "test=redirect", &[]),
            Outcome::Success,
            &lines(
                arch,
                "test=redirect",
                &[
                    "redirect on: outer=15 fib=55",
                    "redirect off: outer=12 fib=55, 0 sites differ from nop",
                    "rftrace: success",
                ],
            ),
        );
    }
}

#[test]
fn direct_and_region_with_four_cpus() {
    for &(arch, variant) in X86_BUILDS {
        let own = if variant == "nodynamic" {
            "list"
        } else {
            "ops trampoline"
        };
        // mcount builds: the trampolines' busy flag refuses first, uncounted.
        let refused = if matches!(variant, "mcount" | "nodynamic") {
            0
        } else {
            3
        };
        // Every path reads the context from the per-CPU area the kernel
        // described (the trampolines' fast path and the list's guard).
        let asked = 0;
        let direct = [
            format!("direct: demo_leaf -> {own}, demo_inner -> {own}, demo_outer -> list"),
            "direct: A saw 4 calls, B saw 4 calls".into(),
            format!("direct: demo_leaf -> {own}, demo_inner -> nop, demo_outer -> {own}"),
            "direct: A saw 4 calls, B saw 0 calls".into(),
            format!(
                "direct: 4 calls of demo_leaf: A saw 4, the platform was asked for the \
                 context {asked} times"
            ),
            format!(
                "direct: R on demo_leaf -> {own}, calling demo_leaf from R: entered 3 times, \
                 0 times inside itself, {refused} recursions refused"
            ),
            direct_self_guarded_line(variant != "nodynamic"),
            "direct: 0 sites differ from nop after unregister".into(),
            "rftrace: success".into(),
        ];
        let rest: Vec<&str> = direct.iter().map(String::as_str).collect();
        expect(
            &boot4(arch, variant, "test=direct", &[]),
            Outcome::Success,
            &lines(arch, "test=direct", &rest),
        );
    }
    // The region scenario exists on the fentry builds (the mcount ones have
    // no compiler site table for the region).
    for arch in ["x86_64", "i686"] {
        let mut want = lines(
            arch,
            "test=region",
            &[
                "region: filter region_* selects 1 functions",
                "region: before add: sum_squares(3)=5",
                "region: added demo_region, 2 sites, 0 failed",
                "region: traced: sum_squares(3)=5, 0 stubs in use",
                "region: removed, 0 sites differ from nop, 0 stubs in use",
                "region: after remove: sum_squares(3)=5",
            ],
        );
        let trace = region_events(event_line);
        want.extend(function_header_cpus(trace.len(), CPUS));
        want.extend(trace);
        want.push("ftrace: 0 recursions refused, 0 events lost".into());
        want.push("rftrace: success".into());
        expect(
            &boot4(arch, "fentry", "test=region", &[]),
            Outcome::Success,
            &want,
        );
    }
}

/// The numbers of one `smp-stress: cpuN:` line: rounds, wrong results,
/// timer ticks, callback calls, events written, in buffer, lost.
fn cpu_numbers(line: &str) -> Vec<u64> {
    line.split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .skip(1) // the CPU number
        .map(|s| s.parse().unwrap())
        .collect()
}

#[test]
fn smp_stress_on_every_x86_build() {
    // The default builds run the 10,000 operations; the other i686
    // variants 2,000 (each operation syncs every CPU: on a two-core host
    // the full count takes minutes per boot).
    for &(arch, variant) in X86_BUILDS {
        let ops = if variant == "fentry" { 10_000 } else { 2_000 };
        let cmd_s = if ops == 10_000 {
            "test=smp-stress".to_owned()
        } else {
            format!("test=smp-stress smp_stress_ops={ops}")
        };
        let cmd = cmd_s.as_str();
        let mut b = boot4(arch, variant, cmd, &["--timeout", STRESS_TIMEOUT]);
        // The heap difference may be negative (less in use than before).
        b.stdout = b.text().replace(", heap -", ", heap ").into_bytes();
        let mut rest = vec![format!(
            "smp-stress: {ops} engine operations on CPU 0 while {} CPUs ran the workload",
            CPUS - 1
        )];
        for cpu in 0..CPUS {
            let rounds = if cpu == 0 { "0" } else { "{N}" };
            rest.push(format!(
                "smp-stress: cpu{cpu}: {rounds} rounds, 0 wrong results, {{N}} timer ticks, callback ran {{N}} times, {{N}} events written = {{N}} in buffer + {{N}} lost"
            ));
        }
        rest.push(
            "smp-stress: redirected calls {N}, second callback calls {N}; after: 0 site bytes differ from the snapshot, heap {N} bytes more than before"
                .into(),
        );
        rest.push("rftrace: success".into());
        let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
        expect(&b, Outcome::Success, &lines(arch, cmd, &rest));
        // What the kernel checked, checked again from its numbers.
        for line in b
            .lines()
            .iter()
            .filter(|l| l.starts_with("smp-stress: cpu"))
        {
            let n = cpu_numbers(line);
            let [rounds, wrong, ticks, calls, written, in_buf, lost] = n[..] else {
                panic!("{arch}/{variant}: cannot read {line:?}");
            };
            assert_eq!(wrong, 0, "{arch}/{variant}: {line}");
            assert!(ticks > 0, "{arch}/{variant}: no timer tick: {line}");
            assert_eq!(calls, written, "{arch}/{variant}: {line}");
            assert_eq!(in_buf + lost, written, "{arch}/{variant}: {line}");
            if !line.starts_with("smp-stress: cpu0:") {
                assert!(rounds > 0, "{arch}/{variant}: {line}");
            }
        }
    }
}

/// `line` with what may differ between a one-CPU and a four-CPU boot
/// blanked: decimal numbers with a fraction (timestamps, durations) become
/// `T`, a duration's mark (`+ ! # * @ $`) and the irqs-off column go (the
/// ppc64 boot CPU takes IPIs with several CPUs), runs of spaces shrink to
/// one, and the CPU count lines are dropped by the caller.
fn normalized(line: &str) -> String {
    let c: Vec<char> = line.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < c.len() {
        let digits = |from: usize| c[from..].iter().take_while(|d| d.is_ascii_digit()).count();
        let n = digits(i);
        if n > 0 && c.get(i + n) == Some(&'.') && digits(i + n + 1) > 0 {
            i += n + 1 + digits(i + n + 1);
            while out.ends_with(' ') {
                out.pop();
            }
            if out.ends_with(['+', '!', '#', '*', '@', '$']) {
                out.pop();
                while out.ends_with(' ') {
                    out.pop();
                }
            }
            out.push_str(" T");
            continue;
        }
        if n > 0 {
            out.extend(&c[i..i + n]);
            i += n;
            continue;
        }
        if c[i] == ' ' && out.ends_with(' ') {
            i += 1;
            continue;
        }
        out.push(c[i]);
        i += 1;
    }
    out.replace("] d", "] .")
}

/// The console of `b` without the lines that name the CPU count.
fn comparable(b: &Boot) -> Vec<String> {
    b.lines()
        .iter()
        .filter(|l| !l.starts_with("cpus: "))
        .map(|l| normalized(&l.replace("#P:4", "#P:1")))
        .collect()
}

/// Every scenario not covered above prints with four CPUs exactly what it
/// prints with one (whose output the other test files assert line by
/// line): only the CPU count, timestamps and durations may differ, and the
/// boot ends the same way.
#[test]
fn every_other_scenario_is_unchanged_with_four_cpus() {
    let common = [
        "test=corrupt",
        "test=panic",
        "test=graph-fib",
        "test=graph-deep",
        "test=graph-abi",
        "test=graph-corrupt",
        "test=fprobe",
        "test=abi",
        "ftrace=function_graph ftrace_filter=demo_* trace_options=funcgraph-retval",
        "ftrace=function trace_buf_size=2K trace_clock=counter",
        "ftrace=function,function_graph ftrace_filter=demo_*",
        "ftrace=function ftrace_filter=demo_* ftrace_dump_on_oops test=panic",
    ];
    for (arch, extra) in [
        ("x86_64", &["test=int3"][..]),
        ("i686", &["test=int3"][..]),
        ("ppc64", &["test=stubs"][..]),
    ] {
        for cmd in common.iter().chain(extra) {
            let one = boot_with(arch, "fentry", cmd.as_bytes(), &[]);
            let four = boot4(arch, "fentry", cmd, &[]);
            assert_eq!(
                (one.outcome, comparable(&one)),
                (four.outcome, comparable(&four)),
                "{arch} \"{cmd}\": one CPU vs four\n--- four CPUs ---\n{}\n{}",
                four.text(),
                four.stderr
            );
        }
    }
}

#[test]
fn normalized_blanks_only_times_durations_and_marks() {
    assert_eq!(
        normalized(" 0) + 12.345 us   |    demo_leaf(); /* = 0x1 */"),
        " 0) T us | demo_leaf(); /* = 0x1 */"
    );
    assert_eq!(
        normalized("          <idle>-0       [000] d....     0.009327: f <-g"),
        " <idle>-0 [000] ..... T: f <-g"
    );
    assert_eq!(normalized("demo: outer=12 fib=55"), "demo: outer=12 fib=55");
}
