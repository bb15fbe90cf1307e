//! Errors of the tools: one variant per problem, each with a message that
//! says what is wrong and, where there is one, what to change.

use std::fmt;
use std::path::{Path, PathBuf};

/// Why a tool could not do its job on an ELF image.
///
/// The messages do not name the file; [`FileError`] adds the path.
#[derive(Debug)]
pub enum Error {
    /// The bytes do not start with the ELF magic (empty file, random bytes,
    /// a raw binary instead of the ELF).
    NotElf,
    /// The ELF magic is there but the headers are truncated or inconsistent.
    Malformed(String),
    /// A section the tool needs is absent.
    SectionMissing(&'static str),
    /// A section the tool writes occupies no bytes in the file (`SHT_NOBITS`,
    /// e.g. it was placed in `.bss` or declared `(NOLOAD)`).
    SectionNoBits(&'static str),
    /// A section's file range lies beyond the end of the file.
    SectionOutsideFile {
        /// Section name.
        section: &'static str,
        /// Offset just past the section.
        end: u64,
        /// File length.
        file_len: usize,
    },
    /// The data does not fit in the section reserved for it.
    SectionTooSmall {
        /// Section name.
        section: &'static str,
        /// Bytes the data needs.
        needed: usize,
        /// Bytes the section holds.
        available: usize,
        /// What to raise, as printed (a constant or a macro's argument).
        constant: &'static str,
    },
    /// No function symbol was found (a stripped ELF?).
    NoFunctionSymbols,
    /// A symbol the tool needs is absent or undefined.
    SymbolMissing(String),
    /// No `call <mcount>` site was found.
    NoMcountSites(String),
    /// More `mcount` sites than [`ftrace_abi::MCOUNT_SITES_CAPACITY`].
    TooManyMcountSites {
        /// Sites found.
        found: usize,
        /// Capacity.
        capacity: usize,
    },
    /// The ELF is not for a machine the subcommand supports.
    UnsupportedMachine(String),
    /// An address does not fit in the 32-bit table entries.
    AddressTooWide(u64),
    /// No site table: neither pair of start/stop symbols nor the section
    /// (the kernel was built without patchable function entries).
    NoSiteTable,
    /// The site table between the start and stop symbols is unusable.
    BadSiteTable(String),
    /// Reading or writing the file failed.
    Io(std::io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotElf => write!(f, "not an ELF file (no ELF magic; empty or wrong file?)"),
            Error::Malformed(e) => write!(f, "malformed or truncated ELF: {e}"),
            Error::SectionMissing(s) if *s == ftrace_abi::SYMTAB_SECTION => write!(
                f,
                "section `{s}` is missing: reserve it in the kernel with \
                 `ftrace::reserve_symtab!(static SYMTAB: SIZE)` and read it with `SYMTAB.table()` \
                 (docs/embedding.md, step 4), or in a linker script"
            ),
            Error::SectionMissing(s) => write!(
                f,
                "section `{s}` is missing (does the linker script reserve it and KEEP it?)"
            ),
            Error::SectionNoBits(s) => write!(
                f,
                "section `{s}` has no bytes in the file (SHT_NOBITS): the linker script must \
                 make it PROGBITS (fill it, e.g. `. += SIZE` after a `BYTE(0)`, not NOLOAD/.bss)"
            ),
            Error::SectionOutsideFile {
                section,
                end,
                file_len,
            } => write!(
                f,
                "section `{section}` ends at file offset {end} but the file has only {file_len} \
                 bytes (truncated ELF)"
            ),
            Error::SectionTooSmall {
                section,
                needed,
                available,
                constant,
            } => write!(
                f,
                "table needs {needed} bytes but section `{section}` holds {available}: raise \
                 {constant}"
            ),
            Error::NoFunctionSymbols => write!(
                f,
                "no function symbols (is the ELF stripped? the kernel must keep its .symtab)"
            ),
            Error::SymbolMissing(s) => write!(f, "symbol `{s}` is missing or undefined"),
            Error::NoMcountSites(s) => write!(
                f,
                "no `call {s}` found at the start of any function (built without \
                 -Zinstrument-mcount? position-independent code calling through the PLT?)"
            ),
            Error::TooManyMcountSites { found, capacity } => write!(
                f,
                "found {found} mcount sites but the table holds {capacity}: raise \
                 `ftrace_abi::MCOUNT_SITES_CAPACITY`"
            ),
            Error::UnsupportedMachine(m) => write!(f, "unsupported machine: {m}"),
            Error::AddressTooWide(a) => {
                write!(
                    f,
                    "address {a:#x} does not fit in a 32-bit mcount table entry"
                )
            }
            Error::NoSiteTable => write!(
                f,
                "no patchable-function-entry site table (no `{}`/`{}`, no `{}`/`{}`, no `{}` \
                 section): the kernel was built without -Zpatchable-function-entry \
                 (docs/embedding.md, step 2)",
                ftrace_abi::SITES_START_SYMBOL,
                ftrace_abi::SITES_STOP_SYMBOL,
                ftrace_abi::LINKER_SITES_START_SYMBOL,
                ftrace_abi::LINKER_SITES_STOP_SYMBOL,
                ftrace_abi::SITES_SECTION
            ),
            Error::BadSiteTable(e) => write!(f, "bad patchable-function-entry site table: {e}"),
            Error::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<object::read::Error> for Error {
    fn from(e: object::read::Error) -> Self {
        Error::Malformed(e.to_string())
    }
}

/// An [`Error`] together with the file it concerns.
#[derive(Debug)]
pub struct FileError {
    /// The file.
    pub path: PathBuf,
    /// What went wrong.
    pub error: Error,
}

impl FileError {
    /// Attaches `path` to `error`.
    pub fn new(path: &Path, error: Error) -> Self {
        FileError {
            path: path.to_path_buf(),
            error,
        }
    }
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.error)
    }
}

impl std::error::Error for FileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}
