//! `ftrace-tools`: the command-line front end of the [`ftrace_tools`]
//! library. Run without arguments for the usage.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ftrace_tools::{Error, FileError};

const USAGE: &str = "\
usage:
  ftrace-tools embed-symtab <kernel.elf>
      Write the function symbol table into the `.ftrace_symtab` section, in place
      (reserved by `ftrace::reserve_symtab!` in the kernel, or a linker script).
      Run it on the linked kernel ELF, before any image tool copies it.
  ftrace-tools mcount-sites <kernel.elf> [--symbol NAME]
      Write the addresses of `call NAME` (default `mcount`) at function entries
      into the `.ftrace_mcount_sites` section, in place (i686 mcount builds).
  ftrace-tools symbols <kernel.elf>
      Print the symbol table the kernel would get: address, size, name.
  ftrace-tools sites <kernel.elf>
      Print the patchable-function-entry sites (between `__ftrace_sites_start`
      and `__ftrace_sites_stop`, or the linker's `__start___patchable_function_entries`
      and `__stop___patchable_function_entries`, or the section), with symbol+offset.

Exit status: 0 on success, 1 on error, 2 on bad usage.";

enum Command {
    EmbedSymtab(PathBuf),
    McountSites(PathBuf, String),
    Symbols(PathBuf),
    Sites(PathBuf),
    Help,
}

fn parse_args(args: &[String]) -> Result<Command, String> {
    let (cmd, rest) = args.split_first().ok_or("missing subcommand")?;
    let one_path = |rest: &[String]| match rest {
        [p] if !p.starts_with('-') => Ok(PathBuf::from(p)),
        [] => Err(format!("`{cmd}` needs a kernel ELF path")),
        _ => Err(format!("`{cmd}` takes exactly one kernel ELF path")),
    };
    match cmd.as_str() {
        "embed-symtab" => one_path(rest).map(Command::EmbedSymtab),
        "symbols" => one_path(rest).map(Command::Symbols),
        "sites" => one_path(rest).map(Command::Sites),
        "mcount-sites" => {
            let mut path = None;
            let mut symbol = ftrace_tools::DEFAULT_MCOUNT_SYMBOL.to_owned();
            let mut it = rest.iter();
            while let Some(a) = it.next() {
                match a.as_str() {
                    "--symbol" => {
                        symbol = it.next().ok_or("`--symbol` needs a name")?.clone();
                    }
                    s if s.starts_with("--symbol=") => symbol = s["--symbol=".len()..].into(),
                    s if s.starts_with('-') => return Err(format!("unknown option `{s}`")),
                    s if path.is_none() => path = Some(PathBuf::from(s)),
                    s => return Err(format!("unexpected argument `{s}`")),
                }
            }
            let path = path.ok_or("`mcount-sites` needs a kernel ELF path")?;
            Ok(Command::McountSites(path, symbol))
        }
        "help" | "-h" | "--help" => Ok(Command::Help),
        other => Err(format!("unknown subcommand `{other}`")),
    }
}

/// Reads `path` and runs a report on its bytes.
fn report(path: &Path, f: fn(&[u8]) -> Result<String, Error>) -> Result<(), FileError> {
    let data = std::fs::read(path).map_err(|e| FileError::new(path, Error::Io(e)))?;
    print!("{}", f(&data).map_err(|e| FileError::new(path, e))?);
    Ok(())
}

fn run(cmd: Command) -> Result<(), FileError> {
    match cmd {
        Command::EmbedSymtab(path) => {
            let r = ftrace_tools::embed_symtab_file(&path)?;
            eprintln!("{}", r.summary(&path));
        }
        Command::McountSites(path, symbol) => {
            let r = ftrace_tools::embed_mcount_sites_file(&path, &symbol)?;
            eprintln!("{}", r.summary(&path));
        }
        Command::Symbols(path) => report(&path, ftrace_tools::symbols_report)?,
        Command::Sites(path) => report(&path, ftrace_tools::sites_report)?,
        Command::Help => println!("{USAGE}"),
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cmd = match parse_args(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ftrace-tools: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(cmd) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ftrace-tools: error: {e}");
            ExitCode::FAILURE
        }
    }
}
