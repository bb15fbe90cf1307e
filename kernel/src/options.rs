//! The kernel's command-line options, with Linux's names where Linux has
//! them. Bad input is reported (one warning line each, naming the option and
//! the value) and ignored; the rest of the line still applies.
//!
//! Values are checked here, at boot, with the parsers of the tracefs files
//! (`ftrace::control`) they are later written to (`crate::tracing::start`),
//! so the command line and the shell share one implementation.

use alloc::vec::Vec;
use bootargs::{Cmdline, Opt};
use ftrace::control::{Tracers, parse_max_depth, parse_trace_option};

/// Every key the kernel understands.
pub const KNOWN: &[&str] = &[
    "ftrace",
    "ftrace_filter",
    "ftrace_notrace",
    "ftrace_graph_filter",
    "ftrace_graph_notrace",
    "ftrace_graph_max_depth",
    "trace_options",
    "ftrace_shell",
    "test",
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
    /// `trace_options=`: the option names (`funcgraph-*`, `no` to clear),
    /// each checked, in order.
    pub trace_options: Vec<&'static str>,
    /// `ftrace_shell`: after boot, read commands from the console.
    pub shell: bool,
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
            max_depth: None,
            trace_options: Vec::new(),
            shell: false,
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
        if opt.key == "ftrace_shell" {
            match opt.value {
                None => self.shell = true,
                Some(v) => {
                    log::warn!("cmdline: option 'ftrace_shell' takes no value ('{v}' ignored)")
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
            "test" => self.test = Some(value),
            _ => {}
        }
    }
}
