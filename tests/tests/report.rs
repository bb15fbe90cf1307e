//! The binary trace dump on every arch, read back by `ftrace-report`
//! through `run-qemu.sh --report DIR`: the text rebuilt from the dump is
//! the one the kernel printed, byte for byte (the trace lines: the
//! counters line after each trace is not in the dump), and Debian's
//! `trace-cmd report` reads the `trace.dat` files with the same functions,
//! parents, CPUs, order and lost-event counts. trace-cmd is required: the
//! test fails, saying how to install it, when it is missing.

use std::path::{Path, PathBuf};
use std::process::Command;

use ftrace_report::columns::{
    FunctionRow, dropped_trace_cmd, function_rows_text, function_rows_trace_cmd, graph_rows_text,
    graph_rows_trace_cmd, trace_cmd_report,
};
use qemu_tests::{ARCHES, Boot, Outcome, boot_with, demo_calls, demo_graph};

/// Fails now, with the way to install it, when trace-cmd is missing.
fn require_trace_cmd() {
    let ok = Command::new("trace-cmd")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success() || !o.stdout.is_empty());
    assert!(
        ok,
        "trace-cmd is not installed, and this test reads trace.dat files with it: run \
         `scripts/setup.sh` as root, or `sudo apt-get install -y trace-cmd` (Debian's package)"
    );
}

/// A fresh directory for one boot's report, removed on drop.
struct ReportDir(PathBuf);

impl ReportDir {
    fn new(name: &str) -> Self {
        let d = std::env::temp_dir().join(format!("rftrace-report-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        ReportDir(d)
    }
    fn read(&self, f: &str) -> String {
        std::fs::read_to_string(self.0.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"))
    }
}

impl Drop for ReportDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The trace the kernel printed: `# tracer: NAME` up to the line before
/// its counters line.
fn kernel_trace(b: &Boot, tracer: &str) -> String {
    let counters = if tracer == "function" {
        "ftrace: "
    } else {
        "function_graph: "
    };
    let lines = b.lines();
    let start = lines
        .iter()
        .position(|l| *l == format!("# tracer: {tracer}"))
        .unwrap_or_else(|| panic!("no {tracer} trace:\n{}", b.text()));
    lines[start..]
        .iter()
        .take_while(|l| !(l.starts_with(counters) && l.contains(" recursions refused, ")))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// `N events lost` of the kernel's counters line for `tracer`.
fn kernel_lost(b: &Boot, tracer: &str) -> u64 {
    let prefix = if tracer == "function" {
        "ftrace: "
    } else {
        "function_graph: "
    };
    b.lines()
        .iter()
        .find(|l| l.starts_with(prefix) && l.contains(" recursions refused, "))
        .and_then(|l| l.split(", ").nth(1)?.split(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {tracer} counters line:\n{}", b.text()))
}

/// Boots `arch` with `cmdline` and `--report`, checks the report against
/// the boot's own text and trace-cmd, and returns the boot and the
/// function and graph rows of the rebuilt text.
fn report_run(
    arch: &str,
    cmdline: &str,
    name: &str,
) -> (Boot, Vec<FunctionRow>, Vec<(u32, String)>) {
    let dir = ReportDir::new(&format!("{arch}-{name}"));
    let b = boot_with(
        arch,
        "fentry",
        cmdline.as_bytes(),
        &["--report", dir.0.to_str().unwrap()],
    );
    let ctx = |what: &str| {
        format!(
            "{arch}: `{cmdline}`: {what}\n--- console ---\n{}\n--- runner ---\n{}",
            b.text(),
            b.stderr
        )
    };
    assert_eq!(
        b.outcome,
        Outcome::Success,
        "{}",
        ctx("boot or report failed")
    );
    assert!(
        b.stderr.contains(
            "ftrace-report: check: the function and function_graph text rebuilt from the dump is the kernel's, byte for byte\n"
        ),
        "{}",
        ctx("no check line")
    );
    assert_eq!(
        dir.read("console.log").as_bytes(),
        b.stdout,
        "{}",
        ctx("console.log")
    );
    // Byte for byte, compared here too (not only by the tool's --check).
    let f = dir.read("function.txt");
    let g = dir.read("function_graph.txt");
    assert_eq!(f, kernel_trace(&b, "function"), "{}", ctx("function text"));
    assert_eq!(
        g,
        kernel_trace(&b, "function_graph"),
        "{}",
        ctx("graph text")
    );
    for out in [
        "function.dat",
        "function_graph.dat",
        "trace.json",
        "function_graph.folded",
        "flamegraph.svg",
    ] {
        assert!(dir.0.join(out).is_file(), "{}", ctx(out));
    }
    // trace-cmd: the same calls, parents, CPUs, order and lost counts.
    let dat = |f: &str| -> String {
        let p: &Path = &dir.0.join(f);
        let args: &[&str] = if f == "function.dat" {
            &["-O", "parent"]
        } else {
            &[]
        };
        trace_cmd_report(p, args).unwrap_or_else(|e| panic!("{}", ctx(&e)))
    };
    let fr = function_rows_text(&f);
    let report = dat("function.dat");
    assert_eq!(
        function_rows_trace_cmd(&report),
        fr,
        "{}",
        ctx(&format!("trace-cmd report (function):\n{report}"))
    );
    let gr = graph_rows_text(&g);
    let report = dat("function_graph.dat");
    assert_eq!(
        graph_rows_trace_cmd(&report),
        gr,
        "{}",
        ctx(&format!("trace-cmd report (function_graph):\n{report}"))
    );
    let lost = kernel_lost(&b, "function_graph");
    let want = if lost > 0 { vec![(0, lost)] } else { vec![] };
    assert_eq!(
        dropped_trace_cmd(&report),
        want,
        "{}",
        ctx("graph events dropped")
    );
    (b, fr, gr)
}

#[test]
fn dump_rebuilds_the_demo_trace_and_trace_cmd_reads_it() {
    require_trace_cmd();
    let cmdline = "ftrace=function,function_graph ftrace_filter=demo_* trace_dump=binary";
    let calls: Vec<FunctionRow> = demo_calls()
        .into_iter()
        .map(|(f, p)| FunctionRow::Call(0, f.into(), p.into()))
        .collect();
    let tree: Vec<(u32, String)> = demo_graph(&[], 0, false)
        .into_iter()
        .map(|(d, t)| (0, format!("{}{t}", "  ".repeat(d))))
        .collect();
    for arch in ARCHES {
        let (_, f, g) = report_run(arch, cmdline, "demo");
        assert_eq!(f, calls, "{arch}");
        assert_eq!(g, tree, "{arch}");
    }
}

#[test]
fn lost_events_and_text_options_survive_the_dump() {
    require_trace_cmd();
    let cmdline = "ftrace=function,function_graph ftrace_filter=demo_* trace_buf_size=1024 \
                   trace_options=sym-offset,sym-addr,funcgraph-retval,funcgraph-abstime trace_dump=binary";
    for arch in ARCHES {
        let (b, f, _) = report_run(arch, cmdline, "lost");
        let lost = kernel_lost(&b, "function");
        assert!(lost > 0, "{arch}: a 1 KiB buffer must lose events");
        assert_eq!(f.first(), Some(&FunctionRow::Lost(0, lost)), "{arch}");
        assert_eq!(
            f.len() as u64,
            1 + 185 - lost,
            "{arch}: the demo makes 185 calls"
        );
    }
}
