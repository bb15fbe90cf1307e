//! Run-time control with Linux's tracefs semantics: named files read and
//! written as text, without a filesystem.
//!
//! Linux users drive ftrace through files in `/sys/kernel/tracing`; a
//! kernel embedding this crate maps its own shell, debug console or
//! filesystem onto [`Control::read`] and [`Control::write`] in a few lines,
//! and its boot options become writes to the same files, so every path
//! shares this one implementation.
//!
//! ```
//! # #[cfg(feature = "mock")] {
//! use ftrace::control::{Control, ControlState};
//! use ftrace::mock::{MockArch, MockPlatform};
//! use ftrace::Ftrace;
//!
//! let (platform, sites) = MockPlatform::with_sites(4);
//! let mut engine = Ftrace::new(MockArch::new(), platform, sites, None).unwrap();
//! engine.init();
//! let mut state = ControlState::new(); // kept by the kernel between commands
//! let mut fs = Control::new(&mut engine, &mut state);
//! let mut out = String::new();
//! fs.read("current_tracer", &mut out).unwrap();
//! assert_eq!(out, "nop\n");
//! let err = fs.write("current_tracer", "bogus", false).unwrap_err();
//! assert_eq!(err.errno().description(), "Invalid argument");
//! # }
//! ```
//!
//! # The files
//!
//! | file | read | write |
//! | --- | --- | --- |
//! | `current_tracer` | the tracer (`nop`, `function`, `function_graph`) | switches tracers; the buffers are emptied (Linux's `tracer_init`); the same name again changes nothing |
//! | `available_tracers` | `function_graph function nop` (`function_graph` only when the backend hooks returns) | read-only |
//! | `tracing_on` | `1` or `0` | `0` stops recording (callbacks still run), any other number starts it |
//! | `set_ftrace_filter` | the functions, or `#### all functions enabled ####` | `>` replaces, `>>` (append) adds, `!glob` removes; empty `>` clears (every function); both tracers share it, as in Linux |
//! | `set_ftrace_notrace` | the functions, or `#### no functions disabled ####` | the same for functions never traced |
//! | `set_graph_function` | the functions, or `#### all functions enabled ####` | function_graph: record only these functions and what they call |
//! | `set_graph_notrace` | the functions, or `#### no functions disabled ####` | function_graph: never record these or what they call |
//! | `max_graph_depth` | the depth (0: no limit) | a number |
//! | `available_filter_functions` | every function with a record | read-only |
//! | `enabled_functions` | every enabled site as Linux prints it | read-only |
//! | `trace` | the current tracer's output, with the `trace_options` that change it (raw counts with the `counter` clock) | any `>` write empties the buffers; `>>` changes nothing |
//! | `trace_options` | each option, `no` before those off | one option name, `no` to clear |
//! | `buffer_size_kb` | the per-CPU ring buffer size of the current tracer | only its current value: see below |
//! | `trace_clock` | the clocks, the current one in brackets: `[local] global counter` | a clock's name: recording pauses, the buffers are emptied (Linux: timestamps of two clocks do not compare) and [`clock::set`] switches |
//! | `per_cpu/cpuN/stats` | Linux's counters for CPU N's buffer | read-only |
//!
//! Patterns are [`crate::filter`] globs, separated by whitespace (Linux)
//! or commas; `:mod:` commands are not supported. A write that fails
//! changes nothing and returns a [`ControlError`] that names the bad value;
//! its [`errno`](ControlError::errno) is the one Linux's write would fail
//! with (`EINVAL` for a bad pattern, tracer, option or number).
//!
//! # Where this differs from Linux
//!
//! * `buffer_size_kb`: the per-CPU ring buffers are allocated once by
//!   [`function::init`] and [`graph::init`] (a kernel sizes them with its
//!   boot option, `trace_buf_size=`) and are never freed or replaced:
//!   writing any size but the current one fails with `EOPNOTSUPP`.
//! * The function and function_graph tracers have separate ring buffers;
//!   `buffer_size_kb` and `per_cpu/cpuN/stats` show the current tracer's
//!   (the function tracer's for `nop`, both summed for both).
//! * `trace_options` has the options this crate implements: Linux's
//!   `sym-offset`, `sym-addr`, `overwrite` and `irq-info`, then the
//!   function_graph tracer's `funcgraph-*` (listed whatever the current
//!   tracer; Linux lists a tracer's options only while it is current).
//!   `overwrite` applies to both tracers' buffers.
//! * `per_cpu/cpuN/stats`: `entries` is what the buffer holds, `overrun`
//!   what overwrite mode removed, `dropped events` what `nooverwrite` (or a
//!   writer still in progress) refused; `commit overrun` and
//!   `read events` are 0 (`trace` does not consume).
//! * `enabled_functions` prints ` M ` while a site is wanted by an
//!   `IPMODIFY` callback (Linux keeps the mark once it was); the ` D` and
//!   ` O` columns are always blank (no direct calls, no call ops).
//! * [`Control::set_tracers`] can run both tracers at once (Linux needs a
//!   second instance for that); `current_tracer` then reads
//!   `function function_graph`.
//! * `trace` with `>` (and a `trace_clock` switch) empties the buffers with
//!   recording paused, after a grace period in which every CPU inside a
//!   callback (entry or hooked return) left it ([`Ftrace::reclaim`]).
//!   Called from inside a callback, which cannot wait for itself, the
//!   grace period is skipped.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt::{self, Write};

use crate::arch::Arch;
use crate::filter;
use crate::ops::{self, IpSet, Ops};
use crate::platform::Platform;
use crate::record::RecFlags;
use crate::symbols::Symbols;
use crate::tracer::clock::{self, Clock};
use crate::tracer::function;
use crate::tracer::graph::{self, GraphFilters, GraphOptions};
use crate::tracer::output::{FuncName, TraceOptions};
use crate::tracer::ring::{CpuStats, RingBuffer};
use crate::update::{Error as EngineError, Ftrace};

/// Every file, in `ls` order, except the per-CPU ones
/// (`per_cpu/cpuN/stats`, see [`Control::files`]).
pub const FILES: &[&str] = &[
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
];

/// The `trace_options` names, in the order Linux lists them: the general
/// options first (Linux's `TRACE_FLAGS` order), then the function_graph
/// tracer's.
pub const TRACE_OPTIONS: &[&str] = &[
    "sym-offset",
    "sym-addr",
    "overwrite",
    "irq-info",
    "funcgraph-cpu",
    "funcgraph-overhead",
    "funcgraph-proc",
    "funcgraph-duration",
    "funcgraph-abstime",
    "funcgraph-irqs",
    "funcgraph-tail",
    "funcgraph-retval",
];

/// The clocks `trace_clock` offers ([`Clock`]'s names), in Linux's order.
pub const TRACE_CLOCKS: &[&str] = &["local", "global", "counter"];

/// Which tracers run: Linux's `current_tracer` (`nop` when none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tracers {
    /// The function tracer ([`function`]).
    pub function: bool,
    /// The function_graph tracer ([`graph`]).
    pub graph: bool,
}

impl Tracers {
    /// No tracer (`nop`).
    pub const NOP: Tracers = Tracers {
        function: false,
        graph: false,
    };
    /// The function tracer.
    pub const FUNCTION: Tracers = Tracers {
        function: true,
        graph: false,
    };
    /// The function_graph tracer.
    pub const FUNCTION_GRAPH: Tracers = Tracers {
        function: false,
        graph: true,
    };

    /// The tracer of a `current_tracer` name (`nop`, `function`,
    /// `function_graph`).
    pub fn from_name(name: &str) -> Option<Tracers> {
        match name {
            "nop" => Some(Tracers::NOP),
            "function" => Some(Tracers::FUNCTION),
            "function_graph" => Some(Tracers::FUNCTION_GRAPH),
            _ => None,
        }
    }

    /// True for `nop`.
    pub fn is_nop(&self) -> bool {
        !self.function && !self.graph
    }
}

impl fmt::Display for Tracers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match (self.function, self.graph) {
            (false, false) => "nop",
            (true, false) => "function",
            (false, true) => "function_graph",
            (true, true) => "function function_graph",
        })
    }
}

/// The error number a tracefs write or read would fail with in Linux.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Errno {
    /// `ENOENT`: no such file.
    NoEnt,
    /// `EIO`: the output could not be written.
    Io,
    /// `EACCES`: the file cannot be written.
    Acces,
    /// `EBUSY`: the engine refused (a conflict or no free slot).
    Busy,
    /// `ENODEV`: tracing is disabled after a patch failure, or not set up.
    NoDev,
    /// `EINVAL`: a bad value.
    Inval,
    /// `EOPNOTSUPP`: this value is valid in Linux but not supported here.
    NotSup,
}

impl Errno {
    /// Linux's number (`EINVAL` = 22, ...).
    pub fn code(self) -> i32 {
        match self {
            Errno::NoEnt => 2,
            Errno::Io => 5,
            Errno::Acces => 13,
            Errno::Busy => 16,
            Errno::NoDev => 19,
            Errno::Inval => 22,
            Errno::NotSup => 95,
        }
    }

    /// The symbolic name (`EINVAL`).
    pub fn name(self) -> &'static str {
        match self {
            Errno::NoEnt => "ENOENT",
            Errno::Io => "EIO",
            Errno::Acces => "EACCES",
            Errno::Busy => "EBUSY",
            Errno::NoDev => "ENODEV",
            Errno::Inval => "EINVAL",
            Errno::NotSup => "EOPNOTSUPP",
        }
    }

    /// What `strerror` says (`Invalid argument`), as a shell prints it.
    pub fn description(self) -> &'static str {
        match self {
            Errno::NoEnt => "No such file or directory",
            Errno::Io => "Input/output error",
            Errno::Acces => "Permission denied",
            Errno::Busy => "Device or resource busy",
            Errno::NoDev => "No such device",
            Errno::Inval => "Invalid argument",
            Errno::NotSup => "Operation not supported",
        }
    }
}

/// Why a read or write failed; nothing changed. Display gives the detail
/// naming the bad value (without the file name: callers add it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlError {
    /// No file of this name.
    NoSuchFile(String),
    /// The file (named) cannot be written.
    ReadOnly(&'static str),
    /// `current_tracer`: not a tracer's name (or not available here).
    UnknownTracer(String),
    /// `trace_options`: not an option's name.
    UnknownOption(String),
    /// `trace_clock`: not a clock's name.
    UnknownClock(String),
    /// A value that does not parse.
    InvalidValue {
        /// The value as written.
        value: String,
        /// What was expected, e.g. `a depth (a number, 0 for no limit)`.
        expected: &'static str,
    },
    /// A pattern was malformed or matched no function ([`EngineError::Filter`]).
    Filter(EngineError),
    /// The engine refused to (un)register a tracer or patch a site.
    Engine(EngineError),
    /// A valid request this implementation does not support.
    Unsupported(&'static str),
    /// The output writer failed.
    Output,
}

impl ControlError {
    /// The error number Linux would give.
    pub fn errno(&self) -> Errno {
        match self {
            ControlError::NoSuchFile(_) => Errno::NoEnt,
            ControlError::ReadOnly(_) => Errno::Acces,
            ControlError::UnknownTracer(_)
            | ControlError::UnknownOption(_)
            | ControlError::UnknownClock(_)
            | ControlError::InvalidValue { .. }
            | ControlError::Filter(_) => Errno::Inval,
            ControlError::Engine(e) => match e {
                EngineError::NotInitialized | EngineError::Killed | EngineError::Patch(_) => {
                    Errno::NoDev
                }
                EngineError::AlreadyRegistered
                | EngineError::IpmodifyConflict { .. }
                | EngineError::GraphUsersFull => Errno::Busy,
                EngineError::GraphUnsupported => Errno::NotSup,
                _ => Errno::Inval,
            },
            ControlError::Unsupported(_) => Errno::NotSup,
            ControlError::Output => Errno::Io,
        }
    }
}

impl fmt::Display for ControlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ControlError::NoSuchFile(name) => write!(f, "no such file '{name}'"),
            ControlError::ReadOnly(_) => f.write_str("the file is read-only"),
            ControlError::UnknownTracer(name) => {
                write!(f, "unknown tracer '{name}' (see available_tracers)")
            }
            ControlError::UnknownOption(name) => write!(f, "unknown option '{name}'"),
            ControlError::UnknownClock(name) => {
                write!(f, "unknown clock '{name}' (available: ")?;
                f.write_str(&TRACE_CLOCKS.join(" "))?;
                f.write_str(")")
            }
            ControlError::InvalidValue { value, expected } => {
                write!(f, "'{value}' is not {expected}")
            }
            ControlError::Filter(e) | ControlError::Engine(e) => write!(f, "{e}"),
            ControlError::Unsupported(why) => f.write_str(why),
            ControlError::Output => f.write_str("the output could not be written"),
        }
    }
}

impl From<fmt::Error> for ControlError {
    fn from(_: fmt::Error) -> Self {
        ControlError::Output
    }
}

fn engine_err(e: EngineError) -> ControlError {
    match e {
        EngineError::Filter(_) => ControlError::Filter(e),
        other => ControlError::Engine(other),
    }
}

/// What `max_graph_depth` expects.
const DEPTH: &str = "a depth (a number, 0 for no limit)";
/// What `tracing_on` expects.
const SWITCH: &str = "a number (0: off, anything else: on)";
/// What `buffer_size_kb` expects.
const SIZE: &str = "a size in KiB";
/// Why `buffer_size_kb` cannot change.
const NO_RESIZE: &str = "the per-CPU buffers are allocated once, when the tracers are initialised, and are never resized";

/// Parses a `max_graph_depth` value (decimal, 0: no limit). Shared by the
/// file and by boot options that set it.
pub fn parse_max_depth(value: &str) -> Result<usize, ControlError> {
    parse_decimal(value, DEPTH)
}

/// Parses one `trace_options` write: an option name from
/// [`TRACE_OPTIONS`], with `no` in front to clear it. Returns the name
/// without `no` and whether it is set.
pub fn parse_trace_option(value: &str) -> Result<(&'static str, bool), ControlError> {
    let name = value.trim();
    let (on, base) = match name.strip_prefix("no") {
        Some(b) => (false, b),
        None => (true, name),
    };
    TRACE_OPTIONS
        .iter()
        .find(|&&o| o == base)
        .map(|&o| (o, on))
        .ok_or_else(|| ControlError::UnknownOption(name.to_string()))
}

/// Parses a `trace_clock` value: one of [`TRACE_CLOCKS`]. Shared by the
/// file and by boot options that set it.
pub fn parse_trace_clock(value: &str) -> Result<Clock, ControlError> {
    let name = value.trim();
    Clock::from_name(name).ok_or_else(|| ControlError::UnknownClock(name.to_string()))
}

/// Decimal digits only (Linux's `kstrtoul(.., 10, ..)`), surrounding
/// whitespace allowed.
fn parse_decimal(value: &str, expected: &'static str) -> Result<usize, ControlError> {
    let v = value.trim();
    let bad = || ControlError::InvalidValue {
        value: v.to_string(),
        expected,
    };
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    v.parse().map_err(|_| bad())
}

/// A pattern write as the engine's comma-separated syntax: Linux separates
/// patterns with whitespace, this crate with commas; both are accepted.
/// `None` for a write holding no pattern at all.
fn patterns(value: &str) -> Option<String> {
    let parts: Vec<&str> = value
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|p| !p.is_empty())
        .collect();
    (!parts.is_empty()).then(|| parts.join(","))
}

/// The tracefs state that lives between reads and writes: which tracers
/// run, `tracing_on`, the function_graph tracer's own filters and display
/// options, the function tracer's text options. The kernel keeps one (e.g.
/// in a `spin::Mutex` next to its engine) and hands it to [`Control::new`]
/// for each command. (`overwrite` lives in the ring buffers and the clock
/// in [`clock`]: both are read back from there.)
#[derive(Debug, Clone)]
pub struct ControlState {
    tracers: Tracers,
    tracing_on: bool,
    graph: GraphFilters,
    options: GraphOptions,
    text: TraceOptions,
}

impl Default for ControlState {
    fn default() -> Self {
        Self::new()
    }
}

impl ControlState {
    /// Linux's defaults: `nop`, tracing on, no graph filters, default
    /// options.
    pub fn new() -> Self {
        ControlState {
            tracers: Tracers::NOP,
            tracing_on: true,
            graph: GraphFilters::default(),
            options: GraphOptions::default(),
            text: TraceOptions::default(),
        }
    }

    /// The tracers running.
    pub fn tracers(&self) -> Tracers {
        self.tracers
    }

    /// `tracing_on`.
    pub fn tracing_on(&self) -> bool {
        self.tracing_on
    }

    /// The function_graph tracer's filters as the files set them.
    pub fn graph_filters(&self) -> &GraphFilters {
        &self.graph
    }

    /// The function_graph display options (`trace_options`).
    pub fn graph_options(&self) -> &GraphOptions {
        &self.options
    }

    /// The function tracer's text options as `trace_options` set them
    /// (`irq-info`, `sym-offset`, `sym-addr`; `raw_ts` is never set here:
    /// see [`Control::text_options`]).
    pub fn text_options(&self) -> &TraceOptions {
        &self.text
    }
}

/// A symbol as Linux's `%pS` prints it: `name+0xoff/0xsize`, or the bare
/// address when no symbol contains it.
struct SymOff<'a>(&'a Symbols, usize);

impl fmt::Display for SymOff<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.table().and_then(|t| t.lookup(self.1 as u64)) {
            Some((sym, off)) => write!(f, "{}+{off:#x}/{:#x}", sym.name, sym.size),
            None => write!(f, "{:#x}", self.1),
        }
    }
}

/// The tracefs files over an engine and its [`ControlState`]. Build one per
/// command ([`Control::new`] only borrows).
///
/// The tracers must have been initialised ([`function::init`],
/// [`graph::init`]); the engine's [`Ftrace::init`] must have run.
pub struct Control<'a, A: Arch, P: Platform + 'static> {
    ft: &'a mut Ftrace<A, P>,
    st: &'a mut ControlState,
}

impl<'a, A: Arch, P: Platform + 'static> Control<'a, A, P> {
    /// The files over `engine` with `state`.
    pub fn new(engine: &'a mut Ftrace<A, P>, state: &'a mut ControlState) -> Self {
        Control {
            ft: engine,
            st: state,
        }
    }

    /// The engine.
    pub fn engine(&mut self) -> &mut Ftrace<A, P> {
        self.ft
    }

    /// The state.
    pub fn state(&self) -> &ControlState {
        self.st
    }

    /// Every file: [`FILES`], then `per_cpu/cpuN/stats` for each CPU.
    pub fn files(&self) -> Vec<String> {
        let mut v: Vec<String> = FILES.iter().map(|f| f.to_string()).collect();
        for cpu in 0..self.nr_cpus() {
            v.push(alloc::format!("per_cpu/cpu{cpu}/stats"));
        }
        v
    }

    fn nr_cpus(&self) -> usize {
        let p: &dyn Platform = self.ft.platform();
        p.nr_cpus().max(1)
    }

    /// The CPU of a `per_cpu/cpuN/stats` name.
    fn stats_cpu(&self, file: &str) -> Option<usize> {
        let n = file.strip_prefix("per_cpu/cpu")?.strip_suffix("/stats")?;
        if n.is_empty()
            || !n.bytes().all(|b| b.is_ascii_digit())
            || (n.len() > 1 && n.starts_with('0'))
        {
            return None;
        }
        n.parse().ok().filter(|&c| c < self.nr_cpus())
    }

    fn graph_available(&self) -> bool {
        self.ft.arch().return_hook().is_some()
    }

    /// Reads `file` into `out`, as `cat` would show it.
    pub fn read(&self, file: &str, out: &mut dyn Write) -> Result<(), ControlError> {
        let syms = self.ft.symbols();
        match file {
            "current_tracer" => writeln!(out, "{}", self.st.tracers)?,
            "available_tracers" => {
                if self.graph_available() {
                    out.write_str("function_graph ")?;
                }
                out.write_str("function nop\n")?;
            }
            "tracing_on" => writeln!(out, "{}", u8::from(self.st.tracing_on))?,
            "set_ftrace_filter" => self.list(
                self.ft.ops_filter(function::ops()),
                "#### all functions enabled ####",
                out,
            )?,
            "set_ftrace_notrace" => self.list(
                self.ft.ops_notrace(function::ops()),
                "#### no functions disabled ####",
                out,
            )?,
            "set_graph_function" => self.list(
                self.st.graph.functions.as_ref(),
                "#### all functions enabled ####",
                out,
            )?,
            "set_graph_notrace" => self.list(
                self.st.graph.notrace.as_ref(),
                "#### no functions disabled ####",
                out,
            )?,
            "max_graph_depth" => writeln!(out, "{}", self.st.graph.max_depth)?,
            "available_filter_functions" => {
                for ip in self.ft.site_ips() {
                    writeln!(
                        out,
                        "{}",
                        FuncName {
                            symbols: syms,
                            addr: ip
                        }
                    )?;
                }
            }
            "enabled_functions" => self.enabled_functions(out)?,
            "trace" => self.write_trace(self.st.tracers, out)?,
            "trace_options" => {
                for name in TRACE_OPTIONS {
                    let no = if self.option(name) { "" } else { "no" };
                    writeln!(out, "{no}{name}")?;
                }
            }
            "buffer_size_kb" => writeln!(out, "{}", self.buffer_kb())?,
            "trace_clock" => {
                let current = clock::get().name();
                for (i, name) in TRACE_CLOCKS.iter().enumerate() {
                    let sep = if i == 0 { "" } else { " " };
                    if *name == current {
                        write!(out, "{sep}[{name}]")?;
                    } else {
                        write!(out, "{sep}{name}")?;
                    }
                }
                out.write_str("\n")?;
            }
            _ => match self.stats_cpu(file) {
                Some(cpu) => self.stats(cpu, out)?,
                None => return Err(ControlError::NoSuchFile(file.to_string())),
            },
        }
        Ok(())
    }

    /// Writes `value` to `file`: `append` is `>>`, otherwise `>` (which
    /// truncates first, as the shell's `O_TRUNC` does in Linux). Surrounding
    /// whitespace and the trailing newline `echo` adds do not matter. On
    /// error nothing changed.
    pub fn write(&mut self, file: &str, value: &str, append: bool) -> Result<(), ControlError> {
        match file {
            "current_tracer" => {
                let name = value.trim();
                let t = Tracers::from_name(name)
                    .filter(|t| !t.graph || self.graph_available())
                    .ok_or_else(|| ControlError::UnknownTracer(name.to_string()))?;
                self.set_tracers(t)
            }
            "tracing_on" => {
                let on = parse_decimal(value, SWITCH)? != 0;
                self.st.tracing_on = on;
                function::set_recording(on);
                graph::set_recording(on);
                Ok(())
            }
            "set_ftrace_filter" => self.write_filter(false, value, append),
            "set_ftrace_notrace" => self.write_filter(true, value, append),
            "set_graph_function" => self.write_graph_set(false, value, append),
            "set_graph_notrace" => self.write_graph_set(true, value, append),
            "max_graph_depth" => {
                let mut f = self.st.graph.clone();
                f.max_depth = parse_max_depth(value)?;
                self.set_graph_filters(f)
            }
            "trace" => {
                if !append {
                    self.clear_trace();
                }
                Ok(())
            }
            "trace_options" => {
                let (name, on) = parse_trace_option(value)?;
                match name {
                    "funcgraph-irqs" => {
                        let mut f = self.st.graph.clone();
                        f.skip_irqs = !on;
                        self.set_graph_filters(f)
                    }
                    "overwrite" => {
                        function::set_overwrite(on);
                        graph::set_overwrite(on);
                        Ok(())
                    }
                    _ => {
                        if !self.st.text.set(name, on) {
                            self.st.options.set(name, on);
                        }
                        Ok(())
                    }
                }
            }
            "buffer_size_kb" => {
                let kb = parse_decimal(value, SIZE)?;
                if kb == self.buffer_kb() {
                    Ok(())
                } else {
                    Err(ControlError::Unsupported(NO_RESIZE))
                }
            }
            "trace_clock" => {
                let c = parse_trace_clock(value)?;
                self.quiesce(|| clock::set(c));
                Ok(())
            }
            "available_tracers" => Err(ControlError::ReadOnly("available_tracers")),
            "available_filter_functions" => {
                Err(ControlError::ReadOnly("available_filter_functions"))
            }
            "enabled_functions" => Err(ControlError::ReadOnly("enabled_functions")),
            _ if self.stats_cpu(file).is_some() => Err(ControlError::ReadOnly("stats")),
            _ => Err(ControlError::NoSuchFile(file.to_string())),
        }
    }

    /// Runs `tracers` (Linux's `current_tracer` write, which this extends
    /// to both tracers at once): the running ones are unregistered, the
    /// buffers emptied, the new ones registered with the current filters.
    /// The tracers already running: nothing happens. When a tracer cannot
    /// start, none runs afterwards (`nop`), as in Linux.
    pub fn set_tracers(&mut self, tracers: Tracers) -> Result<(), ControlError> {
        if tracers == self.st.tracers {
            return Ok(());
        }
        if tracers.graph && !self.graph_available() {
            return Err(ControlError::Engine(EngineError::GraphUnsupported));
        }
        let fops = function::ops();
        let g = graph::ops();
        if self.st.tracers.function {
            match self.ft.unregister(fops) {
                Ok(()) | Err(EngineError::NotRegistered) => {}
                Err(e) => return Err(ControlError::Engine(e)),
            }
            self.st.tracers.function = false;
        }
        if self.st.tracers.graph {
            match self.ft.unregister_graph(g) {
                Ok(()) | Err(EngineError::NotRegistered) => {}
                Err(e) => return Err(ControlError::Engine(e)),
            }
            self.st.tracers.graph = false;
        }
        function::reset();
        graph::reset();
        if tracers.function {
            self.ft.register(fops).map_err(ControlError::Engine)?;
            self.st.tracers.function = true;
        }
        if tracers.graph {
            let started = graph::configure(self.st.graph.clone())
                .map_err(|_| ControlError::Engine(EngineError::AlreadyRegistered))
                .and_then(|()| self.ft.register_graph(g).map_err(ControlError::Engine));
            if let Err(e) = started {
                if self.st.tracers.function {
                    let _ = self.ft.unregister(fops);
                    self.st.tracers.function = false;
                }
                return Err(e);
            }
            self.st.tracers.graph = true;
        }
        Ok(())
    }

    /// The function tracer's text options: `trace_options`' `irq-info`,
    /// `sym-offset`, `sym-addr`, and raw timestamps with the `counter`
    /// clock (Linux prints counts, not seconds, for a clock that does not
    /// count nanoseconds).
    pub fn text_options(&self) -> TraceOptions {
        let mut t = self.st.text;
        t.raw_ts = clock::get() == Clock::Counter;
        t
    }

    /// Prints the trace of `tracers` (whether or not they run): Linux's
    /// `function` or `function_graph` output, both one after the other, or
    /// the `nop` header.
    pub fn write_trace(&self, tracers: Tracers, out: &mut dyn Write) -> fmt::Result {
        let syms = self.ft.symbols();
        let text = self.text_options();
        if tracers.is_nop() {
            return function::write_trace_as(out, syms, "nop", &text);
        }
        if tracers.function {
            function::write_trace_as(out, syms, "function", &text)?;
        }
        if tracers.graph {
            graph::write_trace(out, syms, &self.st.options)?;
        }
        Ok(())
    }

    /// One name per line, or `empty` when the set selects nothing special.
    fn list(&self, set: Option<&IpSet>, empty: &str, out: &mut dyn Write) -> fmt::Result {
        match set.filter(|s| !s.is_empty()) {
            None => writeln!(out, "{empty}"),
            Some(s) => {
                for &ip in s.as_slice() {
                    writeln!(
                        out,
                        "{}",
                        FuncName {
                            symbols: self.ft.symbols(),
                            addr: ip
                        }
                    )?;
                }
                Ok(())
            }
        }
    }

    /// Linux's `enabled_functions` (`t_show`): `name (refs)` then the
    /// ` R` (full frame), ` I` (IPMODIFY), ` D`, ` O` and ` M ` columns,
    /// then for a site calling a callback's own trampoline
    /// `\ttramp: <trampoline> (<callback>) -><what the trampoline calls>`.
    fn enabled_functions(&self, out: &mut dyn Write) -> fmt::Result {
        let syms = self.ft.symbols();
        for (i, rec) in self.ft.sites().enumerate() {
            if !rec.is_enabled() {
                continue;
            }
            let f = self.ft.site_flags(i);
            write!(
                out,
                "{} ({}){}{}    {}",
                FuncName {
                    symbols: syms,
                    addr: rec.ip()
                },
                rec.record().refcount(),
                if f.contains(RecFlags::REGS) {
                    " R"
                } else {
                    "  "
                },
                if f.contains(RecFlags::IPMODIFY) {
                    " I"
                } else {
                    "  "
                },
                if f.contains(RecFlags::IPMODIFY) {
                    " M "
                } else {
                    "   "
                },
            )?;
            if f.contains(RecFlags::TRAMP_EN) {
                // The one callback that wants the site owns the trampoline.
                let owner: Option<&Ops> = self
                    .ft
                    .registered()
                    .iter()
                    .copied()
                    .find(|o| self.ft.ops_wants(o, rec.ip()));
                match owner {
                    Some(o) => write!(
                        out,
                        "\ttramp: {} ({}) ->{}",
                        SymOff(syms, self.ft.site_target(i)),
                        SymOff(syms, o.func() as usize),
                        SymOff(syms, ops::assist_func_addr())
                    )?,
                    None => out.write_str("\ttramp: ERROR!")?,
                }
            }
            out.write_str("\n")?;
        }
        Ok(())
    }

    fn option(&self, name: &str) -> bool {
        let o = &self.st.options;
        let t = &self.st.text;
        match name {
            "sym-offset" => t.sym_offset,
            "sym-addr" => t.sym_addr,
            "overwrite" => function::ring().is_none_or(RingBuffer::overwrite),
            "irq-info" => t.irq_info,
            "funcgraph-cpu" => o.cpu,
            "funcgraph-overhead" => o.overhead,
            "funcgraph-proc" => o.proc_,
            "funcgraph-duration" => o.duration,
            "funcgraph-abstime" => o.abstime,
            "funcgraph-irqs" => !self.st.graph.skip_irqs,
            "funcgraph-tail" => o.tail,
            "funcgraph-retval" => o.retval,
            _ => false,
        }
    }

    /// The ring buffers of the current tracer (both tracers': both;
    /// `nop`: the function tracer's).
    fn rings(&self) -> impl Iterator<Item = &'static RingBuffer> {
        let t = self.st.tracers;
        let f = (t.function || t.is_nop()).then(function::ring).flatten();
        let g = t.graph.then(graph::ring).flatten();
        f.into_iter().chain(g)
    }

    /// The counters of the current tracer's buffer on `cpu` (both
    /// tracers': summed).
    fn cpu_stats(&self, cpu: usize) -> CpuStats {
        self.rings()
            .map(|r| r.stats(cpu))
            .fold(CpuStats::default(), |a, b| CpuStats {
                written: a.written + b.written,
                in_buffer: a.in_buffer + b.in_buffer,
                overwritten: a.overwritten + b.overwritten,
                dropped: a.dropped + b.dropped,
            })
    }

    /// `buffer_size_kb`: the current tracer's per-CPU ring buffer size in
    /// KiB ([`RingBuffer::bytes_per_cpu`]).
    fn buffer_kb(&self) -> usize {
        self.rings().map(RingBuffer::bytes_per_cpu).sum::<usize>() / 1024
    }

    /// Linux's `per_cpu/cpuN/stats` (`tracing_stats_read`) from the ring
    /// buffers' counters: `entries` what the buffer holds, `overrun` what
    /// overwrite mode removed, `dropped events` what was refused; `trace`
    /// does not consume, so `read events` is 0. Timestamps are seconds, or
    /// counts with the `counter` clock (as Linux prints them).
    fn stats(&self, cpu: usize, out: &mut dyn Write) -> fmt::Result {
        let s = self.cpu_stats(cpu);
        let mut oldest: Option<u64> = None;
        let mut bytes = 0;
        for r in self.rings() {
            r.read_cpu(cpu, &mut |e| {
                oldest = Some(oldest.map_or(e.ts, |o| o.min(e.ts)));
            });
            bytes += r.used_bytes(cpu);
        }
        let p: &dyn Platform = self.ft.platform();
        let now = clock::current(p);
        writeln!(out, "entries: {}", s.in_buffer)?;
        writeln!(out, "overrun: {}", s.overwritten)?;
        writeln!(out, "commit overrun: 0")?;
        writeln!(out, "bytes: {bytes}")?;
        let oldest = oldest.unwrap_or(0);
        if clock::get() == Clock::Counter {
            writeln!(out, "oldest event ts: {oldest}")?;
            writeln!(out, "now ts: {now}")?;
        } else {
            let ts = |ns: u64| (ns / 1_000_000_000, (ns % 1_000_000_000) / 1000);
            let ((os, ous), (ns, nus)) = (ts(oldest), ts(now));
            writeln!(out, "oldest event ts: {os:5}.{ous:06}")?;
            writeln!(out, "now ts: {ns:5}.{nus:06}")?;
        }
        writeln!(out, "dropped events: {}", s.dropped)?;
        writeln!(out, "read events: 0")
    }

    /// Runs `f` with recording paused on both tracers and every CPU out of
    /// the engine's callbacks ([`Ftrace::reclaim`]'s grace period), then
    /// empties both tracers' buffers (what the ring buffer's reset
    /// requires) and restores `tracing_on`.
    fn quiesce(&mut self, f: impl FnOnce()) {
        function::set_recording(false);
        graph::set_recording(false);
        self.ft.reclaim();
        f();
        function::reset();
        graph::reset();
        function::set_recording(self.st.tracing_on);
        graph::set_recording(self.st.tracing_on);
    }

    /// Empties both tracers' buffers with recording paused.
    fn clear_trace(&mut self) {
        self.quiesce(|| {});
    }

    /// `set_ftrace_filter` / `set_ftrace_notrace`: both tracers' ops get
    /// the same change (Linux's global filter). The first one validates
    /// the patterns: a bad one fails before anything changed.
    fn write_filter(
        &mut self,
        notrace: bool,
        value: &str,
        append: bool,
    ) -> Result<(), ControlError> {
        let pats = patterns(value);
        let g: &'static Ops = graph::ops().ops();
        for ops in [function::ops(), g] {
            let r = match (pats.as_deref(), append) {
                (None, true) => Ok(0),
                (None, false) if notrace => self.ft.clear_notrace(ops).map(|()| 0),
                (None, false) => self.ft.clear_filter(ops).map(|()| 0),
                (Some(p), false) if notrace => self.ft.set_notrace(ops, p),
                (Some(p), false) => self.ft.set_filter(ops, p),
                (Some(p), true) if notrace => self.ft.add_notrace(ops, p),
                (Some(p), true) => self.ft.add_filter(ops, p),
            };
            r.map_err(engine_err)?;
        }
        Ok(())
    }

    /// `set_graph_function` / `set_graph_notrace`: the function_graph
    /// tracer's own sets.
    fn write_graph_set(
        &mut self,
        notrace: bool,
        value: &str,
        append: bool,
    ) -> Result<(), ControlError> {
        let old = if notrace {
            &self.st.graph.notrace
        } else {
            &self.st.graph.functions
        };
        let new = match patterns(value) {
            None if append => return Ok(()),
            None => None,
            Some(p) => {
                let pats =
                    filter::parse(&p).map_err(|e| ControlError::Filter(EngineError::Filter(e)))?;
                let names = self.ft.record_names();
                let mut sel: Vec<bool> = self
                    .ft
                    .site_ips()
                    .map(|ip| append && old.as_ref().is_some_and(|s| s.contains(ip)))
                    .collect();
                filter::apply(&pats, &names, &mut sel)
                    .map_err(|e| ControlError::Filter(EngineError::Filter(e)))?;
                let ips: alloc::boxed::Box<[usize]> = self
                    .ft
                    .site_ips()
                    .zip(&sel)
                    .filter(|(_, s)| **s)
                    .map(|(ip, _)| ip)
                    .collect();
                Some(IpSet::from_sorted(ips)).filter(|s| !s.is_empty())
            }
        };
        let mut f = self.st.graph.clone();
        if notrace {
            f.notrace = new;
        } else {
            f.functions = new;
        }
        self.set_graph_filters(f)
    }

    /// Replaces the function_graph tracer's filters; a running tracer is
    /// unregistered around the change ([`graph::configure`] needs that).
    fn set_graph_filters(&mut self, f: GraphFilters) -> Result<(), ControlError> {
        if !self.st.tracers.graph {
            self.st.graph = f;
            return Ok(());
        }
        let g = graph::ops();
        match self.ft.unregister_graph(g) {
            Ok(()) | Err(EngineError::NotRegistered) => {}
            Err(e) => return Err(ControlError::Engine(e)),
        }
        let r = graph::configure(f.clone());
        if r.is_ok() {
            self.st.graph = f;
        }
        self.ft.register_graph(g).map_err(|e| {
            self.st.tracers.graph = false;
            ControlError::Engine(e)
        })
    }
}
