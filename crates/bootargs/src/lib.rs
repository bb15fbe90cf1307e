//! Kernel command-line parsing for `no_std` kernels.
//!
//! The line is split on ASCII whitespace into options: `key=value`, or a bare
//! `key`. Values may hold commas (`ftrace_filter=a*,b*`); [`Opt::values`]
//! splits them. Nothing here allocates or panics: malformed input is reported
//! as a [`Warning`] and the rest of the line is still parsed, so a kernel can
//! print one line per problem and keep booting.
//!
//! ```
//! use bootargs::{Cmdline, Warning};
//! let spec = &["ftrace", "ftrace_filter", "test"];
//! let line = Cmdline::new(b"ftrace=function ftrace_filter=demo_*,!demo_fib =x");
//! let mut warnings = 0;
//! let opts: Vec<_> = line.options(spec, |w| { warnings += 1; assert_eq!(w, Warning::EmptyKey(b"=x")); }).collect();
//! assert_eq!(opts[1].key, "ftrace_filter");
//! assert_eq!(opts[1].values().collect::<Vec<_>>(), ["demo_*", "!demo_fib"]);
//! assert_eq!(warnings, 1);
//! ```
#![no_std]

#[cfg(test)]
extern crate std;

use core::fmt;

/// Longest command line parsed; longer lines are truncated with
/// [`Warning::Truncated`].
pub const MAX_LEN: usize = 4096;

/// A problem with one part of the command line. Holds the offending bytes so
/// the message can name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Warning<'a> {
    /// The line was longer than [`MAX_LEN`]; holds the original length.
    Truncated(usize),
    /// `=value` with nothing before the `=`.
    EmptyKey(&'a [u8]),
    /// `key==value` or a value starting with `=`.
    DoubleEquals(&'a [u8]),
    /// A byte outside printable ASCII in the option.
    NonAscii(&'a [u8]),
    /// A key that is not in the kernel's list of known options.
    UnknownKey(&'a [u8]),
}

/// Writes bytes, escaping anything outside printable ASCII as `\xNN`, and
/// shortening to 64 bytes so that a 4 KiB token gives a readable warning.
struct Shown<'a>(&'a [u8]);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const LIMIT: usize = 64;
        for &b in self.0.iter().take(LIMIT) {
            if b.is_ascii_graphic() || b == b' ' {
                write!(f, "{}", b as char)?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        if self.0.len() > LIMIT {
            write!(f, "...({} bytes)", self.0.len())?;
        }
        Ok(())
    }
}

impl fmt::Display for Warning<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Warning::Truncated(n) => {
                write!(f, "command line is {n} bytes, truncated to {MAX_LEN}")
            }
            Warning::EmptyKey(t) => write!(f, "malformed option '{}': empty key", Shown(t)),
            Warning::DoubleEquals(t) => {
                write!(f, "malformed option '{}': value starts with '='", Shown(t))
            }
            Warning::NonAscii(t) => {
                write!(f, "malformed option '{}': non-ASCII byte", Shown(t))
            }
            Warning::UnknownKey(k) => write!(f, "unknown option '{}' ignored", Shown(k)),
        }
    }
}

/// One well-formed option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opt<'a> {
    /// The key, always non-empty ASCII.
    pub key: &'a str,
    /// The value after the first `=`, or `None` for a bare key.
    pub value: Option<&'a str>,
}

impl<'a> Opt<'a> {
    /// The comma-separated parts of the value, empty parts skipped.
    pub fn values(&self) -> impl Iterator<Item = &'a str> + 'a {
        self.value
            .unwrap_or("")
            .split(',')
            .filter(|s| !s.is_empty())
    }
}

/// A command line as the boot protocol handed it over.
#[derive(Debug, Clone, Copy)]
pub struct Cmdline<'a> {
    raw: &'a [u8],
}

impl<'a> Cmdline<'a> {
    /// Wraps raw bytes; a trailing NUL and anything after it is dropped.
    pub fn new(raw: &'a [u8]) -> Self {
        let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
        Cmdline { raw: &raw[..end] }
    }

    /// The bytes as received (before truncation).
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// Iterates over the well-formed options whose key is in `known`,
    /// calling `warn` once for every problem (truncation first).
    pub fn options<'k, W: FnMut(Warning<'a>)>(
        &self,
        known: &'k [&'k str],
        mut warn: W,
    ) -> impl Iterator<Item = Opt<'a>> + use<'a, 'k, W> {
        let mut line = self.raw;
        if line.len() > MAX_LEN {
            warn(Warning::Truncated(line.len()));
            line = &line[..MAX_LEN];
        }
        line.split(|b| b.is_ascii_whitespace())
            .filter(|t| !t.is_empty())
            .filter_map(move |tok| match parse_token(tok) {
                Ok(opt) if known.contains(&opt.key) => Some(opt),
                Ok(opt) => {
                    warn(Warning::UnknownKey(opt.key.as_bytes()));
                    None
                }
                Err(w) => {
                    warn(w);
                    None
                }
            })
    }
}

/// Parses one whitespace-free token.
pub fn parse_token(tok: &[u8]) -> Result<Opt<'_>, Warning<'_>> {
    if tok.iter().any(|&b| !b.is_ascii() || b.is_ascii_control()) {
        return Err(Warning::NonAscii(tok));
    }
    // Checked above: all bytes are ASCII, so this cannot fail.
    let s = core::str::from_utf8(tok).map_err(|_| Warning::NonAscii(tok))?;
    match s.split_once('=') {
        None => Ok(Opt {
            key: s,
            value: None,
        }),
        Some(("", _)) => Err(Warning::EmptyKey(tok)),
        Some((_, v)) if v.starts_with('=') => Err(Warning::DoubleEquals(tok)),
        Some((k, v)) => Ok(Opt {
            key: k,
            value: Some(v),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::{String, ToString};
    use std::vec::Vec;

    const KNOWN: &[&str] = &["ftrace", "ftrace_filter", "test", "flag"];

    fn run(line: &[u8]) -> (Vec<(String, Option<String>)>, Vec<String>) {
        let mut w = Vec::new();
        let opts = Cmdline::new(line)
            .options(KNOWN, |x| w.push(x.to_string()))
            .map(|o| (o.key.to_string(), o.value.map(|v| v.to_string())))
            .collect();
        (opts, w)
    }

    #[test]
    fn key_values_bare_and_commas() {
        let (o, w) = run(b"  ftrace=function\tflag ftrace_filter=a*,!b,,c \n");
        assert!(w.is_empty());
        assert_eq!(o[0], ("ftrace".into(), Some("function".into())));
        assert_eq!(o[1], ("flag".into(), None));
        let opt = Opt {
            key: "ftrace_filter",
            value: Some("a*,!b,,c"),
        };
        assert_eq!(opt.values().collect::<Vec<_>>(), ["a*", "!b", "c"]);
    }

    #[test]
    fn malformed_tokens_warn_and_parsing_continues() {
        let (o, w) = run(b"=x a==b test=ok hello=world \xff=1 ftrace=");
        assert_eq!(
            w,
            [
                "malformed option '=x': empty key",
                "malformed option 'a==b': value starts with '='",
                "unknown option 'hello' ignored",
                "malformed option '\\xff=1': non-ASCII byte",
            ]
        );
        assert_eq!(
            o,
            [
                ("test".into(), Some("ok".into())),
                ("ftrace".into(), Some("".into()))
            ]
        );
    }

    #[test]
    fn long_lines_truncate_with_one_warning() {
        let line = std::vec![b'a'; 5000];
        let (o, w) = run(&line);
        assert!(o.is_empty());
        assert_eq!(w.len(), 2);
        assert_eq!(w[0], "command line is 5000 bytes, truncated to 4096");
        assert_eq!(
            w[1],
            std::format!("unknown option '{}...(4096 bytes)' ignored", "a".repeat(64))
        );
    }

    #[test]
    fn nul_ends_the_line() {
        let (o, w) = run(b"flag\0garbage");
        assert!(w.is_empty());
        assert_eq!(o, [("flag".into(), None)]);
    }

    #[test]
    fn every_byte_value_is_handled_without_panic() {
        for b in 0u8..=255 {
            let line = [b'a', b, b'=', b, b' ', b];
            let _ = run(&line);
        }
    }
}
