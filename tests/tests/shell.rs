//! `ftrace_shell` on every arch: a script piped into
//! `./run-qemu.sh ARCH "ftrace_shell"` drives the tracefs files over the
//! serial console, and the whole transcript is checked (timestamps,
//! durations and sizes are the only wildcards; listings in address order
//! may come in any order).

use qemu_tests::{
    ARCHES, Block, Outcome, assert_blocks, boot_input, boot_lines, demo_calls_without, demo_graph,
    event_line, function_header, graph_header, lines_of,
};

const PROMPT: &str = "rftrace# ";
const BANNER: &str = "ftrace_shell: tracefs files on the console; 'help' lists the commands";

/// One line typed into the shell and what the console shows for it.
struct Step {
    /// The bytes sent, without the newline.
    input: Vec<u8>,
    /// The prompt line as echoed (`None`: the input itself).
    echo: Option<String>,
    /// The output after it.
    out: Vec<Block>,
}

fn step(input: &str, out: Vec<Block>) -> Step {
    Step {
        input: input.as_bytes().to_vec(),
        echo: None,
        out,
    }
}

fn quiet(input: &str) -> Step {
    step(input, Vec::new())
}

fn line(s: impl Into<String>) -> Block {
    Block::Line(s.into())
}

fn any_order(v: &[&str]) -> Block {
    Block::AnyOrder(v.iter().map(|s| s.to_string()).collect())
}

fn demo(f: &str) -> String {
    format!("kernel::demo::{f}")
}

/// The input the steps make, and the whole output expected.
fn session(arch: &str, cmdline: &str, steps: &[Step], end: &[&str]) -> (Vec<u8>, Vec<Block>) {
    let mut input = Vec::new();
    let mut want = lines_of(&boot_lines(arch, cmdline, 0));
    want.push(line(BANNER));
    for s in steps {
        input.extend_from_slice(&s.input);
        // Ctrl-C ends the line itself.
        if s.input.last() != Some(&0x03) {
            input.push(b'\n');
        }
        let echoed = s
            .echo
            .clone()
            .unwrap_or_else(|| String::from_utf8(s.input.clone()).unwrap());
        want.push(line(format!("{PROMPT}{echoed}")));
        want.extend(s.out.iter().cloned());
    }
    want.extend(end.iter().map(|l| line(*l)));
    (input, want)
}

fn error(file: &str, errno: &str, detail: &str) -> Vec<Block> {
    vec![line(format!(
        "echo: write error: {errno}: {file}: {detail}"
    ))]
}

/// The filter after `demo_*`, `!demo_fib`, `!demo_leaf*`, `demo_leaf_patched`.
const GRAPH_FILTER: [&str; 4] = [
    "kernel::demo::demo_run",
    "kernel::demo::demo_outer",
    "kernel::demo::demo_inner",
    "kernel::demo::demo_leaf_patched",
];

/// The function_graph tree of the demo with that filter: `demo_leaf` and
/// `demo_fib` are not hooked.
fn graph_tree() -> Vec<Block> {
    let mut v = lines_of(&graph_header());
    v.push(Block::Graph(demo_graph(
        &["demo_fib", "demo_leaf"],
        0,
        false,
    )));
    v
}

#[test]
fn scripted_session_drives_the_tracefs_files() {
    for arch in ARCHES {
        let help = lines_of(&[
            "commands:",
            "  echo VALUE > FILE   write VALUE to a tracefs file (>> appends)",
            "  echo VALUE          print VALUE",
            "  cat FILE...         print files",
            "  ls                  list the files",
            "  run WORKLOAD        run demo, fib, deep, region",
            "  help                this text",
            "  exit [STATUS]       leave QEMU (0, the default: success; otherwise failure)",
        ]);
        let ls = lines_of(&[
            "available_filter_functions",
            "available_tracers",
            "buffer_size_kb",
            "current_tracer",
            "enabled_functions",
            "max_graph_depth",
            "set_ftrace_filter",
            "set_ftrace_notrace",
            "set_graph_function",
            "set_graph_notrace",
            "trace",
            "trace_clock",
            "trace_options",
            "tracing_on",
            "per_cpu/cpu0/stats",
        ]);
        let demo_line = || vec![line("demo: outer=12 fib=55")];
        let calls = demo_calls_without(&["demo_fib"]);
        let mut function_trace = lines_of(&function_header(calls.len()));
        function_trace.extend(calls.iter().map(|(f, p)| line(event_line(f, p))));
        let tramp = |f: &str| {
            format!(
                "{} (1)           \ttramp: ftrace_ops_tramp_1+0x0/0x{{X}} (ftrace::fgraph::fgraph_entry+0x0/0x{{X}}) ->ftrace_ops_assist_func+0x0/0x{{X}}",
                f
            )
        };
        let enabled: Vec<String> = GRAPH_FILTER.iter().map(|f| tramp(f)).collect();
        let enabled: Vec<&str> = enabled.iter().map(String::as_str).collect();
        let empty_stats = lines_of(&[
            "entries: 0",
            "overrun: 0",
            "commit overrun: 0",
            "bytes: 0",
            "oldest event ts:     0.000000",
            "now ts:     {N}.{N}",
            "dropped events: 0",
            "read events: 0",
        ]);
        let inval = "Invalid argument";
        let long = "x".repeat(300);
        let steps = vec![
            step("help", help),
            step("ls", ls),
            step("cat current_tracer", vec![line("nop")]),
            step(
                "cat available_tracers",
                vec![line("function_graph function nop")],
            ),
            quiet("echo 'demo_*' > set_ftrace_filter"),
            quiet("echo '!demo_fib' >> set_ftrace_filter"),
            step(
                "cat set_ftrace_filter",
                vec![any_order(&[
                    "kernel::demo::demo_run",
                    "kernel::demo::demo_outer",
                    "kernel::demo::demo_inner",
                    "kernel::demo::demo_leaf",
                    "kernel::demo::demo_leaf_patched",
                ])],
            ),
            quiet("echo function > current_tracer"),
            step("cat current_tracer", vec![line("function")]),
            step("run demo", demo_line()),
            step("cat trace", function_trace),
            // function_graph, the filter changed with `>>` and `!`.
            quiet("echo function_graph > current_tracer"),
            quiet("echo '!demo_leaf*' >> /sys/kernel/tracing/set_ftrace_filter"),
            quiet("echo demo_leaf_patched >> set_ftrace_filter"),
            step("cat set_ftrace_filter", vec![any_order(&GRAPH_FILTER)]),
            step("cat enabled_functions", vec![any_order(&enabled)]),
            step("run demo", demo_line()),
            step("cat trace", graph_tree()),
            // Clearing, then tracing_on off: nothing is recorded.
            quiet("echo > trace"),
            step("cat trace", lines_of(&graph_header())),
            quiet("echo 0 > tracing_on"),
            step("cat tracing_on", vec![line("0")]),
            step("run demo", demo_line()),
            step("cat trace", lines_of(&graph_header())),
            step("cat per_cpu/cpu0/stats", empty_stats),
            quiet("echo 1 > tracing_on"),
            // Bad commands and values: each answered, nothing changed.
            step(
                "frobnicate now",
                vec![line(
                    "sh: frobnicate: command not found ('help' lists the commands)",
                )],
            ),
            step(
                "echo functio > current_tracer",
                error(
                    "current_tracer",
                    inval,
                    "unknown tracer 'functio' (see available_tracers)",
                ),
            ),
            step(
                "echo nosuch >> set_ftrace_filter",
                error(
                    "set_ftrace_filter",
                    inval,
                    "ftrace: no function matches 'nosuch'",
                ),
            ),
            step(
                "echo 'demo_[ab]' > set_ftrace_filter",
                error(
                    "set_ftrace_filter",
                    inval,
                    "ftrace: bad filter pattern 'demo_[ab]': unsupported character (only '*' is a wildcard)",
                ),
            ),
            step(
                "echo deep > max_graph_depth",
                error(
                    "max_graph_depth",
                    inval,
                    "'deep' is not a depth (a number, 0 for no limit)",
                ),
            ),
            step(
                "echo funcgraph-bogus > trace_options",
                error("trace_options", inval, "unknown option 'funcgraph-bogus'"),
            ),
            step(
                "echo tsc > trace_clock",
                error(
                    "trace_clock",
                    inval,
                    "unknown clock 'tsc' (available: local global counter)",
                ),
            ),
            step(
                "echo 4096 > buffer_size_kb",
                error(
                    "buffer_size_kb",
                    "Operation not supported",
                    "the per-CPU buffers are allocated once, when the tracers are initialised, and are never resized",
                ),
            ),
            step(
                "echo 1 > enabled_functions",
                error(
                    "enabled_functions",
                    "Permission denied",
                    "the file is read-only",
                ),
            ),
            step(
                "cat nosuch",
                vec![line("cat: nosuch: No such file or directory")],
            ),
            step(
                "echo 'oops > trace",
                vec![line("sh: syntax error: unterminated quote")],
            ),
            step(
                "echo x >",
                vec![line("sh: syntax error: no file after '>'")],
            ),
            step(
                "run nosuch",
                vec![line(
                    "run: unknown workload 'nosuch' (available: demo fib deep region)",
                )],
            ),
            step(
                "exit 1 2",
                vec![line("exit: 1 2: numeric argument required")],
            ),
            Step {
                input: b"ecx\x7fho typo fixed".to_vec(),
                echo: Some("ecx\u{8} \u{8}ho typo fixed".into()),
                out: vec![line("typo fixed")],
            },
            Step {
                input: b"run demo\x03".to_vec(),
                echo: Some("run demo^C".into()),
                out: Vec::new(),
            },
            Step {
                input: long.clone().into_bytes(),
                echo: Some(long[..256].to_owned()),
                out: vec![line("sh: line too long (300 bytes, at most 256): ignored")],
            },
            Step {
                input: b"echo caf\xc3\xa9".to_vec(),
                echo: Some("echo caf\u{e9}".into()),
                out: vec![line("sh: only ASCII input is accepted: line ignored")],
            },
            Step {
                input: b"\x01\x1bcat\ttracing_on".to_vec(),
                echo: Some("cat tracing_on".into()),
                out: vec![line("1")],
            },
            quiet(""),
            // The state is what it was before the bad input.
            step("cat current_tracer", vec![line("function_graph")]),
            step("cat set_ftrace_filter", vec![any_order(&GRAPH_FILTER)]),
            step("cat max_graph_depth", vec![line("0")]),
            step("cat trace_clock", vec![line("[local] global counter")]),
            step("run demo", demo_line()),
            step("cat trace", graph_tree()),
            quiet("echo nop > current_tracer"),
            step("cat enabled_functions", Vec::new()),
            quiet("exit"),
        ];
        let (input, want) = session(arch, "ftrace_shell", &steps, &["rftrace: success"]);
        let b = boot_input(arch, b"ftrace_shell", &input);
        assert_blocks(&b, Outcome::Success, &want);
    }
}

/// Boot options are writes to the same files: the shell finds the tracer
/// they started, the options and the buffer size the command line set.
/// Switching to the counter clock empties the buffer and gives exact
/// timestamps; the text options change `trace`. The end of the input (the
/// runner sends Ctrl-D) ends the shell like `exit`.
#[test]
fn boot_options_and_end_of_input() {
    for arch in ARCHES {
        let cmdline = "ftrace_shell ftrace=function ftrace_filter=demo_leaf trace_options=funcgraph-retval,nooverwrite trace_buf_size=64K";
        let mut trace = lines_of(&function_header(3));
        for _ in 0..3 {
            trace.push(line(event_line(&demo("demo_leaf"), &demo("demo_inner"))));
        }
        let mut counted = lines_of(&function_header(3));
        for i in 0..3 {
            counted.push(line(format!(
                "          <idle>-0       [000] d.... {i:12}: {} <-{}",
                demo("demo_leaf"),
                demo("demo_inner")
            )));
        }
        let mut offsets = lines_of(&function_header(3));
        for i in 0..3 {
            offsets.push(line(format!(
                "          <idle>-0       [000] d.... {i:12}: {}+0x{{X}}/0x{{X}} <-{}+0x{{X}}/0x{{X}}",
                demo("demo_leaf"),
                demo("demo_inner")
            )));
        }
        let stats = lines_of(&[
            "entries: 3",
            "overrun: 0",
            "commit overrun: 0",
            "bytes: {N}",
            "oldest event ts: 0",
            "now ts: 3",
            "dropped events: 0",
            "read events: 0",
        ]);
        let steps = vec![
            step("cat current_tracer", vec![line("function")]),
            step("cat set_ftrace_filter", vec![line(demo("demo_leaf"))]),
            step(
                "cat trace_options",
                lines_of(&[
                    "nosym-offset",
                    "nosym-addr",
                    "nooverwrite",
                    "irq-info",
                    "funcgraph-cpu",
                    "funcgraph-overhead",
                    "nofuncgraph-proc",
                    "funcgraph-duration",
                    "nofuncgraph-abstime",
                    "funcgraph-irqs",
                    "nofuncgraph-tail",
                    "funcgraph-retval",
                ]),
            ),
            step("cat buffer_size_kb", vec![line("64")]),
            step("run demo", vec![line("demo: outer=12 fib=55")]),
            step("cat trace", trace),
            quiet("echo counter > trace_clock"),
            step("cat trace_clock", vec![line("local global [counter]")]),
            step("cat trace", lines_of(&function_header(0))),
            step("run demo", vec![line("demo: outer=12 fib=55")]),
            step("cat trace", counted),
            step("cat per_cpu/cpu0/stats", stats),
            quiet("echo sym-offset > trace_options"),
            step("cat trace", offsets),
        ];
        // No `exit`: the runner's newline, then Ctrl-D (echoed as `exit`).
        let (input, want) = session(
            arch,
            cmdline,
            &steps,
            &[PROMPT, "rftrace# exit", "rftrace: success"],
        );
        let b = boot_input(arch, cmdline.as_bytes(), &input);
        assert_blocks(&b, Outcome::Success, &want);
    }
}
