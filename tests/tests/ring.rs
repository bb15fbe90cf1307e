//! The ring buffer and Linux's trace options through the command line, on
//! every arch: a buffer too small for the demo (overwrite keeps the newest
//! events, nooverwrite the oldest; counts exact), the counter clock (exact
//! timestamps), sym-offset / sym-addr / irq-info, the dump on a panic, and
//! one warning per bad value with the rest applied.

use qemu_tests::{
    ARCHES, Outcome, boot, boot_lines, demo_calls, event_line, expect, function_header,
};

/// Every demo call as an event line, with the timestamp as a wildcard.
fn demo_lines() -> Vec<String> {
    demo_calls().iter().map(|(f, p)| event_line(f, p)).collect()
}

/// The function header with `in_buffer/written`.
fn header(in_buffer: usize, written: usize) -> Vec<String> {
    let mut h = function_header(in_buffer);
    h[2] = format!("# entries-in-buffer/entries-written: {in_buffer}/{written}   #P:1");
    h
}

#[test]
fn small_buffer_overwrite_keeps_the_newest_and_counts_exactly() {
    // 1 KiB = 256 words: 64 events of 4 words once the buffer has wrapped.
    let all = demo_lines();
    for arch in ARCHES {
        for (opt, keep_newest) in [("", true), (" trace_options=nooverwrite", false)] {
            let cmd = format!("ftrace=function ftrace_filter=demo_* trace_buf_size=1K{opt}");
            let b = boot(arch, cmd.as_bytes());
            // The counts come from the kernel; what they must satisfy does
            // not: written is the demo's call count, kept + lost = written,
            // and the events shown are exactly the newest (or oldest) ones.
            let lines = b.lines();
            let hdr = lines
                .iter()
                .find_map(|l| l.strip_prefix("# entries-in-buffer/entries-written: "))
                .unwrap_or_else(|| panic!("{arch}: no header:\n{}", b.text()));
            let (kept, rest) = hdr.split_once('/').unwrap();
            let kept: usize = kept.parse().unwrap();
            let written: usize = rest.split_whitespace().next().unwrap().parse().unwrap();
            assert_eq!(written, all.len(), "{arch}{opt}: every call written");
            assert!(kept > 0 && kept < written, "{arch}{opt}: {kept} kept");
            let shown: Vec<String> = if keep_newest {
                all[all.len() - kept..].to_vec()
            } else {
                all[..kept].to_vec()
            };
            let mut want = boot_lines(arch, &cmd, 0);
            want.push("demo: outer=12 fib=55".into());
            want.extend(header(kept, written));
            want.push(format!("CPU:0 [LOST {} EVENTS]", written - kept));
            want.extend(shown);
            want.push(format!(
                "ftrace: 0 recursions refused, {} events lost",
                written - kept
            ));
            want.push("rftrace: success".into());
            expect(&b, Outcome::Success, &want);
        }
    }
}

#[test]
fn counter_clock_gives_exact_timestamps() {
    for arch in ARCHES {
        let cmd = "ftrace=function ftrace_filter=demo_outer,demo_inner trace_clock=counter";
        let b = boot(arch, cmd.as_bytes());
        let mut want = boot_lines(arch, cmd, 0);
        want.push("demo: outer=12 fib=55".into());
        want.extend(function_header(4));
        let calls = [
            ("kernel::demo::demo_outer", "kernel::demo::demo_run"),
            ("kernel::demo::demo_inner", "kernel::demo::demo_outer"),
            ("kernel::demo::demo_inner", "kernel::demo::demo_outer"),
            ("kernel::demo::demo_inner", "kernel::demo::demo_outer"),
        ];
        for (i, (f, p)) in calls.iter().enumerate() {
            want.push(format!(
                "          <idle>-0       [000] d.... {i:12}: {f} <-{p}"
            ));
        }
        want.push("ftrace: 0 recursions refused, 0 events lost".into());
        want.push("rftrace: success".into());
        expect(&b, Outcome::Success, &want);
    }
}

#[test]
fn symbol_and_irq_info_options() {
    for arch in ARCHES {
        let cmd =
            "ftrace=function ftrace_filter=demo_leaf trace_options=sym-offset,sym-addr,noirq-info";
        let b = boot(arch, cmd.as_bytes());
        let mut want = boot_lines(arch, cmd, 0);
        want.push("demo: outer=12 fib=55".into());
        want.extend(
            [
                "# tracer: function",
                "#",
                "# entries-in-buffer/entries-written: 3/3   #P:1",
                "#",
                "#           TASK-PID     CPU#     TIMESTAMP  FUNCTION",
                "#              | |         |         |         |",
            ]
            .map(String::from),
        );
        let width = if *arch == "i686" { 8 } else { 16 };
        let addr = format!("<{}>", "{X}");
        for _ in 0..3 {
            let l = format!(
                "          <idle>-0       [000]      {{N}}.{{N}}: kernel::demo::demo_leaf+0x{{X}}/0x{{X}} {addr} <-kernel::demo::demo_inner+0x{{X}}/0x{{X}} {addr}"
            );
            want.push(l);
        }
        want.push("ftrace: 0 recursions refused, 0 events lost".into());
        want.push("rftrace: success".into());
        expect(&b, Outcome::Success, &want);
        // The addresses are printed at the word size, zero-padded.
        for l in b
            .lines()
            .iter()
            .filter(|l| l.contains(": kernel::demo::demo_leaf+"))
        {
            let rest = &l[l.find("/0x").unwrap()..];
            let a = rest.split('<').nth(1).unwrap().split('>').next().unwrap();
            assert_eq!(a.len(), width, "{arch}: {l}");
        }
    }
}

#[test]
fn dump_on_oops_prints_the_trace_then_fails() {
    for arch in ARCHES {
        let cmd = "test=panic ftrace=function ftrace_filter=demo_* ftrace_dump_on_oops trace_clock=counter";
        let b = boot(arch, cmd.as_bytes());
        assert_eq!(b.outcome, Outcome::Failure, "{arch}:\n{}", b.text());
        let lines = b.lines();
        let at = lines
            .iter()
            .position(|l| l == "ftrace: dumping the trace buffers (ftrace_dump_on_oops)")
            .unwrap_or_else(|| panic!("{arch}: no dump:\n{}", b.text()));
        assert!(
            lines[..at]
                .iter()
                .any(|l| l.starts_with("panic: test=panic"))
        );
        let mut want = function_header(4);
        for (i, (f, p)) in demo_calls()[..4].iter().enumerate() {
            want.push(format!(
                "          <idle>-0       [000] d.... {i:12}: {f} <-{p}"
            ));
        }
        assert_eq!(lines[at + 1..], want[..], "{arch}:\n{}", b.text());
    }
}

#[test]
fn bad_values_get_one_warning_each_and_the_rest_applies() {
    for arch in ARCHES {
        let cmd = "ftrace=function ftrace_filter=demo_leaf trace_buf_size=12Q trace_clock=bogus trace_options=nosuch,sym-offset trace_dump=xml ftrace_dump_on_oops=3";
        let b = boot(arch, cmd.as_bytes());
        let mut want = boot_lines(arch, cmd, 0);
        let tail = want.split_off(2);
        want.extend(
            [
                "warning: trace_buf_size: '12Q' is not a size of 1K or more (bytes, with K or M)",
                "warning: trace_clock: unknown clock 'bogus' (available: local global counter)",
                "warning: trace_options: unknown option 'nosuch'",
                "warning: trace_dump: unknown format 'xml' (available: binary)",
                "warning: ftrace_dump_on_oops: unknown value '3' (none, 1, 2 or orig_cpu)",
            ]
            .map(String::from),
        );
        want.extend(tail);
        want.push("demo: outer=12 fib=55".into());
        want.extend(function_header(3));
        for _ in 0..3 {
            want.push(
                "          <idle>-0       [000] d....     {N}.{N}: kernel::demo::demo_leaf+0x{X}/0x{X} <-kernel::demo::demo_inner+0x{X}/0x{X}".into(),
            );
        }
        want.push("ftrace: 0 recursions refused, 0 events lost".into());
        want.push("rftrace: success".into());
        expect(&b, Outcome::Success, &want);
    }
}
