#![doc = include_str!("../README.md")]

pub mod chrome;
pub mod columns;
pub mod console;
pub mod decode;
pub mod flame;
pub mod problem;
pub mod text;
pub mod tracedat;

pub use decode::{Section, Trace, Tracer};
pub use problem::{Error, Problem};

/// A console log read back: the decoded trace and everything that was
/// wrong with the log.
#[derive(Debug)]
pub struct Report {
    /// The decoded dump.
    pub trace: Trace,
    /// Problems, in log order (empty for an intact dump).
    pub problems: Vec<Problem>,
    /// Log line of the dump's `ftrace-dump: begin`.
    pub begin_line: usize,
}

/// Finds the dump in a console log and decodes it. `progress` is told how
/// many bytes of the log were looked at, now and then.
pub fn read_log(log: &[u8], progress: &mut dyn FnMut(usize)) -> Result<Report, Error> {
    let scan = console::scan(log, progress)?;
    let mut problems = scan.problems;
    let trace = match decode::decode(&scan.payload, &mut problems) {
        Ok(t) => t,
        Err(Error::Fatal(fatal)) => {
            return Err(Error::Undecodable {
                before: problems,
                fatal,
            });
        }
        Err(e) => return Err(e),
    };
    problems.sort_by_key(|p| p.line);
    Ok(Report {
        trace,
        problems,
        begin_line: scan.payload.begin_line,
    })
}

/// What the tool can write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Linux's function tracer text.
    FunctionText,
    /// Linux's function_graph text.
    GraphText,
    /// trace-cmd's `trace.dat` of the function tracer.
    FunctionDat,
    /// trace-cmd's `trace.dat` of function_graph.
    GraphDat,
    /// Chrome trace-event JSON (Perfetto) of both.
    Json,
    /// Folded stacks of function_graph.
    Folded,
    /// Flame graph SVG of function_graph.
    Svg,
}

impl Output {
    /// Every output, in the order they are written.
    pub const ALL: [Output; 7] = [
        Output::FunctionText,
        Output::GraphText,
        Output::FunctionDat,
        Output::GraphDat,
        Output::Json,
        Output::Folded,
        Output::Svg,
    ];

    /// Its file name in an output directory.
    pub fn file_name(self) -> &'static str {
        match self {
            Output::FunctionText => "function.txt",
            Output::GraphText => "function_graph.txt",
            Output::FunctionDat => "function.dat",
            Output::GraphDat => "function_graph.dat",
            Output::Json => "trace.json",
            Output::Folded => "function_graph.folded",
            Output::Svg => "flamegraph.svg",
        }
    }

    /// The section it is made from (`None`: all of them).
    pub fn tracer(self) -> Option<Tracer> {
        match self {
            Output::FunctionText | Output::FunctionDat => Some(Tracer::Function),
            Output::Json => None,
            _ => Some(Tracer::Graph),
        }
    }

    /// True when it has something to show: its tracer's buffer is in the
    /// dump and not empty ([`Section::is_empty`]); for the JSON, any.
    pub fn has_data(self, t: &Trace) -> bool {
        match self.tracer() {
            Some(tr) => t.section(tr).is_some_and(|s| !s.is_empty()),
            None => t.sections.iter().any(|s| !s.is_empty()),
        }
    }

    /// Its bytes; `Err` says why there are none (the dump has no such
    /// section, or no events for it).
    pub fn render(self, t: &Trace) -> Result<Vec<u8>, String> {
        let section = match self.tracer() {
            Some(tr) => Some(t.section(tr).ok_or_else(|| {
                format!(
                    "the dump has no {} buffer (was the tracer started?)",
                    tr.name()
                )
            })?),
            None => None,
        };
        Ok(match (self, section) {
            (Output::FunctionText | Output::GraphText, Some(s)) => text::text(t, s).into_bytes(),
            (Output::FunctionDat | Output::GraphDat, Some(s)) => tracedat::trace_dat(t, s),
            (Output::Folded, Some(s)) => {
                let mut v = flame::folded(t, s).join("\n");
                if !v.is_empty() {
                    v.push('\n');
                }
                v.into_bytes()
            }
            (Output::Svg, Some(s)) => flame::flamegraph_svg(t, &flame::folded(t, s))
                .ok_or("no function_graph calls to draw")?,
            _ => {
                let mut v =
                    serde_json::to_vec(&chrome::chrome_json(t)).map_err(|e| e.to_string())?;
                v.push(b'\n');
                v
            }
        })
    }
}

/// What [`check`] found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Check {
    /// The tracers whose text was compared.
    pub compared: Vec<Tracer>,
    /// One message per difference or missing text.
    pub differences: Vec<String>,
}

/// Compares the rebuilt text of every section with the trace the kernel
/// printed before the dump (trace lines only, not the counters line after
/// them). An empty buffer without text is a tracer that did not run: it is
/// not compared.
pub fn check(log: &[u8], r: &Report) -> Check {
    let mut out = Check::default();
    for s in &r.trace.sections {
        let ours = text::text(&r.trace, s);
        match text::kernel_text(log, s.tracer, r.begin_line) {
            Some(k) => {
                out.compared.push(s.tracer);
                if let Err(e) = text::compare(&k, &ours, s.tracer) {
                    out.differences.push(e);
                }
            }
            None if s.is_empty() => {}
            None => out.differences.push(format!(
                "line {}: no `# tracer: {}` text before the dump to compare with",
                r.begin_line,
                s.tracer.name()
            )),
        }
    }
    out
}
