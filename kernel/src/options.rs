//! The kernel's command-line options, with Linux's names where Linux has
//! them. Bad input is reported (one warning line each, naming the option and
//! the value) and ignored; the rest of the line still applies.

use bootargs::{Cmdline, Opt};
use ftrace::tracer::graph::GraphOptions;
use ftrace::tracer::output::TraceOptions;

/// Every key the kernel understands.
pub const KNOWN: &[&str] = &[
    "ftrace",
    "ftrace_filter",
    "ftrace_notrace",
    "ftrace_graph_filter",
    "ftrace_graph_notrace",
    "ftrace_graph_max_depth",
    "trace_options",
    "trace_buf_size",
    "trace_clock",
    "trace_dump",
    "ftrace_dump_on_oops",
    "test",
];

/// `trace_clock=` values (Linux's names).
pub const CLOCKS: &[&str] = &["local", "global", "counter"];

/// Tracers `ftrace=` may name (comma-separated: both may run at once).
pub const TRACERS: &[&str] = &["function", "function_graph"];

/// Parsed options.
#[derive(Debug)]
pub struct Options {
    /// `ftrace=function`.
    pub function: bool,
    /// `ftrace=function_graph`.
    pub graph: bool,
    /// `ftrace_filter=`: patterns, comma-separated (both tracers).
    pub filter: Option<&'static str>,
    /// `ftrace_notrace=`: patterns, comma-separated (both tracers).
    pub notrace: Option<&'static str>,
    /// `ftrace_graph_filter=` (Linux's `set_graph_function`).
    pub graph_filter: Option<&'static str>,
    /// `ftrace_graph_notrace=` (Linux's `set_graph_notrace`).
    pub graph_notrace: Option<&'static str>,
    /// `ftrace_graph_max_depth=` (0: no limit).
    pub max_depth: usize,
    /// `trace_options=funcgraph-*` display options.
    pub graph_opts: GraphOptions,
    /// `trace_options=nofuncgraph-irqs`: calls in hardirq context are not
    /// recorded.
    pub skip_irqs: bool,
    /// `trace_options=` function-tracer text options (`irq-info`,
    /// `sym-offset`, `sym-addr`).
    pub text_opts: TraceOptions,
    /// `trace_options=nooverwrite`: a full buffer drops new events.
    pub nooverwrite: bool,
    /// `trace_buf_size=`: bytes per CPU (per tracer), `None`: the default.
    pub buf_size: Option<usize>,
    /// `trace_clock=`.
    pub clock: &'static str,
    /// `trace_dump=binary`: print the raw buffers after the text.
    pub dump_binary: bool,
    /// `ftrace_dump_on_oops` (`Some(false)`) or `=orig_cpu` (`Some(true)`):
    /// a panic prints the trace before the failure exit.
    pub dump_on_oops: Option<bool>,
    /// `test=`: a scenario name (checked by `main`, which knows the
    /// generic and the arch scenarios).
    pub test: Option<&'static str>,
}

impl Options {
    /// Parses the line, logging one warning per problem.
    pub fn parse(raw: &'static [u8]) -> Options {
        let mut o = Options {
            function: false,
            graph: false,
            filter: None,
            notrace: None,
            graph_filter: None,
            graph_notrace: None,
            max_depth: 0,
            graph_opts: GraphOptions::default(),
            skip_irqs: false,
            text_opts: TraceOptions::default(),
            nooverwrite: false,
            buf_size: None,
            clock: "local",
            dump_binary: false,
            dump_on_oops: None,
            test: None,
        };
        let line = Cmdline::new(raw);
        for opt in line.options(KNOWN, |w| log::warn!("cmdline: {w}")) {
            o.apply(opt);
        }
        o
    }

    /// True when `ftrace=` started at least one tracer.
    pub fn tracing(&self) -> bool {
        self.function || self.graph
    }

    fn apply(&mut self, opt: Opt<'static>) {
        if opt.key == "ftrace_dump_on_oops" {
            match opt.value {
                None | Some("1") => self.dump_on_oops = Some(false),
                Some("orig_cpu") | Some("2") => self.dump_on_oops = Some(true),
                Some(v) => {
                    log::warn!("ftrace_dump_on_oops: unknown value '{v}' (none, 1, 2 or orig_cpu)")
                }
            }
            return;
        }
        let Some(value) = opt.value else {
            log::warn!("cmdline: option '{}' needs a value", opt.key);
            return;
        };
        match opt.key {
            "ftrace" => {
                for t in value.split(',') {
                    match t {
                        "function" => self.function = true,
                        "function_graph" => self.graph = true,
                        _ => log::warn!(
                            "ftrace: unknown tracer '{t}' (available: {})",
                            TRACERS.join(" ")
                        ),
                    }
                }
            }
            "ftrace_filter" => self.filter = Some(value),
            "ftrace_notrace" => self.notrace = Some(value),
            "ftrace_graph_filter" => self.graph_filter = Some(value),
            "ftrace_graph_notrace" => self.graph_notrace = Some(value),
            "ftrace_graph_max_depth" => match value.parse() {
                Ok(d) => self.max_depth = d,
                Err(_) => log::warn!(
                    "ftrace_graph_max_depth: '{value}' is not a depth (a number, 0 for no limit)"
                ),
            },
            "trace_options" => {
                for name in value.split(',') {
                    let (on, base) = match name.strip_prefix("no") {
                        Some(b) => (false, b),
                        None => (true, name),
                    };
                    if base == "funcgraph-irqs" {
                        self.skip_irqs = !on;
                    } else if base == "overwrite" {
                        self.nooverwrite = !on;
                    } else if !self.graph_opts.set(base, on) && !self.text_opts.set(base, on) {
                        log::warn!("trace_options: unknown option '{name}'");
                    }
                }
            }
            "trace_buf_size" => match parse_size(value) {
                Some(n) if n >= 1024 => self.buf_size = Some(n),
                _ => log::warn!(
                    "trace_buf_size: '{value}' is not a size of 1K or more (bytes, with K or M)"
                ),
            },
            "trace_clock" => match CLOCKS.iter().find(|&&c| c == value) {
                Some(c) => self.clock = c,
                None => log::warn!(
                    "trace_clock: unknown clock '{value}' (available: {})",
                    CLOCKS.join(" ")
                ),
            },
            "trace_dump" => match value {
                "binary" => self.dump_binary = true,
                _ => log::warn!("trace_dump: unknown format '{value}' (available: binary)"),
            },
            "test" => self.test = Some(value),
            _ => {}
        }
    }
}

/// `1408`, `64K`, `4M` (case-insensitive suffix) as bytes.
pub fn parse_size(v: &str) -> Option<usize> {
    let (num, mult) = match v.as_bytes().last()? {
        b'k' | b'K' => (&v[..v.len() - 1], 1024),
        b'm' | b'M' => (&v[..v.len() - 1], 1024 * 1024),
        _ => (v, 1),
    };
    num.parse::<usize>().ok()?.checked_mul(mult)
}
