//! `ftrace-report`: reads a console log holding the kernel's binary trace
//! dump (`trace_dump=binary`) and writes Linux's text, trace-cmd's
//! `trace.dat`, Chrome/Perfetto JSON, folded stacks and a flame graph.
//! `ftrace-report --help` shows the options and examples.

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use ftrace_report::{Error, Output};

/// Logs smaller than this are read without a progress bar.
const PROGRESS_MIN_BYTES: usize = 4 << 20;

const EXAMPLES: &str = "\
Examples:
  # Boot with the binary dump, then rebuild everything into out/
  ./run-qemu.sh x86_64 \"ftrace=function,function_graph ftrace_filter=demo_* trace_dump=binary\" > boot.log
  ftrace-report boot.log -o out
  trace-cmd report -i out/function_graph.dat
  trace-cmd report -O parent -i out/function.dat   # the plugin shows parents on request

  # Only the graph's flame graph, from standard input
  ftrace-report --svg flame.svg < boot.log

  # Check that the dump rebuilds the text the kernel printed, byte for byte
  ftrace-report --check boot.log

  # Or all at once from run-qemu.sh
  ./run-qemu.sh x86_64 \"ftrace=function_graph ftrace_filter=demo_* trace_dump=binary\" --report out

Outputs in --out-dir: function.txt, function_graph.txt (Linux's text),
function.dat, function_graph.dat (trace-cmd's trace.dat, version 6),
trace.json (Chrome trace events, for Perfetto), function_graph.folded and
flamegraph.svg, for the tracers whose buffers hold events (the kernel
dumps both buffers whichever tracers ran).

Exit status: 0 when everything was read and written; 1 when the log is
damaged (what still decodes is written, each problem is named by its log
line), --check found a difference, or an output could not be written;
2 on bad usage.";

/// Rebuilds traces from the binary dump (`trace_dump=binary`) in a kernel
/// console log.
#[derive(Parser, Debug)]
#[command(name = "ftrace-report", version, after_help = EXAMPLES)]
struct Cli {
    /// The console log (`-` or none: standard input).
    log: Option<PathBuf>,
    /// Write every output into DIR (created when missing).
    #[arg(short = 'o', long, value_name = "DIR")]
    out_dir: Option<PathBuf>,
    /// Write the function tracer's text to FILE.
    #[arg(long, value_name = "FILE")]
    function_text: Option<PathBuf>,
    /// Write the function_graph text to FILE.
    #[arg(long, value_name = "FILE")]
    graph_text: Option<PathBuf>,
    /// Write the function tracer's trace.dat to FILE.
    #[arg(long, value_name = "FILE")]
    function_dat: Option<PathBuf>,
    /// Write the function_graph trace.dat to FILE.
    #[arg(long, value_name = "FILE")]
    graph_dat: Option<PathBuf>,
    /// Write Chrome trace-event JSON (Perfetto) to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write the function_graph folded stacks to FILE.
    #[arg(long, value_name = "FILE")]
    folded: Option<PathBuf>,
    /// Write the function_graph flame graph SVG to FILE.
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
    /// Compare the rebuilt text with the trace the kernel printed in the
    /// same log, byte for byte (the trace lines; the counters line after
    /// each trace is not in the dump).
    #[arg(long)]
    check: bool,
    /// No progress bar, no list of files written.
    #[arg(short, long)]
    quiet: bool,
}

impl Cli {
    /// The outputs asked for, with their paths.
    fn outputs(&self) -> Vec<(Output, PathBuf, bool)> {
        let named = [
            (Output::FunctionText, &self.function_text),
            (Output::GraphText, &self.graph_text),
            (Output::FunctionDat, &self.function_dat),
            (Output::GraphDat, &self.graph_dat),
            (Output::Json, &self.json),
            (Output::Folded, &self.folded),
            (Output::Svg, &self.svg),
        ];
        let mut v: Vec<(Output, PathBuf, bool)> = named
            .iter()
            .filter_map(|(o, p)| p.as_ref().map(|p| (*o, p.clone(), true)))
            .collect();
        if let Some(dir) = &self.out_dir {
            v.extend(
                Output::ALL
                    .iter()
                    .map(|o| (*o, dir.join(o.file_name()), false)),
            );
        }
        v
    }
}

fn read_input(path: Option<&Path>) -> Result<Vec<u8>, Error> {
    match path {
        None => read_stdin(),
        Some(p) if p == Path::new("-") => read_stdin(),
        Some(p) => std::fs::read(p).map_err(|error| Error::Read {
            path: p.to_path_buf(),
            error,
        }),
    }
}

fn read_stdin() -> Result<Vec<u8>, Error> {
    let mut v = Vec::new();
    std::io::stdin()
        .read_to_end(&mut v)
        .map_err(|error| Error::Read {
            path: PathBuf::from("-"),
            error,
        })?;
    Ok(v)
}

fn run(cli: &Cli) -> Result<bool, Error> {
    let log = read_input(cli.log.as_deref())?;
    let bar = (!cli.quiet && log.len() >= PROGRESS_MIN_BYTES && std::io::stderr().is_terminal())
        .then(|| {
            let b = indicatif::ProgressBar::new(log.len() as u64);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "reading the dump {bar:40} {bytes}/{total_bytes} ({eta})",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            b
        });
    let report = ftrace_report::read_log(&log, &mut |done| {
        if let Some(b) = &bar {
            b.set_position(done as u64);
        }
    });
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let report = report?;
    let mut ok = report.problems.is_empty();
    for p in &report.problems {
        eprintln!("ftrace-report: {p}");
    }
    if let Some(dir) = &cli.out_dir {
        std::fs::create_dir_all(dir).map_err(|error| Error::Write {
            path: dir.clone(),
            error,
        })?;
    }
    for (output, path, named) in cli.outputs() {
        // In a directory, only what the dump has data for.
        if !named && !output.has_data(&report.trace) {
            continue;
        }
        match output.render(&report.trace) {
            Ok(bytes) => {
                std::fs::write(&path, bytes).map_err(|error| Error::Write {
                    path: path.clone(),
                    error,
                })?;
                if !cli.quiet {
                    eprintln!("ftrace-report: wrote {}", path.display());
                }
            }
            Err(why) => {
                eprintln!("ftrace-report: {}: not written: {why}", path.display());
                ok = false;
            }
        }
    }
    if cli.check {
        let c = ftrace_report::check(&log, &report);
        for d in &c.differences {
            eprintln!("ftrace-report: check: {d}");
        }
        if c.differences.is_empty() && !c.compared.is_empty() && !cli.quiet {
            let names: Vec<&str> = c.compared.iter().map(|t| t.name()).collect();
            eprintln!(
                "ftrace-report: check: the {} text rebuilt from the dump is the kernel's, byte for byte",
                names.join(" and ")
            );
        }
        ok &= c.differences.is_empty();
    }
    Ok(ok)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.outputs().is_empty() && !cli.check {
        eprintln!(
            "ftrace-report: nothing to do: give --out-dir DIR, an output file (--function-text FILE, ...) or --check\n\nFor more information, try '--help'."
        );
        return ExitCode::from(2);
    }
    match run(&cli) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            if let Error::Undecodable { before, .. } = &e {
                for p in before {
                    eprintln!("ftrace-report: {p}");
                }
            }
            eprintln!("ftrace-report: error: {e}");
            ExitCode::FAILURE
        }
    }
}
