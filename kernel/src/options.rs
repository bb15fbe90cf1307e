//! The kernel's command-line options, with Linux's names where Linux has
//! them. Bad input is reported (one warning line each) and ignored.

use bootargs::{Cmdline, Opt};

/// Every key the kernel understands.
pub const KNOWN: &[&str] = &["ftrace", "ftrace_filter", "ftrace_notrace", "test"];

/// Parsed options.
#[derive(Debug)]
pub struct Options {
    /// `ftrace=`: the tracer to start at boot.
    pub tracer: Option<&'static str>,
    /// `ftrace_filter=`: patterns, comma-separated.
    pub filter: Option<&'static str>,
    /// `ftrace_notrace=`: patterns, comma-separated.
    pub notrace: Option<&'static str>,
    /// `test=`: a scenario name (checked by `main`, which knows the
    /// generic and the arch scenarios).
    pub test: Option<&'static str>,
}

impl Options {
    /// Parses the line, logging one warning per problem.
    pub fn parse(raw: &'static [u8]) -> Options {
        let mut o = Options {
            tracer: None,
            filter: None,
            notrace: None,
            test: None,
        };
        let line = Cmdline::new(raw);
        for opt in line.options(KNOWN, |w| log::warn!("cmdline: {w}")) {
            o.apply(opt);
        }
        o
    }

    fn apply(&mut self, opt: Opt<'static>) {
        let Some(value) = opt.value else {
            log::warn!("cmdline: option '{}' needs a value", opt.key);
            return;
        };
        match opt.key {
            "ftrace" => self.tracer = Some(value),
            "ftrace_filter" => self.filter = Some(value),
            "ftrace_notrace" => self.notrace = Some(value),
            "test" => self.test = Some(value),
            _ => {}
        }
    }
}
