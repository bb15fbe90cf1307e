//! The console: one lock-protected writer over the arch's raw output, the
//! `kprintln!` macro, and the `log` backend so all code can use `log::info!`.

use core::fmt::{self, Write};
use log::{Level, LevelFilter, Log, Metadata, Record};
use spin::Mutex;

struct Console;

impl Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        crate::arch::console_write(s.as_bytes());
        Ok(())
    }
}

static CONSOLE: Mutex<Console> = Mutex::new(Console);

/// Prints formatted text (used by [`kprintln!`]).
pub fn print(args: fmt::Arguments<'_>) {
    let _ = CONSOLE.lock().write_fmt(args);
}

/// Writes raw bytes, e.g. the command line exactly as received.
pub fn write_bytes(bytes: &[u8]) {
    let _guard = CONSOLE.lock();
    crate::arch::console_write(bytes);
}

/// Prints a line to the console.
#[macro_export]
macro_rules! kprintln {
    ($($arg:tt)*) => { $crate::console::print(format_args!("{}\n", format_args!($($arg)*))) };
}

struct Logger;

impl Log for Logger {
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        m.level() <= Level::Info
    }

    fn log(&self, r: &Record<'_>) {
        if !self.enabled(r.metadata()) {
            return;
        }
        match r.level() {
            Level::Error => print(format_args!("error: {}\n", r.args())),
            Level::Warn => print(format_args!("warning: {}\n", r.args())),
            _ => print(format_args!("{}\n", r.args())),
        }
    }

    fn flush(&self) {}
}

static LOGGER: Logger = Logger;

/// Installs the `log` backend.
pub fn init() {
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(LevelFilter::Info);
}

/// The console without its lock, for the panic path only: the panic may
/// have happened while the lock was held.
pub struct Raw;

impl Write for Raw {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        crate::arch::console_write(s.as_bytes());
        Ok(())
    }
}

/// Prints a panic without taking the console lock (through [`Raw`]).
pub fn panic_print(info: &core::panic::PanicInfo<'_>) {
    let _ = match info.location() {
        Some(l) => writeln!(
            Raw,
            "panic: {} at {}:{}",
            info.message(),
            l.file(),
            l.line()
        ),
        None => writeln!(Raw, "panic: {}", info.message()),
    };
}
