//! The kernel's command-line options, with Linux's names where Linux has
//! them. Bad input is reported (one warning line each, naming the option and
//! the value) and ignored; the rest of the line still applies.
//!
//! Values are checked here, at boot, with the parsers of the tracefs files
//! (`ftrace::control`) they are later written to (`trace_options=` and
//! `trace_clock=` by `crate::tracing::init`, the tracer and its filters by
//! `crate::tracing::start`), so the command line and the shell share one
//! implementation. `trace_buf_size=` sizes the buffers when they are
//! allocated; `trace_dump=` and `ftrace_dump_on_oops` have no file.

use alloc::vec::Vec;
use bootargs::{Cmdline, Opt};
use ftrace::control::{Tracers, parse_max_depth, parse_trace_clock, parse_trace_option};

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
    "ftrace_shell",
    "test",
    "smp_stress_ops",
];

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
    /// `ftrace_graph_max_depth=` (0: no limit; Linux's `max_graph_depth`),
    /// as written (checked).
    pub max_depth: Option<&'static str>,
    /// `trace_options=`: the option names (`funcgraph-*`, `overwrite`,
    /// `irq-info`, `sym-offset`, `sym-addr`, `no` to clear), each checked,
    /// in order.
    pub trace_options: Vec<&'static str>,
    /// `trace_buf_size=`: bytes per CPU (per tracer), `None`: the default.
    pub buf_size: Option<usize>,
    /// `trace_clock=` (checked; `local` by default).
    pub clock: &'static str,
    /// `trace_dump=binary`: print the raw buffers after the text.
    pub dump_binary: bool,
    /// `ftrace_dump_on_oops` (`Some(false)`) or `=orig_cpu` (`Some(true)`):
    /// a panic prints the trace before the failure exit.
    pub dump_on_oops: Option<bool>,
    /// `ftrace_shell`: after boot, read commands from the console.
    pub shell: bool,
    /// `test=`: a scenario name (checked by `main`, which knows the
    /// generic and the arch scenarios).
    pub test: Option<&'static str>,
    /// `smp_stress_ops=`: engine operations of `test=smp-stress` (default
    /// 10,000).
    pub stress_ops: usize,
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
            max_depth: None,
            trace_options: Vec::new(),
            buf_size: None,
            clock: "local",
            dump_binary: false,
            dump_on_oops: None,
            shell: false,
            test: None,
            stress_ops: crate::stress::OPERATIONS,
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
        match opt.key {
            "ftrace_shell" => {
                match opt.value {
                    None => self.shell = true,
                    Some(v) => {
                        log::warn!("cmdline: option 'ftrace_shell' takes no value ('{v}' ignored)")
                    }
                }
                return;
            }
            "ftrace_dump_on_oops" => {
                match opt.value {
                    None | Some("1") => self.dump_on_oops = Some(false),
                    Some("orig_cpu") | Some("2") => self.dump_on_oops = Some(true),
                    Some(v) => {
                        log::warn!(
                            "ftrace_dump_on_oops: unknown value '{v}' (none, 1, 2 or orig_cpu)"
                        )
                    }
                }
                return;
            }
            _ => {}
        }
        let Some(value) = opt.value else {
            log::warn!("cmdline: option '{}' needs a value", opt.key);
            return;
        };
        match opt.key {
            "ftrace" => {
                for t in value.split(',') {
                    match Tracers::from_name(t).filter(|t| !t.is_nop()) {
                        Some(t) => {
                            self.function |= t.function;
                            self.graph |= t.graph;
                        }
                        None => log::warn!(
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
            "ftrace_graph_max_depth" => match parse_max_depth(value) {
                Ok(_) => self.max_depth = Some(value),
                Err(e) => log::warn!("ftrace_graph_max_depth: {e}"),
            },
            "trace_options" => {
                for name in value.split(',') {
                    match parse_trace_option(name) {
                        Ok(_) => self.trace_options.push(name),
                        Err(e) => log::warn!("trace_options: {e}"),
                    }
                }
            }
            "trace_buf_size" => match parse_size(value) {
                Some(n) if n >= 1024 => self.buf_size = Some(n),
                _ => log::warn!(
                    "trace_buf_size: '{value}' is not a size of 1K or more (bytes, with K or M)"
                ),
            },
            "trace_clock" => match parse_trace_clock(value) {
                Ok(c) => self.clock = c.name(),
                Err(e) => log::warn!("trace_clock: {e}"),
            },
            "trace_dump" => match value {
                "binary" => self.dump_binary = true,
                _ => log::warn!("trace_dump: unknown format '{value}' (available: binary)"),
            },
            "test" => self.test = Some(value),
            "smp_stress_ops" => match value.parse() {
                Ok(n) if n > 0 => self.stress_ops = n,
                _ => log::warn!("smp_stress_ops: '{value}' is not a positive number"),
            },
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
