//! Linux's trace output formats, so existing habits and scripts carry over.

use core::fmt::{self, Write};

use super::buffer::Event;
use crate::platform::Context;
use crate::symbols::Symbols;

/// The function tracer's header, as Linux prints it in `trace`.
pub fn write_function_header(
    w: &mut dyn Write,
    in_buffer: usize,
    written: usize,
    nr_cpus: usize,
) -> fmt::Result {
    write_trace_header(w, "function", in_buffer, written, nr_cpus)
}

/// The header of the function-tracer columns under `tracer`'s name (Linux
/// prints the same for `nop`).
pub fn write_trace_header(
    w: &mut dyn Write,
    tracer: &str,
    in_buffer: usize,
    written: usize,
    nr_cpus: usize,
) -> fmt::Result {
    writeln!(w, "# tracer: {tracer}")?;
    writeln!(w, "#")?;
    writeln!(
        w,
        "# entries-in-buffer/entries-written: {in_buffer}/{written}   #P:{nr_cpus}"
    )?;
    writeln!(w, "#")?;
    writeln!(
        w,
        "#                                _-----=> irqs-off/BH-disabled"
    )?;
    writeln!(w, "#                               / _----=> need-resched")?;
    writeln!(
        w,
        "#                              | / _---=> hardirq/softirq"
    )?;
    writeln!(w, "#                              || / _--=> preempt-depth")?;
    writeln!(
        w,
        "#                              ||| / _-=> migrate-disable"
    )?;
    writeln!(w, "#                              |||| /     delay")?;
    writeln!(
        w,
        "#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION"
    )?;
    writeln!(w, "#              | |         |   |||||     |         |")
}

/// A function name as Linux's `%ps` prints it: the symbol without offset, or
/// the raw address when no symbol contains it.
pub struct FuncName<'a> {
    /// Where names come from.
    pub symbols: &'a Symbols,
    /// The address to name.
    pub addr: usize,
}

impl fmt::Display for FuncName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.symbols.resolve(self.addr) {
            Some((name, _)) => f.write_str(name),
            None => write!(f, "{:#x}", self.addr),
        }
    }
}

/// The hardirq/softirq column for a context.
fn context_char(c: Context) -> char {
    match c {
        Context::Normal => '.',
        Context::Softirq => 's',
        Context::Irq => 'h',
        Context::Nmi => 'z',
    }
}

/// One function-tracer line:
/// `          <idle>-0       [000] .....     1.234567: f <-parent`.
///
/// The task column is `<idle>-0`: the crate does not know the embedding
/// kernel's tasks (a later option may ask the platform for them).
pub fn write_function_event(w: &mut dyn Write, e: &Event, symbols: &Symbols) -> fmt::Result {
    let secs = e.ts_ns / 1_000_000_000;
    let usecs = (e.ts_ns % 1_000_000_000) / 1_000;
    writeln!(
        w,
        "{:>16}-{:<7} [{:03}] ..{}.. {:5}.{:06}: {} <-{}",
        "<idle>",
        0,
        e.cpu,
        context_char(e.context),
        secs,
        usecs,
        FuncName {
            symbols,
            addr: e.ip
        },
        FuncName {
            symbols,
            addr: e.parent_ip
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;
    use ftrace_abi::symtab::{SymbolTable, encode};

    #[test]
    fn lines_match_linux_columns_exactly() {
        let bytes = alloc::boxed::Box::leak(
            encode(
                &[
                    (0x1000, 0x10, "kernel::demo::demo_leaf"),
                    (0x2000, 0x40, "kernel::demo::demo_inner"),
                ],
                false,
            )
            .into_boxed_slice(),
        );
        let syms = Symbols::new(Some(SymbolTable::parse(bytes).unwrap()));
        let mut s = String::new();
        let e = Event {
            ip: 0x1000,
            parent_ip: 0x2013,
            ts_ns: 1_759_519_999,
            cpu: 0,
            context: Context::Normal,
        };
        write_function_event(&mut s, &e, &syms).unwrap();
        let e = Event {
            ip: 0x9000,
            parent_ip: 0x2000,
            ts_ns: 12_000_001_000,
            cpu: 1,
            context: Context::Irq,
        };
        write_function_event(&mut s, &e, &syms).unwrap();
        assert_eq!(
            s,
            "          <idle>-0       [000] .....     1.759519: kernel::demo::demo_leaf <-kernel::demo::demo_inner\n\
             \x20         <idle>-0       [001] ..h..    12.000001: 0x9000 <-kernel::demo::demo_inner\n"
        );
    }

    #[test]
    fn header_matches_linux() {
        let mut s = String::new();
        write_function_header(&mut s, 9, 9, 1).unwrap();
        let linux = "# tracer: function\n#\n# entries-in-buffer/entries-written: 9/9   #P:1\n#\n\
#                                _-----=> irqs-off/BH-disabled\n\
#                               / _----=> need-resched\n\
#                              | / _---=> hardirq/softirq\n\
#                              || / _--=> preempt-depth\n\
#                              ||| / _-=> migrate-disable\n\
#                              |||| /     delay\n\
#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION\n\
#              | |         |   |||||     |         |\n";
        assert_eq!(s, linux);
    }
}
