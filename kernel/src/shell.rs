//! `ftrace_shell`: a small interactive shell on the serial console over the
//! tracefs files of `ftrace::control`, the way Linux users drive ftrace
//! with `echo` and `cat` in `/sys/kernel/tracing`.
//!
//! Commands: `echo VALUE > FILE`, `echo VALUE >> FILE`, `echo VALUE`,
//! `cat FILE...`, `ls`, `run WORKLOAD`, `help`, `exit [STATUS]`. Words are
//! separated by blanks; `'...'` and `"..."` quote (so `'!demo_fib'` and
//! `'demo_*'` read as in a Linux shell); `>`/`>>` need not be separated
//! from the file name. Files may be named with Linux's paths
//! (`/sys/kernel/tracing/trace`).
//!
//! Input, like a terminal in canonical mode with echo on (Linux's serial
//! console): every byte typed is echoed, so a script piped in gives a
//! transcript with each command after its prompt. Backspace (DEL or BS)
//! erases, Ctrl-U erases the line, Ctrl-C abandons it, Ctrl-D on an empty
//! line leaves like `exit` (the runner sends it when its input ends). Other
//! control bytes are ignored; a line longer than [`LINE_MAX`] bytes is
//! refused with a message once it ends (what is typed beyond is not
//! echoed); a line holding non-ASCII bytes is refused too. Nothing typed
//! can stop the shell except `exit` and Ctrl-D.

use alloc::string::String;
use alloc::vec::Vec;
use core::hint::black_box;

use ftrace::control::ControlError;

use crate::console;
use crate::kprintln;
use crate::tracing;

/// The prompt (Linux's root prompt after the kernel's name).
pub const PROMPT: &str = "rftrace# ";

/// Longest command line accepted, in bytes.
pub const LINE_MAX: usize = 256;

/// The workloads `run` knows.
const WORKLOADS: &[&str] = &["demo", "fib", "deep", "region"];

/// Ctrl-C: abandon the line.
const CTRL_C: u8 = 0x03;
/// Ctrl-D: end of input on an empty line.
const CTRL_D: u8 = 0x04;
/// Ctrl-U: erase the line.
const CTRL_U: u8 = 0x15;
/// Backspace as terminals send it (DEL) and as `^H`.
const DEL: u8 = 0x7f;
const BS: u8 = 0x08;

/// What one line of input gave.
enum Input {
    /// A complete line (ASCII, at most [`LINE_MAX`] bytes).
    Line(String),
    /// A line of this many bytes, too long.
    TooLong(usize),
    /// A line holding non-ASCII bytes.
    NotAscii,
    /// Abandoned with Ctrl-C.
    Cancelled,
    /// Ctrl-D on an empty line.
    End,
}

/// The console's input side: line editing with echo.
struct Reader {
    buf: Vec<u8>,
    /// The last line ended with `\r`: a `\n` right after it is the same
    /// line end (CR LF).
    after_cr: bool,
}

impl Reader {
    fn new() -> Self {
        Reader {
            buf: Vec::with_capacity(LINE_MAX),
            after_cr: false,
        }
    }

    /// Waits for the next byte of input (polling: the kernel takes no
    /// interrupts).
    fn byte() -> u8 {
        loop {
            if let Some(b) = crate::arch::console_read() {
                return b;
            }
            core::hint::spin_loop();
        }
    }

    fn echo(bytes: &[u8]) {
        console::write_bytes(bytes);
    }

    /// Reads one line, echoing and editing as a terminal does.
    fn line(&mut self) -> Input {
        self.buf.clear();
        let mut dropped = 0usize;
        loop {
            let b = Self::byte();
            let after_cr = core::mem::replace(&mut self.after_cr, b == b'\r');
            match b {
                b'\n' if after_cr => {}
                b'\r' | b'\n' => {
                    Self::echo(b"\n");
                    return if dropped > 0 {
                        Input::TooLong(self.buf.len() + dropped)
                    } else if !self.buf.is_ascii() {
                        Input::NotAscii
                    } else {
                        Input::Line(self.buf.iter().map(|&b| b as char).collect())
                    };
                }
                DEL | BS => {
                    if dropped > 0 {
                        dropped -= 1;
                    } else if self.buf.pop().is_some() {
                        Self::echo(b"\x08 \x08");
                    }
                }
                CTRL_U => {
                    for _ in 0..self.buf.len() {
                        Self::echo(b"\x08 \x08");
                    }
                    self.buf.clear();
                    dropped = 0;
                }
                CTRL_C => {
                    Self::echo(b"^C\n");
                    return Input::Cancelled;
                }
                CTRL_D if self.buf.is_empty() && dropped == 0 => {
                    Self::echo(b"exit\n");
                    return Input::End;
                }
                b'\t' | 0x20.. => {
                    let b = if b == b'\t' { b' ' } else { b };
                    if self.buf.len() < LINE_MAX {
                        self.buf.push(b);
                        Self::echo(&[b]);
                    } else {
                        dropped += 1;
                    }
                }
                _ => {}
            }
        }
    }
}

/// Runs the shell until `exit` or Ctrl-D; returns the exit status (true:
/// success). `boot_ok`: whether the boot checks passed, the status of a
/// plain `exit`.
pub fn run(boot_ok: bool) -> bool {
    kprintln!("ftrace_shell: tracefs files on the console; 'help' lists the commands");
    let mut input = Reader::new();
    loop {
        console::print(format_args!("{PROMPT}"));
        match input.line() {
            Input::Line(l) => {
                if let Some(status) = run_line(&l, boot_ok) {
                    return status;
                }
            }
            Input::TooLong(n) => {
                kprintln!("sh: line too long ({n} bytes, at most {LINE_MAX}): ignored")
            }
            Input::NotAscii => kprintln!("sh: only ASCII input is accepted: line ignored"),
            Input::Cancelled => {}
            Input::End => return boot_ok,
        }
    }
}

/// One word of a command line.
#[derive(Debug, PartialEq, Eq)]
enum Token {
    Word(String),
    /// `>` (false) or `>>` (true).
    Redirect(bool),
}

/// Splits a line into words and redirections.
fn tokens(line: &str) -> Result<Vec<Token>, &'static str> {
    let mut out = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' => {
                if let Some(w) = word.take() {
                    out.push(Token::Word(w));
                }
            }
            '>' => {
                if let Some(w) = word.take() {
                    out.push(Token::Word(w));
                }
                let append = chars.next_if_eq(&'>').is_some();
                out.push(Token::Redirect(append));
            }
            '\'' | '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some(q) if q == c => break,
                        Some(q) => w.push(q),
                        None => return Err("unterminated quote"),
                    }
                }
            }
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    if let Some(w) = word {
        out.push(Token::Word(w));
    }
    Ok(out)
}

/// A tracefs file name from a path: Linux's mount points are accepted.
fn file_name(path: &str) -> &str {
    ["/sys/kernel/tracing/", "/sys/kernel/debug/tracing/", "./"]
        .iter()
        .find_map(|p| path.strip_prefix(p))
        .unwrap_or(path)
}

/// Runs one command line; `Some(status)` when the shell must exit.
fn run_line(line: &str, boot_ok: bool) -> Option<bool> {
    let toks = match tokens(line) {
        Ok(t) => t,
        Err(e) => {
            kprintln!("sh: syntax error: {e}");
            return None;
        }
    };
    let Some(pos) = toks.iter().position(|t| matches!(t, Token::Redirect(_))) else {
        let words: Vec<&str> = toks
            .iter()
            .filter_map(|t| match t {
                Token::Word(w) => Some(w.as_str()),
                Token::Redirect(_) => None,
            })
            .collect();
        return command(&words, boot_ok);
    };
    let append = matches!(toks[pos], Token::Redirect(true));
    let file = match &toks[pos + 1..] {
        [Token::Word(f)] => file_name(f),
        [] => {
            kprintln!("sh: syntax error: no file after '>'");
            return None;
        }
        _ => {
            kprintln!("sh: syntax error: one file after '>', at the end of the line");
            return None;
        }
    };
    let words: Vec<&str> = toks[..pos]
        .iter()
        .filter_map(|t| match t {
            Token::Word(w) => Some(w.as_str()),
            Token::Redirect(_) => None,
        })
        .collect();
    match words.split_first() {
        Some((&"echo", value)) => echo_to(file, &value.join(" "), append),
        Some((cmd, _)) => kprintln!("sh: {cmd}: output redirection is only supported for echo"),
        None => kprintln!("sh: syntax error: no command before '>'"),
    }
    None
}

/// `echo VALUE > FILE`: one write, as Linux's `echo` makes it (the
/// trailing newline included).
fn echo_to(file: &str, value: &str, append: bool) {
    let mut v = String::from(value);
    v.push('\n');
    if let Err(e) = tracing::with_control(|c| c.write(file, &v, append)) {
        write_error(file, &e);
    }
}

/// How a failed write is reported: bash's `echo: write error: <strerror>`,
/// then the file and the detail naming the value.
fn write_error(file: &str, e: &ControlError) {
    kprintln!(
        "echo: write error: {}: {file}: {e}",
        e.errno().description()
    );
}

/// Runs a command without redirection.
fn command(words: &[&str], boot_ok: bool) -> Option<bool> {
    let (&cmd, args) = words.split_first()?;
    match cmd {
        "echo" => kprintln!("{}", args.join(" ")),
        "cat" => {
            if args.is_empty() {
                kprintln!("cat: which file? ('ls' lists them)");
            }
            for f in args {
                cat(file_name(f));
            }
        }
        "ls" => {
            let files = tracing::with_control(|c| c.files());
            for f in files {
                kprintln!("{f}");
            }
        }
        "run" => match args {
            [w] => run_workload(w),
            _ => kprintln!("run: which workload? ({})", WORKLOADS.join(" ")),
        },
        "help" => help(),
        "exit" => {
            return match args {
                [] | ["0"] => Some(boot_ok),
                [s] if s.bytes().all(|b| b.is_ascii_digit()) => Some(false),
                _ => {
                    kprintln!("exit: {}: numeric argument required", args.join(" "));
                    None
                }
            };
        }
        _ => kprintln!("sh: {cmd}: command not found ('help' lists the commands)"),
    }
    None
}

/// `cat FILE`: the file rendered first, then printed without any lock held.
fn cat(file: &str) {
    let mut out = String::new();
    match tracing::with_control(|c| c.read(file, &mut out)) {
        Ok(()) => console::write_bytes(out.as_bytes()),
        Err(e) => kprintln!("cat: {file}: {}", e.errno().description()),
    }
}

/// `run NAME`: one of [`WORKLOADS`], with its result.
fn run_workload(name: &str) {
    match name {
        "demo" => {
            let (outer, fib) = tracing::workload();
            kprintln!("demo: outer={outer} fib={fib}");
        }
        "fib" => {
            let r = crate::demo::demo_fib(black_box(12));
            kprintln!("fib: demo_fib(12)={r}");
        }
        "deep" => {
            let r = crate::graph_tests::graph_deep(black_box(20));
            kprintln!("deep: graph_deep(20)={r}");
        }
        "region" => {
            let r = tracing::region_workload();
            kprintln!("region: sum_squares(3)={r}");
        }
        _ => kprintln!(
            "run: unknown workload '{name}' (available: {})",
            WORKLOADS.join(" ")
        ),
    }
}

fn help() {
    kprintln!("commands:");
    kprintln!("  echo VALUE > FILE   write VALUE to a tracefs file (>> appends)");
    kprintln!("  echo VALUE          print VALUE");
    kprintln!("  cat FILE...         print files");
    kprintln!("  ls                  list the files");
    kprintln!("  run WORKLOAD        run {}", WORKLOADS.join(", "));
    kprintln!("  help                this text");
    kprintln!("  exit [STATUS]       leave QEMU (0, the default: success; otherwise failure)");
}
