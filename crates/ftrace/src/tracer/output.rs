//! Linux's trace output formats, so existing habits and scripts carry over.

use core::fmt::{self, Write};

use super::buffer::Event;
use super::ring::CpuStats;
use crate::platform::Context;
use crate::symbols::Symbols;

/// Linux's `trace_options` that change the function tracer's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceOptions {
    /// `irq-info`: the flags column (default on).
    pub irq_info: bool,
    /// `sym-offset`: `func+0x1c/0x40` instead of `func`.
    pub sym_offset: bool,
    /// `sym-addr`: the address after each name, `func <0000000000101f00>`.
    pub sym_addr: bool,
    /// Timestamps are raw counts (`trace_clock=counter`), printed as
    /// integers as Linux does for clocks that do not count nanoseconds.
    pub raw_ts: bool,
    /// Hex digits of a `sym-addr` address: twice the traced kernel's word
    /// size (default: this build's), so that a host tool rebuilding a
    /// 32-bit kernel's text prints what that kernel printed.
    pub addr_digits: usize,
}

impl Default for TraceOptions {
    fn default() -> Self {
        TraceOptions {
            irq_info: true,
            sym_offset: false,
            sym_addr: false,
            raw_ts: false,
            addr_digits: core::mem::size_of::<usize>() * 2,
        }
    }
}

impl TraceOptions {
    /// Sets the option of Linux's name (`irq-info`, `sym-offset`,
    /// `sym-addr`); false for another name.
    pub fn set(&mut self, name: &str, on: bool) -> bool {
        let f = match name {
            "irq-info" => &mut self.irq_info,
            "sym-offset" => &mut self.sym_offset,
            "sym-addr" => &mut self.sym_addr,
            _ => return false,
        };
        *f = on;
        true
    }

    /// The options as bits (irq-info, sym-offset, sym-addr, raw timestamps:
    /// bits 0-3), as the binary dump carries them.
    pub fn bits(&self) -> u32 {
        u32::from(self.irq_info)
            | u32::from(self.sym_offset) << 1
            | u32::from(self.sym_addr) << 2
            | u32::from(self.raw_ts) << 3
    }

    /// The inverse of [`bits`](Self::bits) (`addr_digits`: the default).
    pub fn from_bits(b: u32) -> Self {
        TraceOptions {
            irq_info: b & 1 != 0,
            sym_offset: b & 2 != 0,
            sym_addr: b & 4 != 0,
            raw_ts: b & 8 != 0,
            ..TraceOptions::default()
        }
    }
}

/// A symbol as the options want it: `name`, `name+0xoff/0xsize`, and
/// ` <address>` with sym-addr.
struct OptSym<'a> {
    symbols: &'a Symbols,
    addr: usize,
    opts: &'a TraceOptions,
}

impl fmt::Display for OptSym<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sym = self
            .symbols
            .table()
            .and_then(|t| t.lookup(self.addr as u64));
        match sym {
            Some((s, off)) if self.opts.sym_offset => {
                write!(f, "{}+{off:#x}/{:#x}", s.name, s.size)?
            }
            Some((s, _)) => f.write_str(s.name)?,
            None => write!(f, "{:#x}", self.addr)?,
        }
        if self.opts.sym_addr {
            let w = self.opts.addr_digits;
            write!(f, " <{:0w$x}>", self.addr)?;
        }
        Ok(())
    }
}

/// The whole function-tracer text: header, then every event, with a
/// `CPU:N [LOST K EVENTS]` line before the first event of a CPU that lost
/// some (`stats[cpu]`). Shared by the kernel and the host report tool, so
/// both print the same bytes.
pub fn write_function_trace(
    w: &mut dyn Write,
    events: &[Event],
    stats: &[CpuStats],
    symbols: &Symbols,
    opts: &TraceOptions,
) -> fmt::Result {
    write_function_trace_as(w, "function", events, stats, symbols, opts)
}

/// [`write_function_trace`] under another tracer's name in the header
/// (Linux's `nop` tracer prints the same columns).
pub fn write_function_trace_as(
    w: &mut dyn Write,
    tracer: &str,
    events: &[Event],
    stats: &[CpuStats],
    symbols: &Symbols,
    opts: &TraceOptions,
) -> fmt::Result {
    let written: u64 = stats.iter().map(|s| s.written).sum();
    write_trace_header_opts(
        w,
        tracer,
        events.len(),
        written as usize,
        stats.len().max(1),
        opts,
    )?;
    let mut announced = alloc::vec![false; stats.len()];
    for e in events {
        let c = e.cpu as usize;
        if let Some(done) = announced.get_mut(c)
            && !*done
        {
            *done = true;
            let lost = stats[c].overwritten + stats[c].dropped;
            if lost > 0 {
                writeln!(w, "CPU:{c} [LOST {lost} EVENTS]")?;
            }
        }
        write_function_event_opts(w, e, symbols, opts)?;
    }
    Ok(())
}

/// [`write_function_header`] with options (`irq-info` off drops the flags
/// legend and column).
pub fn write_function_header_opts(
    w: &mut dyn Write,
    in_buffer: usize,
    written: usize,
    nr_cpus: usize,
    opts: &TraceOptions,
) -> fmt::Result {
    write_trace_header_opts(w, "function", in_buffer, written, nr_cpus, opts)
}

/// [`write_function_header_opts`] under `tracer`'s name.
pub fn write_trace_header_opts(
    w: &mut dyn Write,
    tracer: &str,
    in_buffer: usize,
    written: usize,
    nr_cpus: usize,
    opts: &TraceOptions,
) -> fmt::Result {
    if opts.irq_info {
        return write_trace_header(w, tracer, in_buffer, written, nr_cpus);
    }
    writeln!(w, "# tracer: {tracer}")?;
    writeln!(w, "#")?;
    writeln!(
        w,
        "# entries-in-buffer/entries-written: {in_buffer}/{written}   #P:{nr_cpus}"
    )?;
    writeln!(w, "#")?;
    writeln!(w, "#           TASK-PID     CPU#     TIMESTAMP  FUNCTION")?;
    writeln!(w, "#              | |         |         |         |")
}

/// [`write_function_event`] with options.
pub fn write_function_event_opts(
    w: &mut dyn Write,
    e: &Event,
    symbols: &Symbols,
    opts: &TraceOptions,
) -> fmt::Result {
    write!(w, "{:>16}-{:<7} [{:03}] ", "<idle>", 0, e.cpu)?;
    if opts.irq_info {
        write!(
            w,
            "{}.{}..",
            if e.irqs_off { 'd' } else { '.' },
            context_char(e.context)
        )?;
    }
    if opts.raw_ts {
        write!(w, " {:12}: ", e.ts_ns)?;
    } else {
        write!(
            w,
            " {:5}.{:06}: ",
            e.ts_ns / 1_000_000_000,
            (e.ts_ns % 1_000_000_000) / 1_000
        )?;
    }
    writeln!(
        w,
        "{} <-{}",
        OptSym {
            symbols,
            addr: e.ip,
            opts
        },
        OptSym {
            symbols,
            addr: e.parent_ip,
            opts
        }
    )
}

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
        "{:>16}-{:<7} [{:03}] {}.{}.. {:5}.{:06}: {} <-{}",
        "<idle>",
        0,
        e.cpu,
        if e.irqs_off { 'd' } else { '.' },
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
            irqs_off: false,
        };
        write_function_event(&mut s, &e, &syms).unwrap();
        let e = Event {
            ip: 0x9000,
            parent_ip: 0x2000,
            ts_ns: 12_000_001_000,
            cpu: 1,
            context: Context::Irq,
            irqs_off: true,
        };
        write_function_event(&mut s, &e, &syms).unwrap();
        assert_eq!(
            s,
            "          <idle>-0       [000] .....     1.759519: kernel::demo::demo_leaf <-kernel::demo::demo_inner\n\
             \x20         <idle>-0       [001] d.h..    12.000001: 0x9000 <-kernel::demo::demo_inner\n"
        );
    }

    #[test]
    fn options_change_columns_like_linux() {
        let bytes = alloc::boxed::Box::leak(
            encode(
                &[(0x1000, 0x40, "demo_leaf"), (0x2000, 0x80, "demo_inner")],
                false,
            )
            .into_boxed_slice(),
        );
        let syms = Symbols::new(Some(SymbolTable::parse(bytes).unwrap()));
        let e = Event {
            ip: 0x1000,
            parent_ip: 0x201d,
            ts_ns: 1_759_519_999,
            cpu: 0,
            context: Context::Normal,
            irqs_off: false,
        };
        let mut s = String::new();
        let opts = TraceOptions {
            sym_offset: true,
            sym_addr: true,
            ..TraceOptions::default()
        };
        write_function_event_opts(&mut s, &e, &syms, &opts).unwrap();
        assert_eq!(
            s,
            "          <idle>-0       [000] .....     1.759519: demo_leaf+0x0/0x40 <0000000000001000> <-demo_inner+0x1d/0x80 <000000000000201d>\n"
        );
        let mut s = String::new();
        let opts = TraceOptions {
            irq_info: false,
            raw_ts: true,
            ..TraceOptions::default()
        };
        write_function_event_opts(&mut s, &e, &syms, &opts).unwrap();
        assert_eq!(
            s,
            "          <idle>-0       [000]    1759519999: demo_leaf <-demo_inner\n"
        );
        // A 32-bit kernel's addresses, rebuilt on a 64-bit host.
        let mut s = String::new();
        let opts = TraceOptions {
            sym_addr: true,
            addr_digits: 8,
            ..TraceOptions::default()
        };
        write_function_event_opts(&mut s, &e, &syms, &opts).unwrap();
        assert_eq!(
            s,
            "          <idle>-0       [000] .....     1.759519: demo_leaf <00001000> <-demo_inner <0000201d>\n"
        );
        let mut plain = String::new();
        write_function_event(&mut plain, &e, &syms).unwrap();
        let mut via = String::new();
        write_function_event_opts(&mut via, &e, &syms, &TraceOptions::default()).unwrap();
        assert_eq!(plain, via);
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
