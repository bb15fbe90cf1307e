//! What can be wrong with a console log: [`Problem`]s (reported, and
//! whatever still decodes is used) and [`Error`]s (nothing can be rebuilt).
//! Every message names the log line where the problem was seen.

use std::fmt;
use std::path::PathBuf;

/// Something wrong with the input that did not stop the tool: it is
/// reported, the tool exits with status 1, and every output that could be
/// rebuilt without the damaged part is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The log line (1-based) where it was seen, when there is one.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl Problem {
    /// A problem seen at log line `line`.
    pub fn at(line: usize, message: impl Into<String>) -> Self {
        Problem {
            line: Some(line),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "line {l}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// Why nothing could be rebuilt, or an output could not be written.
#[derive(Debug)]
pub enum Error {
    /// The log holds no `ftrace-dump: begin` line.
    NoDump {
        /// The first dump data line seen without a header, if any.
        orphan_line: Option<usize>,
    },
    /// The dump is unusable from this log line on (bad header, unknown
    /// version, its first fields lost).
    Fatal(Problem),
    /// The dump's lines were read but its first fields cannot be decoded;
    /// `before` are the problems seen reading the lines (often the cause).
    Undecodable {
        /// Problems with the lines.
        before: Vec<Problem>,
        /// Why nothing decodes.
        fatal: Problem,
    },
    /// Reading the log failed.
    Read {
        /// The log (`-` for standard input).
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// Writing an output failed.
    Write {
        /// The output file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoDump { orphan_line: None } => write!(
                f,
                "no binary trace dump in the log (no `ftrace-dump: begin` line; boot the \
                 kernel with `trace_dump=binary`)"
            ),
            Error::NoDump {
                orphan_line: Some(l),
            } => write!(
                f,
                "line {l}: dump lines without their `ftrace-dump: begin` line (is the start \
                 of the log missing?)"
            ),
            Error::Fatal(p) | Error::Undecodable { fatal: p, .. } => write!(f, "{p}"),
            Error::Read { path, error } => write!(f, "cannot read {}: {error}", path.display()),
            Error::Write { path, error } => {
                write!(f, "cannot write {}: {error}", path.display())
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Read { error, .. } | Error::Write { error, .. } => Some(error),
            _ => None,
        }
    }
}
