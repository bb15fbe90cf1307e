//! Filter patterns (Linux's `set_ftrace_filter` syntax) and their resolution
//! to sets of sites.
//!
//! A pattern string is a comma-separated list of globs; `*` matches any run
//! of characters, and is the only wildcard. A leading `!` removes the
//! matches from the set instead of adding them. Names are demangled Rust
//! paths without hash (`kernel::demo::demo_leaf`); a glob without `::` also
//! matches the last path segment, so `demo_*` selects
//! `kernel::demo::demo_leaf`, while a glob with `::` matches the full path.
//!
//! A glob that matches no function at all is an error, as is a malformed one:
//! nothing is ever silently ignored.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

/// A parsed glob: the text split at `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob<'a> {
    text: &'a str,
    /// Whether `text` contains `::` (then only full paths are matched).
    qualified: bool,
}

impl<'a> Glob<'a> {
    /// A glob from its text (no validation; see [`parse`]).
    pub fn new(text: &'a str) -> Self {
        Glob {
            text,
            qualified: text.contains("::"),
        }
    }

    /// True when `text` contains no `*`.
    pub fn is_exact(&self) -> bool {
        !self.text.contains('*')
    }

    /// The glob text.
    pub fn text(&self) -> &'a str {
        self.text
    }

    /// Matches `s` against the whole glob.
    pub fn matches_str(&self, s: &str) -> bool {
        glob_match(self.text, s)
    }

    /// Matches a function name: the full path, or (for globs without `::`)
    /// its last segment.
    pub fn matches_name(&self, name: &str) -> bool {
        if self.matches_str(name) {
            return true;
        }
        if self.qualified {
            return false;
        }
        // The last `::` (a byte scan: `rfind` would build a substring
        // searcher for every name).
        match name.as_bytes().windows(2).rposition(|w| w == b"::") {
            Some(i) => self.matches_str(&name[i + 2..]),
            None => false,
        }
    }
}

/// `*`-only glob match, linear in `pattern.len() + s.len()` per piece
/// search: the first piece anchors at the start, the last at the end, the
/// middle ones are found left to right (the leftmost occurrence is always
/// the best choice).
pub fn glob_match(pattern: &str, s: &str) -> bool {
    let mut pieces = pattern.split('*');
    let first = pieces.next().unwrap_or("");
    let Some(mut rest) = s.strip_prefix(first) else {
        return false;
    };
    // No allocation: a piece is the last one when nothing follows it.
    let Some(mut piece) = pieces.next() else {
        // No `*` at all: exact match.
        return rest.is_empty();
    };
    for next in pieces {
        match rest.find(piece) {
            Some(i) => rest = &rest[i + piece.len()..],
            None => return false,
        }
        piece = next;
    }
    rest.len() >= piece.len() && rest.ends_with(piece)
}

/// One comma-separated element of a pattern string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern<'a> {
    /// The element as written (trimmed), e.g. `!demo_*`.
    pub text: &'a str,
    /// True for `!glob`: remove matches.
    pub negate: bool,
    /// The glob without `!`.
    pub glob: Glob<'a>,
}

/// Why a pattern string was rejected or did not apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterError {
    /// The pattern is malformed.
    Malformed {
        /// The offending element as written.
        pattern: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The pattern matches no function.
    NoMatch {
        /// The offending element as written.
        pattern: String,
    },
    /// No function has a name: the kernel has no symbol table, so no
    /// pattern can match.
    NoSymbols {
        /// The element as written.
        pattern: String,
    },
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FilterError::Malformed { pattern, reason } => {
                write!(f, "ftrace: bad filter pattern '{pattern}': {reason}")
            }
            FilterError::NoMatch { pattern } => {
                write!(f, "ftrace: no function matches '{pattern}'")
            }
            FilterError::NoSymbols { pattern } => write!(
                f,
                "ftrace: no function matches '{pattern}': the kernel has no symbol table (run \
                 `ftrace-tools embed-symtab <kernel ELF>` after linking, docs/embedding.md)"
            ),
        }
    }
}

/// Characters the glob syntax reserves but does not support.
const UNSUPPORTED: &[char] = &['[', ']', '?', '\\', '{', '}'];

fn parse_one(text: &str) -> Result<Pattern<'_>, FilterError> {
    let bad = |reason| FilterError::Malformed {
        pattern: text.to_string(),
        reason,
    };
    if text.is_empty() {
        return Err(bad("empty pattern"));
    }
    let (negate, glob) = match text.strip_prefix('!') {
        Some(g) => (true, g.trim_start()),
        None => (false, text),
    };
    if glob.is_empty() {
        return Err(bad("'!' without a pattern"));
    }
    if glob.contains('!') {
        return Err(bad("'!' only allowed at the start"));
    }
    if glob.contains(UNSUPPORTED) {
        return Err(bad("unsupported character (only '*' is a wildcard)"));
    }
    if glob.chars().any(char::is_control) {
        return Err(bad("control character"));
    }
    Ok(Pattern {
        text,
        negate,
        glob: Glob::new(glob),
    })
}

/// Splits and validates a pattern string. All malformed elements are
/// reported.
pub fn parse(patterns: &str) -> Result<Vec<Pattern<'_>>, Vec<FilterError>> {
    let mut ok = Vec::new();
    let mut errs = Vec::new();
    for text in patterns.split(',').map(str::trim) {
        match parse_one(text) {
            Ok(p) => ok.push(p),
            Err(e) => errs.push(e),
        }
    }
    if errs.is_empty() { Ok(ok) } else { Err(errs) }
}

/// Applies `patterns` to named items in order, starting from `initial`
/// membership: a positive pattern adds its matches, a `!` pattern removes
/// them. `names[i]` is item `i`'s name (`None`: unnamed, never matched).
/// Every pattern matching no item is reported.
///
/// Cost: one match per (item, pattern) pair.
pub fn apply(
    patterns: &[Pattern<'_>],
    names: &[Option<&str>],
    selected: &mut [bool],
) -> Result<(), Vec<FilterError>> {
    debug_assert_eq!(names.len(), selected.len());
    let mut errs = Vec::new();
    for p in patterns {
        let mut hit = false;
        for (name, sel) in names.iter().zip(selected.iter_mut()) {
            if let Some(name) = name
                && p.glob.matches_name(name)
            {
                hit = true;
                *sel = !p.negate;
            }
        }
        if !hit {
            let pattern = p.text.to_string();
            // No names at all means no symbol table; no sites at all (a
            // kernel built without patchable entries) is a plain no-match.
            errs.push(if !names.is_empty() && names.iter().all(Option::is_none) {
                FilterError::NoSymbols { pattern }
            } else {
                FilterError::NoMatch { pattern }
            });
        }
    }
    if errs.is_empty() { Ok(()) } else { Err(errs) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_sites_is_no_match_not_missing_symbols() {
        let pats = parse("demo_*").unwrap();
        let err = apply(&pats, &[], &mut []).unwrap_err();
        assert_eq!(
            err,
            [FilterError::NoMatch {
                pattern: "demo_*".into()
            }]
        );
        let err = apply(&pats, &[None], &mut [false]).unwrap_err();
        assert_eq!(
            err,
            [FilterError::NoSymbols {
                pattern: "demo_*".into()
            }]
        );
    }

    #[test]
    fn globs() {
        assert!(glob_match("abc", "abc"));
        assert!(!glob_match("abc", "abcd"));
        assert!(glob_match("a*", "abc"));
        assert!(glob_match("*c", "abc"));
        assert!(glob_match("*b*", "abc"));
        assert!(glob_match("a*c", "abc"));
        assert!(glob_match("a*c", "ac"));
        assert!(!glob_match("ab*bc", "abc"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*b*c", "aXbYbZc"));
    }

    #[test]
    fn last_segment() {
        let g = Glob::new("demo_*");
        assert!(g.matches_name("kernel::demo::demo_leaf"));
        assert!(!Glob::new("demo::demo_*").matches_name("kernel::demo::demo_leaf"));
        assert!(Glob::new("kernel::demo::*").matches_name("kernel::demo::demo_leaf"));
        assert!(Glob::new("*::demo_*").matches_name("kernel::demo::demo_leaf"));
        assert!(Glob::new("demo_leaf").matches_name("demo_leaf"));
    }

    #[test]
    fn malformed() {
        let e = parse("a,,b").unwrap_err();
        assert_eq!(e.len(), 1);
        assert_eq!(
            e[0].to_string(),
            "ftrace: bad filter pattern '': empty pattern"
        );
        let e = parse("!, x[ab], a!b").unwrap_err();
        assert_eq!(e.len(), 3);
        assert!(e[1].to_string().contains("'x[ab]'"));
        assert!(parse(" !foo* , bar").unwrap()[0].negate);
    }
}
