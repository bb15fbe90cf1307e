//! The tracefs control API (`ftrace::control`) against Linux's documented
//! semantics, on the mock arch: file contents exactly as Linux prints
//! them, `>` / `>>` / `!` on the filter files, tracer switches that empty
//! the buffer, `tracing_on`, the ring buffer's counters in
//! `per_cpu/cpuN/stats` (overwrite and nooverwrite), the trace clocks and
//! the text options applied to `trace`, errors that name the bad value and
//! change nothing.
//!
//! The tracers are global singletons, so this file is its own test binary
//! (its own process) and every test takes [`env`]'s lock; only
//! `graph_tracer_files` ever runs the function_graph tracer.

use std::string::{String, ToString};
use std::sync::{Mutex, MutexGuard};
use std::vec::Vec;

use ftrace::control::{Control, ControlError, ControlState, Errno, Tracers};
use ftrace::mock::{MockArch, MockPlatform, SITE_STRIDE, call_site};
use ftrace::ops::{Ops, OpsFlags};
use ftrace::regs::FtraceRegs;
use ftrace::tracer::{function, graph};
use ftrace::tramp::{OpsSlots, OpsTrampPool};
use ftrace::{Ftrace, fgraph};
use ftrace_abi::symtab::{SymbolTable, encode};

type Engine = Ftrace<MockArch, MockPlatform>;

/// The mock kernel's functions, one site each, in address order.
const NAMES: &[&str] = &[
    "kernel::demo::demo_run",
    "kernel::demo::demo_outer",
    "kernel::demo::demo_inner",
    "kernel::demo::demo_leaf",
    "kernel::demo::demo_fib",
    "kernel::tracing::workload",
    "kernel::shell::run_line",
];
const RUN: usize = 0;
const OUTER: usize = 1;
const INNER: usize = 2;
const LEAF: usize = 3;
const FIB: usize = 4;
const WORKLOAD: usize = 5;

/// Events each CPU's function buffer is sized for (small, to see losses:
/// 128 bytes, 32 words).
const FUNCTION_EVENTS: usize = 8;
/// Events each CPU's function_graph buffer is sized for.
const GRAPH_EVENTS: usize = 64;
/// Words of a function event in the ring buffer.
const FUNCTION_WORDS: usize = 4;

/// Mock pool trampoline `i` (argument-register entry).
const TRAMP: usize = 0x3000_0000;

struct Env {
    ft: Engine,
    st: ControlState,
    p: &'static MockPlatform,
    sites: Vec<usize>,
}

impl Env {
    fn fs(&mut self) -> Control<'_, MockArch, MockPlatform> {
        Control::new(&mut self.ft, &mut self.st)
    }

    fn read(&mut self, file: &str) -> String {
        let mut s = String::new();
        self.fs()
            .read(file, &mut s)
            .unwrap_or_else(|e| panic!("read {file}: {e}"));
        s
    }

    fn write(&mut self, file: &str, value: &str) {
        self.fs()
            .write(file, value, false)
            .unwrap_or_else(|e| panic!("echo {value} > {file}: {e}"));
    }

    fn append(&mut self, file: &str, value: &str) {
        self.fs()
            .write(file, value, true)
            .unwrap_or_else(|e| panic!("echo {value} >> {file}: {e}"));
    }

    fn fails(&mut self, file: &str, value: &str, append: bool) -> ControlError {
        match self.fs().write(file, value, append) {
            Ok(()) => panic!("echo {value} > {file} was accepted"),
            Err(e) => e,
        }
    }

    /// Function `i` called from function `parent` (its site + 7): true
    /// when its site called the tracer.
    fn call(&self, i: usize, parent: usize) -> bool {
        let mut regs = FtraceRegs::zeroed();
        call_site(&self.ft, self.sites[i], self.sites[parent] + 7, &mut regs)
    }
}

/// The shared engine and state, reset to Linux's defaults: `nop`, no
/// filters, tracing on, empty buffers.
fn env() -> MutexGuard<'static, Option<Env>> {
    static ENV: Mutex<Option<Env>> = Mutex::new(None);
    let mut g = ENV.lock().unwrap_or_else(|e| e.into_inner());
    let e = g.get_or_insert_with(|| {
        let (p, sites) = MockPlatform::with_sites(NAMES.len());
        let mut syms: Vec<(u64, u32, &str)> = sites
            .iter()
            .zip(NAMES)
            .map(|(&s, &n)| (s as u64, SITE_STRIDE as u32, n))
            .collect();
        syms.push((TRAMP as u64, 0x100, "ftrace_ops_tramp"));
        syms.push((
            ftrace::ops::assist_func_addr() as u64,
            0x40,
            "ftrace_ops_assist_func",
        ));
        syms.push((
            function::ops().func() as usize as u64,
            0x80,
            "function_trace_call",
        ));
        let table = SymbolTable::parse(Box::leak(encode(&syms, false).into_boxed_slice())).unwrap();
        let slots: Vec<std::sync::atomic::AtomicUsize> = (0..2)
            .map(|_| std::sync::atomic::AtomicUsize::new(0))
            .collect();
        let pool = OpsTrampPool::new(
            OpsSlots::new(Box::leak(slots.into_boxed_slice())),
            core::array::from_fn(|i| TRAMP + 0x100 * i),
            core::array::from_fn(|i| TRAMP + 0x80_0000 + 0x100 * i),
        );
        let mut ft = Ftrace::new(
            MockArch::with_pool(pool),
            p,
            sites.iter().copied(),
            Some(table),
        )
        .unwrap();
        assert_eq!(ft.init().failed.len(), 0);
        function::init(p, FUNCTION_EVENTS, sites[0]);
        graph::init(p, GRAPH_EVENTS, sites[0]);
        Env {
            ft,
            st: ControlState::new(),
            p,
            sites,
        }
    });
    for (f, v) in [
        ("current_tracer", "nop"),
        ("set_ftrace_filter", ""),
        ("set_ftrace_notrace", ""),
        ("set_graph_function", ""),
        ("set_graph_notrace", ""),
        ("max_graph_depth", "0"),
        ("tracing_on", "1"),
        ("trace_options", "overwrite"),
        ("trace_options", "irq-info"),
        ("trace_options", "nosym-offset"),
        ("trace_options", "nosym-addr"),
        ("trace_clock", "local"),
        ("trace", ""),
    ] {
        e.write(f, v);
    }
    g
}

fn header(tracer: &str, n: usize, written: usize) -> String {
    format!(
        "# tracer: {tracer}\n#\n# entries-in-buffer/entries-written: {n}/{written}   #P:1\n#\n\
#                                _-----=> irqs-off/BH-disabled\n\
#                               / _----=> need-resched\n\
#                              | / _---=> hardirq/softirq\n\
#                              || / _--=> preempt-depth\n\
#                              ||| / _-=> migrate-disable\n\
#                              |||| /     delay\n\
#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION\n\
#              | |         |   |||||     |         |\n"
    )
}

fn line(f: usize, parent: usize) -> String {
    format!(
        "          <idle>-0       [000] .....     0.000000: {} <-{}\n",
        NAMES[f], NAMES[parent]
    )
}

fn names(idx: &[usize]) -> String {
    idx.iter().map(|&i| format!("{}\n", NAMES[i])).collect()
}

#[test]
fn files_and_their_defaults() {
    let mut g = env();
    let e = g.as_mut().unwrap();
    let files = e.fs().files();
    assert_eq!(files.len(), ftrace::control::FILES.len() + 1);
    assert_eq!(files.last().unwrap(), "per_cpu/cpu0/stats");
    let want = [
        ("current_tracer", "nop\n".to_string()),
        ("available_tracers", "function_graph function nop\n".into()),
        ("tracing_on", "1\n".into()),
        (
            "set_ftrace_filter",
            "#### all functions enabled ####\n".into(),
        ),
        (
            "set_ftrace_notrace",
            "#### no functions disabled ####\n".into(),
        ),
        (
            "set_graph_function",
            "#### all functions enabled ####\n".into(),
        ),
        (
            "set_graph_notrace",
            "#### no functions disabled ####\n".into(),
        ),
        ("max_graph_depth", "0\n".into()),
        ("trace_clock", "[local] global counter\n".into()),
        (
            "trace_options",
            "nosym-offset\nnosym-addr\noverwrite\nirq-info\n\
funcgraph-cpu\nfuncgraph-overhead\nnofuncgraph-proc\nfuncgraph-duration\n\
nofuncgraph-abstime\nfuncgraph-irqs\nnofuncgraph-tail\nnofuncgraph-retval\n"
                .into(),
        ),
        ("available_filter_functions", names(&[0, 1, 2, 3, 4, 5, 6])),
        ("enabled_functions", String::new()),
        ("trace", header("nop", 0, 0)),
        (
            "per_cpu/cpu0/stats",
            "entries: 0\noverrun: 0\ncommit overrun: 0\nbytes: 0\n\
oldest event ts:     0.000000\nnow ts:     0.000000\ndropped events: 0\nread events: 0\n"
                .into(),
        ),
    ];
    for (f, w) in want {
        assert_eq!(e.read(f), w, "{f}");
    }
    let kb = e.read("buffer_size_kb");
    let ring = function::ring().unwrap();
    assert_eq!(kb, format!("{}\n", ring.bytes_per_cpu() / 1024));
    for f in files.iter().filter(|f| !f.starts_with("per_cpu")) {
        assert!(
            ftrace::control::FILES.contains(&f.as_str()),
            "{f} listed but unknown"
        );
    }
    for f in files {
        let mut s = String::new();
        e.fs().read(&f, &mut s).unwrap();
    }
}

#[test]
fn unknown_and_read_only_files_are_refused() {
    let mut g = env();
    let e = g.as_mut().unwrap();
    for f in [
        "nosuch",
        "per_cpu/cpu1/stats",
        "per_cpu/cpu00/stats",
        "per_cpu/cpu/stats",
        "",
    ] {
        let mut s = String::new();
        let err = e.fs().read(f, &mut s).unwrap_err();
        assert_eq!(err, ControlError::NoSuchFile(f.to_string()));
        assert_eq!(err.errno(), Errno::NoEnt);
        assert_eq!(err.errno().description(), "No such file or directory");
        assert_eq!(e.fails(f, "1", false).errno(), Errno::NoEnt);
    }
    for f in [
        "available_tracers",
        "available_filter_functions",
        "enabled_functions",
        "per_cpu/cpu0/stats",
    ] {
        let err = e.fails(f, "x", false);
        assert_eq!((err.errno(), err.errno().code()), (Errno::Acces, 13), "{f}");
    }
}

#[test]
fn set_ftrace_filter_replaces_appends_and_removes() {
    let mut g = env();
    let e = g.as_mut().unwrap();
    let gops: &'static Ops = graph::ops().ops();
    e.write("set_ftrace_filter", "demo_*");
    assert_eq!(e.read("set_ftrace_filter"), names(&[0, 1, 2, 3, 4]));
    // Both tracers share it (Linux's global filter).
    assert_eq!(e.ft.ops_filter(gops).map(|s| s.len()), Some(5));
    e.append("set_ftrace_filter", "workload");
    e.append("set_ftrace_filter", "!demo_fib");
    assert_eq!(e.read("set_ftrace_filter"), names(&[0, 1, 2, 3, 5]));
    // Whitespace separates patterns as in Linux; commas too; `\n` from echo.
    e.write(
        "set_ftrace_filter",
        "demo_leaf  kernel::demo::demo_run,*_fib\n",
    );
    assert_eq!(e.read("set_ftrace_filter"), names(&[0, 3, 4]));
    // `>` with `!` only: truncated first, so nothing is left: every function.
    e.write("set_ftrace_filter", "!demo_leaf");
    assert_eq!(
        e.read("set_ftrace_filter"),
        "#### all functions enabled ####\n"
    );
    e.write("set_ftrace_filter", "demo_inner");

    // Bad or unmatched patterns: EINVAL naming them, nothing changed.
    for (v, append, msg) in [
        ("nosuch", false, "ftrace: no function matches 'nosuch'"),
        ("nosuch*", true, "ftrace: no function matches 'nosuch*'"),
        (
            "demo_[ab]",
            false,
            "ftrace: bad filter pattern 'demo_[ab]': unsupported character (only '*' is a wildcard)",
        ),
        ("!nosuch", true, "ftrace: no function matches '!nosuch'"),
    ] {
        let err = e.fails("set_ftrace_filter", v, append);
        assert_eq!(err.to_string(), msg);
        assert_eq!(err.errno(), Errno::Inval);
        assert_eq!(e.read("set_ftrace_filter"), names(&[INNER]), "after {v}");
        assert_eq!(e.ft.ops_filter(gops).map(|s| s.len()), Some(1));
    }
    // `>>` of nothing changes nothing; `>` of nothing clears.
    e.append("set_ftrace_filter", "");
    assert_eq!(e.read("set_ftrace_filter"), names(&[INNER]));
    e.write("set_ftrace_filter", "\n");
    assert_eq!(
        e.read("set_ftrace_filter"),
        "#### all functions enabled ####\n"
    );

    // set_ftrace_notrace: the same operations.
    e.write("set_ftrace_notrace", "demo_fib demo_leaf");
    e.append("set_ftrace_notrace", "!demo_leaf");
    e.append("set_ftrace_notrace", "run_line");
    assert_eq!(e.read("set_ftrace_notrace"), names(&[4, 6]));
    assert_eq!(
        e.fails("set_ftrace_notrace", "zz", true).to_string(),
        "ftrace: no function matches 'zz'"
    );
    assert_eq!(e.read("set_ftrace_notrace"), names(&[4, 6]));
    e.write("set_ftrace_notrace", "");
    assert_eq!(
        e.read("set_ftrace_notrace"),
        "#### no functions disabled ####\n"
    );
}

#[test]
fn current_tracer_switches_and_empties_the_buffer() {
    let mut g = env();
    let e = g.as_mut().unwrap();
    let err = e.fails("current_tracer", "functio", false);
    assert_eq!(
        err.to_string(),
        "unknown tracer 'functio' (see available_tracers)"
    );
    assert_eq!(err.errno().description(), "Invalid argument");
    assert_eq!(e.read("current_tracer"), "nop\n");
    assert!(!function::ops().is_enabled());

    e.write("set_ftrace_filter", "demo_* !demo_fib");
    e.write("current_tracer", "function\n");
    assert_eq!(e.read("current_tracer"), "function\n");
    assert!(e.call(RUN, WORKLOAD));
    assert!(!e.call(FIB, RUN), "filtered out: still the nop");
    e.call(OUTER, RUN);
    let trace = e.read("trace");
    assert_eq!(
        trace,
        header("function", 2, 2) + &line(RUN, WORKLOAD) + &line(OUTER, RUN)
    );
    // The same tracer again: nothing happens, the buffer stays.
    e.append("current_tracer", "function");
    assert_eq!(e.read("trace"), trace);
    // A bad name: nothing changed, still tracing.
    e.fails("current_tracer", "blk", false);
    assert_eq!(e.read("current_tracer"), "function\n");
    assert!(e.call(LEAF, INNER));
    assert_eq!(
        e.read("per_cpu/cpu0/stats").lines().next(),
        Some("entries: 3")
    );
    // nop: unregistered, sites are nops again, buffer emptied.
    e.write("current_tracer", "nop");
    assert_eq!(e.ft.check_all_nops(), 0);
    assert_eq!(e.read("trace"), header("nop", 0, 0));
    assert!(!e.call(RUN, WORKLOAD));
}

#[test]
fn tracing_on_and_trace_writes() {
    let mut g = env();
    let e = g.as_mut().unwrap();
    e.write("set_ftrace_filter", "demo_run");
    e.write("current_tracer", "function");
    e.write("tracing_on", "0");
    assert_eq!(e.read("tracing_on"), "0\n");
    assert!(e.call(RUN, WORKLOAD), "the callback still runs");
    assert_eq!(e.read("trace"), header("function", 0, 0));
    for bad in ["", "on", "-1", "0x1", "1 2"] {
        let err = e.fails("tracing_on", bad, false);
        assert_eq!(
            err.to_string(),
            format!(
                "'{}' is not a number (0: off, anything else: on)",
                bad.trim()
            )
        );
        assert_eq!(e.read("tracing_on"), "0\n");
    }
    e.write("tracing_on", " 2\n");
    assert_eq!(e.read("tracing_on"), "1\n");
    e.call(RUN, WORKLOAD);
    e.call(RUN, WORKLOAD);
    assert_eq!(e.read("trace").lines().count(), 14);
    // `>>` to trace changes nothing; `>` empties it.
    e.append("trace", "");
    assert_eq!(e.read("trace").lines().count(), 14);
    e.write("trace", "");
    assert_eq!(e.read("trace"), header("function", 0, 0));
    // A full buffer in overwrite mode (the default): the oldest events
    // go, counted as `overrun`; Linux's stats format.
    let calls = 2 * FUNCTION_EVENTS + 3;
    for _ in 0..calls {
        e.call(RUN, WORKLOAD);
    }
    let s = function::cpu_stats(0);
    let kept = s.in_buffer as usize;
    assert!(kept > 0 && kept < calls, "{kept} kept");
    assert_eq!(
        (s.written as usize, s.overwritten as usize, s.dropped),
        (calls, calls - kept, 0)
    );
    // `bytes`: the words holding committed events, their headers and
    // timestamp records included (every mock event carries an extended
    // timestamp: the mock clock stays at 0).
    let stats = |kept: usize, overrun: usize, dropped: usize| {
        let ring = function::ring().unwrap();
        let bytes = ring.used_bytes(0);
        assert!(bytes >= kept * FUNCTION_WORDS * 4 && bytes <= ring.bytes_per_cpu());
        format!(
            "entries: {kept}\noverrun: {overrun}\ncommit overrun: 0\nbytes: {bytes}\n\
oldest event ts:     0.000000\nnow ts:     0.000000\ndropped events: {dropped}\nread events: 0\n"
        )
    };
    assert_eq!(e.read("per_cpu/cpu0/stats"), stats(kept, calls - kept, 0));
    let trace = e.read("trace");
    assert!(
        trace.starts_with(
            &(header("function", kept, calls) + &format!("CPU:0 [LOST {} EVENTS]\n", calls - kept))
        ),
        "{trace}"
    );
    assert_eq!(trace.lines().count(), 12 + 1 + kept);

    // nooverwrite: the newest are refused, counted as `dropped events`.
    e.write("trace_options", "nooverwrite");
    assert!(e.read("trace_options").contains("\nnooverwrite\n"));
    assert!(!function::ring().unwrap().overwrite());
    assert!(!graph::ring().unwrap().overwrite(), "both tracers' buffers");
    e.write("trace", "");
    for _ in 0..calls {
        e.call(RUN, WORKLOAD);
    }
    let s = function::cpu_stats(0);
    let kept2 = s.in_buffer as usize;
    assert_eq!(
        (s.written as usize, s.overwritten, s.dropped as usize),
        (calls, 0, calls - kept2)
    );
    assert_eq!(e.read("per_cpu/cpu0/stats"), stats(kept2, 0, calls - kept2));
    e.write("trace_options", "overwrite");
    assert!(function::ring().unwrap().overwrite() && graph::ring().unwrap().overwrite());
}

extern "C" fn regs_cb(_ip: usize, _parent: usize, _ops: &Ops, _regs: &mut FtraceRegs) {}
/// A live-patching style callback: full frame, may change the ip.
static PATCHER: Ops = Ops::new(regs_cb, OpsFlags::IPMODIFY);

#[test]
fn enabled_functions_as_linux_prints_them() {
    let mut g = env();
    let e = g.as_mut().unwrap();
    e.write("set_ftrace_filter", "demo_run demo_outer");
    e.write("current_tracer", "function");
    // Alone on its sites: the function tracer's own pool trampoline.
    // Which slot of the pool it holds depends on the tests before (a
    // callback keeps its slot for good); slot 0 has a symbol.
    let tramp = e.ft.site_target(RUN);
    assert!(matches!(
        e.ft.site_state(RUN),
        ftrace::SiteState::OpsTrampoline(_)
    ));
    let tramp_name = if tramp == TRAMP {
        "ftrace_ops_tramp+0x0/0x100".to_owned()
    } else {
        format!("{tramp:#x}")
    };
    let tramp_line = |n: &str| {
        format!(
            "{n} (1)           \ttramp: {tramp_name} (function_trace_call+0x0/0x80) ->ftrace_ops_assist_func+0x0/0x40\n"
        )
    };
    assert_eq!(
        e.read("enabled_functions"),
        tramp_line(NAMES[RUN]) + &tramp_line(NAMES[OUTER])
    );
    // A second callback on demo_outer: two references, the full-frame
    // list path (R), IPMODIFY (I, M); demo_leaf is PATCHER's alone.
    e.ft.set_filter(&PATCHER, "demo_outer,demo_leaf").unwrap();
    e.ft.register(&PATCHER).unwrap();
    // Its own trampoline comes from the process-wide pool, which other
    // tests running at the same time may have taken: then the site uses
    // the shared regs trampoline and Linux prints no `tramp:` for it.
    let patcher_tramp = e.ft.site_target(LEAF);
    let leaf_line = match e.ft.site_state(LEAF) {
        ftrace::SiteState::OpsTrampoline(_) => format!(
            "kernel::demo::demo_leaf (1) R I     M \ttramp: {patcher_tramp:#x} ({:#x}) ->ftrace_ops_assist_func+0x0/0x40\n",
            regs_cb as *const () as usize
        ),
        _ => "kernel::demo::demo_leaf (1) R I     M \n".to_owned(),
    };
    assert_eq!(
        e.read("enabled_functions"),
        tramp_line(NAMES[RUN]) + "kernel::demo::demo_outer (2) R I     M \n" + &leaf_line
    );
    e.ft.unregister(&PATCHER).unwrap();
    e.write("current_tracer", "nop");
    assert_eq!(e.read("enabled_functions"), "");
}

#[test]
fn options_clock_and_buffer_size() {
    let mut g = env();
    let e = g.as_mut().unwrap();
    e.write("trace_options", "nofuncgraph-cpu");
    e.write("trace_options", "funcgraph-retval\n");
    e.write("trace_options", "nofuncgraph-irqs");
    assert_eq!(
        e.read("trace_options"),
        "nosym-offset\nnosym-addr\noverwrite\nirq-info\n\
nofuncgraph-cpu\nfuncgraph-overhead\nnofuncgraph-proc\nfuncgraph-duration\n\
nofuncgraph-abstime\nnofuncgraph-irqs\nnofuncgraph-tail\nfuncgraph-retval\n"
    );
    assert!(e.st.graph_filters().skip_irqs);
    for bad in [
        "funcgraph-bogus",
        "print-parent",
        "nooverwrite overwrite",
        "funcgraph-cpu funcgraph-tail",
    ] {
        let err = e.fails("trace_options", bad, false);
        assert_eq!(err.to_string(), format!("unknown option '{bad}'"));
        assert_eq!(err.errno(), Errno::Inval);
    }
    for o in ["funcgraph-cpu", "nofuncgraph-retval", "funcgraph-irqs"] {
        e.write("trace_options", o);
    }

    // The function tracer's text options, applied to `trace`.
    e.write("set_ftrace_filter", "demo_outer");
    e.write("current_tracer", "function");
    e.call(OUTER, RUN);
    e.write("trace_options", "sym-offset");
    e.write("trace_options", "sym-addr");
    e.write("trace_options", "noirq-info");
    assert!(
        e.read("trace_options")
            .starts_with("sym-offset\nsym-addr\noverwrite\nnoirq-info\nfuncgraph-cpu\n")
    );
    let (outer, run) = (e.sites[OUTER], e.sites[RUN]);
    assert_eq!(
        e.read("trace"),
        format!(
            "# tracer: function\n#\n# entries-in-buffer/entries-written: 1/1   #P:1\n#\n\
#           TASK-PID     CPU#     TIMESTAMP  FUNCTION\n\
#              | |         |         |         |\n\
\x20         <idle>-0       [000]      0.000000: {}+0x0/{SITE_STRIDE:#x} <{outer:016x}> <-{}+0x7/{SITE_STRIDE:#x} <{:016x}>\n",
            NAMES[OUTER],
            NAMES[RUN],
            run + 7
        )
    );
    e.write("trace_options", "nosym-addr");
    e.write("trace_options", "nosym-offset");
    e.write("trace_options", "irq-info");
    assert_eq!(
        e.read("trace"),
        header("function", 1, 1) + &line(OUTER, RUN)
    );

    // trace_clock: every clock is offered; switching empties the buffers
    // (as Linux does) and the counter clock gives exact timestamps, printed
    // as integers.
    e.write("trace_clock", "global");
    assert_eq!(e.read("trace_clock"), "local [global] counter\n");
    assert_eq!(
        ftrace::tracer::clock::get(),
        ftrace::tracer::clock::Clock::Global
    );
    assert_eq!(e.read("trace"), header("function", 0, 0));
    e.write("trace_clock", "counter\n");
    assert_eq!(e.read("trace_clock"), "local global [counter]\n");
    for _ in 0..3 {
        e.call(OUTER, RUN);
    }
    let want: String = (0..3)
        .map(|i| {
            format!(
                "          <idle>-0       [000] ..... {i:12}: {} <-{}\n",
                NAMES[OUTER], NAMES[RUN]
            )
        })
        .collect();
    assert_eq!(e.read("trace"), header("function", 3, 3) + &want);
    let stats = e.read("per_cpu/cpu0/stats");
    assert!(
        stats.contains("\noldest event ts: 0\nnow ts: 3\n"),
        "{stats}"
    );
    for bad in ["bogus", "Local", "local global"] {
        let err = e.fails("trace_clock", bad, false);
        assert_eq!(
            err.to_string(),
            format!("unknown clock '{bad}' (available: local global counter)")
        );
        assert_eq!(err.errno(), Errno::Inval);
    }
    assert_eq!(e.read("trace_clock"), "local global [counter]\n");
    assert_eq!(e.read("trace").lines().count(), 12 + 3, "nothing changed");
    e.write("trace_clock", "local");
    assert_eq!(e.read("trace_clock"), "[local] global counter\n");
    e.write("current_tracer", "nop");

    let kb = e.read("buffer_size_kb");
    e.write("buffer_size_kb", &kb);
    let err = e.fails("buffer_size_kb", "4096", false);
    assert_eq!(
        (err.errno(), err.errno().description()),
        (Errno::NotSup, "Operation not supported")
    );
    assert!(err.to_string().contains("never resized"), "{err}");
    assert_eq!(
        e.fails("buffer_size_kb", "lots", false).to_string(),
        "'lots' is not a size in KiB"
    );
    assert_eq!(e.read("buffer_size_kb"), kb);
}

#[test]
fn shared_parsers() {
    use ftrace::control::{parse_max_depth, parse_trace_clock, parse_trace_option};
    use ftrace::tracer::clock::Clock;
    assert_eq!(parse_max_depth("3"), Ok(3));
    assert_eq!(
        parse_max_depth("deep").unwrap_err().to_string(),
        "'deep' is not a depth (a number, 0 for no limit)"
    );
    assert_eq!(
        parse_trace_option("nofuncgraph-tail"),
        Ok(("funcgraph-tail", false))
    );
    assert_eq!(
        parse_trace_option("funcgraph-bogus"),
        Err(ControlError::UnknownOption("funcgraph-bogus".into()))
    );
    assert_eq!(parse_trace_option("nooverwrite"), Ok(("overwrite", false)));
    assert_eq!(parse_trace_option("sym-addr"), Ok(("sym-addr", true)));
    assert_eq!(parse_trace_clock("counter"), Ok(Clock::Counter));
    assert_eq!(
        parse_trace_clock("tsc").unwrap_err().to_string(),
        "unknown clock 'tsc' (available: local global counter)"
    );
    assert_eq!(
        Tracers::from_name("function_graph"),
        Some(Tracers::FUNCTION_GRAPH)
    );
    assert_eq!(Tracers::from_name("wakeup"), None);
    let both = Tracers {
        function: true,
        graph: true,
    };
    assert_eq!(both.to_string(), "function function_graph");
}

/// Enters the function of site `i` with entry stack pointer `sp` and
/// return slot `slot`.
fn enter(e: &Env, i: usize, sp: usize, slot: &mut usize) {
    let mut regs = FtraceRegs::zeroed();
    regs.sp = sp;
    regs.ret_slot = slot as *mut usize as usize;
    let parent = *slot;
    call_site(&e.ft, e.sites[i], parent, &mut regs);
}

/// The hooked function entered at `sp` returns `v`: where it goes back to.
fn leave(sp: usize, v: usize) -> usize {
    // SAFETY: simulates the arch's return_to_handler for a call hooked by
    // `enter` with the same stack pointer (or not hooked: the shadow stack
    // is empty then, and the mock's frames are only plain data).
    unsafe { fgraph::ftrace_return_to_handler(sp, sp, v, 0) }
}

/// run -> outer -> inner -> leaf, each returning its depth.
fn graph_demo(e: &Env) {
    let mut slots = [0x9000usize, 0x9001, 0x9002, 0x9003];
    for (d, (i, s)) in [RUN, OUTER, INNER, LEAF].iter().zip(&mut slots).enumerate() {
        enter(e, *i, 1000 - 16 * d, s);
    }
    for d in (0..4).rev() {
        if slots[d] == ftrace::mock::RETURN_HOOK {
            assert_eq!(
                leave(1000 - 16 * d, d),
                0x9000 + d,
                "depth {d} returns home"
            );
        }
    }
}

/// The whole function_graph side in one test (the graph core is global):
/// switching to it, its own filter files while it runs, max depth,
/// funcgraph options, and back to nop.
#[test]
fn graph_tracer_files() {
    let mut g = env();
    let e = g.as_mut().unwrap();
    let gh = "# tracer: function_graph\n#\n# CPU  DURATION                  FUNCTION CALLS\n\
# |     |   |                     |   |   |   |\n";
    e.write("set_ftrace_filter", "demo_*");
    e.write("current_tracer", "function_graph");
    assert_eq!(e.read("current_tracer"), "function_graph\n");
    graph_demo(e);
    assert_eq!(
        e.read("trace"),
        gh.to_string()
            + " 0)               |  kernel::demo::demo_run() {\n"
            + " 0)               |    kernel::demo::demo_outer() {\n"
            + " 0)               |      kernel::demo::demo_inner() {\n"
            + " 0)   0.000 us    |        kernel::demo::demo_leaf();\n"
            + " 0)   0.000 us    |      }\n"
            + " 0)   0.000 us    |    }\n"
            + " 0)   0.000 us    |  }\n"
    );
    // set_graph_function while it runs (re-registered around the
    // change): only that subtree, from depth 0.
    e.write("set_graph_function", "demo_inner");
    assert_eq!(e.read("set_graph_function"), names(&[INNER]));
    e.write("trace", "");
    graph_demo(e);
    assert_eq!(
        e.read("trace"),
        gh.to_string()
            + " 0)               |  kernel::demo::demo_inner() {\n"
            + " 0)   0.000 us    |    kernel::demo::demo_leaf();\n"
            + " 0)   0.000 us    |  }\n"
    );
    e.append("set_graph_function", "demo_run");
    e.append("set_graph_function", "!demo_inner");
    assert_eq!(e.read("set_graph_function"), names(&[RUN]));
    let err = e.fails("set_graph_function", "nosuch", true);
    assert_eq!(
        (err.to_string().as_str(), err.errno()),
        ("ftrace: no function matches 'nosuch'", Errno::Inval)
    );
    assert_eq!(e.read("set_graph_function"), names(&[RUN]));
    e.write("set_graph_function", "");
    assert_eq!(
        e.read("set_graph_function"),
        "#### all functions enabled ####\n"
    );

    // set_graph_notrace and max_graph_depth.
    e.write("set_graph_notrace", "demo_inner");
    e.write("max_graph_depth", "2");
    assert_eq!(e.read("set_graph_notrace"), names(&[INNER]));
    assert_eq!(e.read("max_graph_depth"), "2\n");
    let err = e.fails("max_graph_depth", "deep", false);
    assert_eq!(
        err.to_string(),
        "'deep' is not a depth (a number, 0 for no limit)"
    );
    assert_eq!(e.read("max_graph_depth"), "2\n");
    e.write("trace_options", "funcgraph-retval");
    e.write("trace", "");
    graph_demo(e);
    assert_eq!(
        e.read("trace"),
        gh.to_string()
            + " 0)               |  kernel::demo::demo_run() {\n"
            + " 0)   0.000 us    |    kernel::demo::demo_outer(); /* = 0x1 */\n"
            + " 0)   0.000 us    |  } /* kernel::demo::demo_run = 0x0 */\n"
    );
    e.write("trace_options", "nofuncgraph-retval");
    e.write("max_graph_depth", "0");
    e.write("set_graph_notrace", "");
    assert!(graph::ops().ops().is_enabled());

    // tracing_on applies to this tracer too.
    e.write("tracing_on", "0");
    e.write("trace", "");
    graph_demo(e);
    assert_eq!(e.read("trace"), gh);
    assert_eq!(
        e.read("per_cpu/cpu0/stats").lines().next(),
        Some("entries: 0")
    );
    e.write("tracing_on", "1");
    graph_demo(e);
    assert_eq!(
        e.read("per_cpu/cpu0/stats").lines().next(),
        Some("entries: 8")
    );

    // Both tracers at once (the API's extension), then nop.
    e.fs()
        .set_tracers(Tracers {
            function: true,
            graph: true,
        })
        .unwrap();
    assert_eq!(e.read("current_tracer"), "function function_graph\n");
    assert_eq!(e.read("trace"), header("function", 0, 0) + gh);
    e.write("current_tracer", "nop");
    assert!(!graph::ops().ops().is_enabled() && !function::ops().is_enabled());
    assert_eq!(e.ft.check_all_nops(), 0);
    assert_eq!(e.p.shadow.depth(), 0);
}
