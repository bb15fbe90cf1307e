//! The function_graph tracer and return hooking on every arch and build
//! variant: the exact call tree with Linux's columns, durations that nest,
//! every graph option, several graph users at once, a shadow stack too
//! small, a skipped hooked return, results unchanged by hooking, and
//! tracing everything.

use qemu_tests::{
    BUILDS, Boot, Outcome, assert_graph, boot_lines, boot_variant, demo_calls, demo_graph,
    event_line, expect, function_header, graph_header, graph_lines,
};

/// The lines around a graph trace: boot lines, the demo's result, the
/// header (checked exactly), then the graph lines (checked by
/// `assert_graph`), then the counters and the success marker.
fn expect_graph_run(b: &Boot, arch: &str, cmdline: &str, before_header: &[&str], tail: &[&str]) {
    let mut want = boot_lines(arch, cmdline, 0);
    want.extend(before_header.iter().map(|s| s.to_string()));
    want.extend(graph_header());
    let n = graph_lines(b).len();
    want.extend((0..n).map(|_| "{GRAPH}".to_owned()));
    want.extend(tail.iter().map(|s| s.to_string()));
    let lines = b.lines();
    let ok = lines.len() == want.len()
        && lines
            .iter()
            .zip(&want)
            .all(|(l, w)| w == "{GRAPH}" || qemu_tests::line_matches(w, l));
    assert!(
        ok && b.outcome == Outcome::Success,
        "{arch}: `{cmdline}` output differs.\n--- expected ---\n{}\n--- actual ---\n{}\n{}",
        want.join("\n"),
        b.text(),
        b.stderr
    );
}

const COUNTERS: &str = "function_graph: 0 recursions refused, 0 events lost, 0 overruns";

fn graph_run(cmdline: &str, want: &[(usize, String)]) {
    for &(arch, variant) in BUILDS {
        let b = boot_variant(arch, variant, cmdline.as_bytes());
        expect_graph_run(
            &b,
            arch,
            cmdline,
            &["demo: outer=12 fib=55"],
            &[COUNTERS, "rftrace: success"],
        );
        assert_graph(&b, want, &format!("{arch}/{variant}: {cmdline}"));
    }
}

#[test]
fn demo_tree_exactly_with_nested_durations() {
    graph_run(
        "ftrace=function_graph ftrace_filter=demo_*",
        &demo_graph(&[], 0, false),
    );
}

#[test]
fn max_depth_notrace_and_graph_filter() {
    graph_run(
        "ftrace=function_graph ftrace_filter=demo_* ftrace_graph_max_depth=2",
        &demo_graph(&[], 2, false),
    );
    graph_run(
        "ftrace=function_graph ftrace_filter=demo_* ftrace_graph_notrace=demo_inner",
        &demo_graph(&["demo_inner"], 0, false),
    );
    // set_graph_function: only demo_inner's subtrees, from depth 0.
    let mut inner = Vec::new();
    for _ in 0..3 {
        inner.push((0, "kernel::demo::demo_inner() {".to_owned()));
        inner.push((1, "kernel::demo::demo_leaf();".to_owned()));
        inner.push((0, "}".to_owned()));
    }
    graph_run(
        "ftrace=function_graph ftrace_filter=demo_* ftrace_graph_filter=demo_inner",
        &inner,
    );
}

#[test]
fn funcgraph_retval_shows_every_return_value() {
    // demo_leaf returns 2x + 1: 0x1, 0x3, 0x5.
    graph_run(
        "ftrace=function_graph ftrace_filter=demo_* trace_options=funcgraph-retval",
        &demo_graph(&[], 0, true),
    );
}

#[test]
fn display_options_change_the_columns() {
    for &(arch, variant) in BUILDS {
        let cmd = "ftrace=function_graph ftrace_filter=demo_leaf trace_options=nofuncgraph-duration,funcgraph-abstime,funcgraph-proc,nofuncgraph-cpu";
        let b = boot_variant(arch, variant, cmd.as_bytes());
        let mut want = boot_lines(arch, cmd, 0);
        want.push("demo: outer=12 fib=55".into());
        want.extend(
            [
                "# tracer: function_graph",
                "#",
                "#     TIME         TASK/PID                      FUNCTION CALLS",
                "#      |            |    |                       |   |   |   |",
            ]
            .map(String::from),
        );
        for _ in 0..3 {
            want.push("{N}.{N} |     <idle>-0    | kernel::demo::demo_leaf();".into());
        }
        want.push(COUNTERS.into());
        want.push("rftrace: success".into());
        // The timestamp column is right-aligned in 5 digits.
        let want: Vec<String> = want
            .into_iter()
            .map(|l| {
                if l.starts_with("{N}.") {
                    format!("    {l}")
                } else {
                    l
                }
            })
            .collect();
        expect(&b, Outcome::Success, &want);
    }
}

#[test]
fn function_and_graph_tracers_together() {
    for &(arch, variant) in BUILDS {
        let cmd = "ftrace=function,function_graph ftrace_filter=demo_*";
        let b = boot_variant(arch, variant, cmd.as_bytes());
        let calls = demo_calls();
        let mut before = vec!["demo: outer=12 fib=55".to_owned()];
        before.extend(function_header(calls.len()));
        before.extend(calls.iter().map(|(f, p)| event_line(f, p)));
        before.push("ftrace: 0 recursions refused, 0 events lost".into());
        let before: Vec<&str> = before.iter().map(String::as_str).collect();
        expect_graph_run(&b, arch, cmd, &before, &[COUNTERS, "rftrace: success"]);
        assert_graph(
            &b,
            &demo_graph(&[], 0, false),
            &format!("{arch}/{variant}: {cmd}"),
        );
    }
}

#[test]
fn bad_values_are_named_and_the_rest_applies() {
    for &(arch, variant) in BUILDS {
        let cmd = "ftrace=function_grap,function_graph ftrace_filter=demo_leaf ftrace_graph_max_depth=deep trace_options=funcgraph-bogus,funcgraph-retval";
        let b = boot_variant(arch, variant, cmd.as_bytes());
        let mut want = boot_lines(arch, cmd, 0);
        want.extend(
            [
                "warning: ftrace: unknown tracer 'function_grap' (available: function function_graph)",
                "warning: ftrace_graph_max_depth: 'deep' is not a depth (a number, 0 for no limit)",
                "warning: trace_options: unknown option 'funcgraph-bogus'",
            ]
            .map(String::from),
        );
        // The warnings come before the boot summary lines: options are
        // parsed first.
        let summary = want.split_off(2);
        let (warnings, summary) = (summary[4..].to_vec(), summary[..4].to_vec());
        want.extend(warnings);
        want.extend(summary);
        want.push("demo: outer=12 fib=55".into());
        want.extend(graph_header());
        for v in [1, 3, 5] {
            want.push(format!(
                " 0) {{D}}|  kernel::demo::demo_leaf(); /* = 0x{v} */"
            ));
        }
        want.push(COUNTERS.into());
        want.push("rftrace: success".into());
        let lines = b.lines();
        let ok = lines.len() == want.len()
            && lines
                .iter()
                .zip(&want)
                .all(|(l, w)| match w.split_once("{D}") {
                    Some((pre, post)) => {
                        l.starts_with(pre)
                            && l.ends_with(post)
                            && l.len() == pre.len() + 14 + post.len()
                    }
                    None => qemu_tests::line_matches(w, l),
                });
        assert!(
            ok && b.outcome == Outcome::Success,
            "{arch}/{variant}\n--- expected ---\n{}\n--- actual ---\n{}",
            want.join("\n"),
            b.text()
        );
        // An unmatched graph filter: reported, the graph tracer not started.
        let cmd = "ftrace=function_graph ftrace_filter=demo_* ftrace_graph_filter=nosuch";
        let b = boot_variant(arch, variant, cmd.as_bytes());
        let mut want = boot_lines(arch, cmd, 0);
        want.push("warning: ftrace_graph_filter: ftrace: no function matches 'nosuch'".into());
        want.push(
            "warning: ftrace: function_graph tracer not started: ftrace_graph_filter was not applied"
                .into(),
        );
        want.push("demo: outer=12 fib=55".into());
        want.extend(graph_header());
        want.push(COUNTERS.into());
        want.push("rftrace: success".into());
        expect(&b, Outcome::Success, &want);
    }
}

#[test]
fn tracing_everything_never_shows_the_tracer() {
    for &(arch, variant) in BUILDS {
        let b = boot_variant(arch, variant, b"ftrace=function_graph");
        assert_eq!(
            b.outcome,
            Outcome::Success,
            "{arch}/{variant}:\n{}\n{}",
            b.text(),
            b.stderr
        );
        let lines = b.lines();
        assert!(lines.contains(&"demo: outer=12 fib=55".to_owned()));
        for bad in ["ftrace::", "__rustc::", "core::", "alloc::"] {
            assert!(
                !lines.iter().any(|l| l.contains(bad)),
                "{arch}/{variant}: the trace shows {bad} code:\n{}",
                b.text()
            );
        }
        // The demo's subtree is inside, under the workload.
        let g = graph_lines(&b);
        let start = g
            .iter()
            .position(|l| l.body == "kernel::demo::demo_run() {")
            .unwrap_or_else(|| panic!("{arch}/{variant}: no demo_run:\n{}", b.text()));
        let d0 = g[start].depth;
        let demo: Vec<(usize, String)> = g[start..]
            .iter()
            .take(demo_graph(&[], 0, false).len())
            .map(|l| (l.depth - d0, l.body.clone()))
            .collect();
        assert_eq!(demo, demo_graph(&[], 0, false), "{arch}/{variant}");
        assert!(
            qemu_tests::line_matches(
                "function_graph: {N} recursions refused, 0 events lost, 0 overruns",
                &lines[lines.len() - 2]
            ),
            "{arch}/{variant}: {:?}",
            &lines[lines.len() - 2..]
        );
    }
}

#[test]
fn scenarios_check_results_against_independent_values() {
    for &(arch, variant) in BUILDS {
        let run = |t: &str, lines: &[&str]| {
            let cmd = format!("test={t}");
            let b = boot_variant(arch, variant, cmd.as_bytes());
            let mut want = boot_lines(arch, &cmd, 0);
            want.extend(lines.iter().map(|s| s.to_string()));
            want.push("rftrace: success".into());
            expect(&b, Outcome::Success, &want);
        };
        run(
            "graph-fib",
            &[
                "graph-fib: demo_fib(20)=6765, 21891 entries, 21891 returns, max depth 19, 0 unmatched, 0 bad durations, 0 bad values, 0 lost",
                "graph-fib: expected 21891 calls, max depth 19, result 6765",
            ],
        );
        run(
            "graph-deep",
            &[
                "graph-deep: graph_deep(100)=100, 64 entries, 64 returns, 37 overruns",
                "graph-deep: expected 101 calls on a shadow stack of 64: 64 hooked, 37 overruns",
            ],
        );
        run(
            "graph-abi",
            &[
                "graph-abi: wide identical, args10 identical, float identical (traced vs untraced)",
                "graph-abi: 3 returns seen, graph_args10 returned 385",
            ],
        );
    }
}

#[test]
fn two_graph_users_share_one_frame_per_call() {
    for &(arch, variant) in BUILDS {
        let b = boot_variant(arch, variant, b"test=fprobe");
        expect_graph_run(
            &b,
            arch,
            "test=fprobe",
            &[
                "demo: outer=12 fib=55",
                "fprobe: 6 entries, 6 returns, depths inner 2 leaf 3 (one shadow frame per call), demo_leaf returned [1, 3, 5]",
            ],
            &[COUNTERS, "rftrace: success"],
        );
        assert_graph(
            &b,
            &demo_graph(&[], 0, false),
            &format!("{arch}/{variant}: fprobe"),
        );
    }
}

#[test]
fn skipped_hooked_return_is_reported_and_control_returns_home() {
    for &(arch, variant) in BUILDS {
        let b = boot_variant(arch, variant, b"test=graph-corrupt");
        expect_graph_run(
            &b,
            arch,
            "test=graph-corrupt",
            &[
                "demo: outer=12 fib=55",
                "graph-corrupt: 1 return slot put back behind the tracer's back",
            ],
            &[
                COUNTERS,
                "function_graph: hooked return of kernel::demo::demo_leaf skipped (frame sp 0x{X}, returned at sp 0x{X}); graph tracing stopped",
                "rftrace: success",
            ],
        );
        // demo_leaf's entry stays open; demo_inner's return drops it and
        // stops graph tracing: nothing later is hooked.
        let want: Vec<(usize, String)> = [
            (0, "kernel::demo::demo_run() {"),
            (1, "kernel::demo::demo_outer() {"),
            (2, "kernel::demo::demo_inner() {"),
            (3, "kernel::demo::demo_leaf() {"),
            (2, "}"),
            (1, "}"),
            (0, "}"),
        ]
        .map(|(d, s)| (d, s.to_owned()))
        .to_vec();
        let got: Vec<(usize, String)> = graph_lines(&b)
            .into_iter()
            .map(|l| (l.depth, l.body))
            .collect();
        assert_eq!(got, want, "{arch}/{variant}:\n{}", b.text());
    }
}

#[test]
fn panic_backtrace_under_graph_tracing_names_the_real_callers() {
    for &(arch, variant) in BUILDS {
        let cmd = "test=panic ftrace=function_graph ftrace_filter=demo_*,workload";
        let b = boot_variant(arch, variant, cmd.as_bytes());
        assert_eq!(
            b.outcome,
            Outcome::Failure,
            "{arch}/{variant}:\n{}",
            b.text()
        );
        // Every demo frame and the workload were hooked when demo_leaf
        // panicked: their return addresses on the stack are
        // return_to_handler, and the backtrace must show the callers.
        qemu_tests::assert_backtrace(&b, arch, variant);
        if variant != "nofp" {
            // demo_leaf, demo_inner, demo_outer, demo_run and workload.
            assert_eq!(
                b.lines().last().map(String::as_str),
                Some("backtrace: 5 returns hooked by function_graph shown as their callers"),
                "{arch}/{variant}:\n{}",
                b.text()
            );
        }
    }
}
