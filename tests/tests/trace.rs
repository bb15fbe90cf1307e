//! The function tracer on every arch, through the kernel command line:
//! exact trace lines for filters and notrace, enable/disable leaving every
//! site a nop, tracing everything, redirecting a function, and a corrupted
//! site that is reported and left alone.

use qemu_tests::{
    ARCHES, Outcome, boot, boot_lines, demo_calls, demo_calls_without, event_line, expect,
    function_header, line_matches, traced_output,
};

fn traced_run(arch: &str, cmdline: &str, calls: &[(&str, &str)]) {
    let b = boot(arch, cmdline.as_bytes());
    expect(&b, Outcome::Success, &traced_output(arch, cmdline, calls));
}

#[test]
fn filter_traces_exactly_the_demo_calls() {
    for arch in ARCHES {
        traced_run(arch, "ftrace=function ftrace_filter=demo_*", &demo_calls());
    }
}

#[test]
fn notrace_removes_exactly_those_lines() {
    let calls = demo_calls_without(&["demo_inner"]);
    for arch in ARCHES {
        traced_run(
            arch,
            "ftrace=function ftrace_filter=demo_* ftrace_notrace=demo_inner",
            &calls,
        );
    }
}

#[test]
fn full_paths_and_negation_in_filters() {
    // `!` removes from the filter; full paths match the whole name.
    let calls = demo_calls_without(&["demo_run", "demo_inner", "demo_fib"]);
    for arch in ARCHES {
        traced_run(
            arch,
            "ftrace=function ftrace_filter=kernel::demo::demo_outer,*_leaf,!demo_fib",
            &calls,
        );
    }
}

#[test]
fn unmatched_filter_is_reported_and_tracing_not_started() {
    for arch in ARCHES {
        let line = "ftrace=function ftrace_filter=demo_leaf,nosuch*";
        let b = boot(arch, line.as_bytes());
        let mut want = boot_lines(arch, line, 0);
        want.push("warning: ftrace_filter: ftrace: no function matches 'nosuch*'".into());
        want.push(
            "warning: ftrace: function tracer not started: ftrace_filter was not applied".into(),
        );
        want.push("demo: outer=12 fib=55".into());
        want.extend(function_header(0));
        want.push("ftrace: 0 recursions refused, 0 events lost".into());
        want.push("rftrace: success".into());
        expect(&b, Outcome::Success, &want);
    }
}

#[test]
fn enable_disable_enable_restores_every_nop() {
    for arch in ARCHES {
        let line = "test=toggle ftrace_filter=demo_*";
        let b = boot(arch, line.as_bytes());
        let n = demo_calls().len();
        let mut want = boot_lines(arch, line, 0);
        for round in 1..=2 {
            want.push(format!(
                "toggle {round}: outer=12 fib=55, {n} events, 0 sites differ from nop after disable"
            ));
        }
        want.push("rftrace: success".into());
        expect(&b, Outcome::Success, &want);
    }
}

#[test]
fn tracing_everything_keeps_results_and_order() {
    for arch in ARCHES {
        let b = boot(arch, b"ftrace=function");
        assert_eq!(
            b.outcome,
            Outcome::Success,
            "{arch}: {}\n{}",
            b.text(),
            b.stderr
        );
        let lines = b.lines();
        assert!(lines.contains(&"demo: outer=12 fib=55".to_owned()));
        // The demo's own lines, in order, inside the full trace.
        let demo: Vec<&String> = lines
            .iter()
            .filter(|l| l.contains(": kernel::demo::demo_"))
            .collect();
        let want: Vec<String> = demo_calls().iter().map(|(f, p)| event_line(f, p)).collect();
        assert_eq!(demo.len(), want.len(), "{arch}: demo lines:\n{demo:#?}");
        for (l, w) in demo.iter().zip(&want) {
            assert!(line_matches(w, l), "{arch}: {l:?} does not match {w:?}");
        }
        // More than the demo was traced: the whole kernel's sites.
        let events: usize = lines
            .iter()
            .filter(|l| l.starts_with("          <idle>-0"))
            .count();
        assert!(events > want.len(), "{arch}: only {events} events");
        let last_two = &lines[lines.len() - 2..];
        assert!(
            line_matches(
                "ftrace: {N} recursions refused, 0 events lost",
                &last_two[0]
            ),
            "{arch}: {last_two:?}"
        );
    }
}

#[test]
fn redirect_changes_the_result_until_unregistered() {
    for arch in ARCHES {
        let b = boot(arch, b"test=redirect");
        let mut want = boot_lines(arch, "test=redirect", 0);
        want.push("redirect on: outer=15 fib=55".into());
        want.push("redirect off: outer=12 fib=55, 0 sites differ from nop".into());
        want.push("rftrace: success".into());
        expect(&b, Outcome::Success, &want);
    }
}

#[test]
fn corrupted_site_is_reported_and_left_alone() {
    for arch in ARCHES {
        let line = "test=corrupt ftrace=function ftrace_filter=demo_*";
        let b = boot(arch, line.as_bytes());
        let calls = demo_calls_without(&["demo_fib"]);
        let (expected, found) = match *arch {
            "ppc64" => ("60 00 00 00", "68 00 00 00"),
            _ => ("0f 1f 44 00 00", "66 66 66 66 90"),
        };
        let mut want = boot_lines(arch, line, 1);
        want.insert(
            4,
            format!("ftrace: failed to init site kernel::demo::demo_fib+0x{{X}} at 0x{{X}}: expected {expected}, found {found}"),
        );
        let head = boot_lines(arch, line, 0).len();
        want.extend(traced_output(arch, line, &calls).split_off(head));
        expect(&b, Outcome::Success, &want);
    }
}
