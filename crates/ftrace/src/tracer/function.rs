//! The function tracer: one event per traced call, Linux's `function`
//! tracer.
//!
//! There is one instance per kernel, like Linux's: [`init`] creates it,
//! [`ops`] is the callback object to register (with filters) on the engine,
//! [`write_trace`] prints what was recorded in Linux's format.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, Ordering};

use super::buffer::{Event, EventBuffer};
use super::output::{write_function_event, write_function_header};
use crate::ops::{Ops, OpsFlags};
use crate::platform::Platform;
use crate::regs::FtraceRegs;
use crate::symbols::Symbols;

struct FunctionTracer {
    platform: &'static dyn Platform,
    buffer: EventBuffer,
    recording: AtomicBool,
}

static TRACER: spin::Once<FunctionTracer> = spin::Once::new();

/// The function tracer's callback object. Register it with
/// [`crate::Ftrace::register`] after setting its filters; its callback
/// records nothing until [`init`] has run and while [`set_recording`] is off.
pub static FUNCTION_OPS: Ops = Ops::new(function_trace_call, OpsFlags::empty());

/// The callback object of the function tracer (see [`FUNCTION_OPS`]).
pub fn ops() -> &'static Ops {
    &FUNCTION_OPS
}

/// Creates the tracer's buffers: `per_cpu` events for each of the platform's
/// CPUs. Later calls keep the first instance. Recording starts on.
pub fn init(platform: &'static dyn Platform, per_cpu: usize) {
    TRACER.call_once(|| FunctionTracer {
        platform,
        buffer: EventBuffer::new(platform.nr_cpus(), per_cpu),
        recording: AtomicBool::new(true),
    });
}

/// Turns recording on or off without touching any site (Linux's
/// `tracing_on`): with recording off the callback returns at once, which is
/// how the dispatch cost alone is measured.
pub fn set_recording(on: bool) {
    if let Some(t) = TRACER.get() {
        t.recording.store(on, Ordering::Release);
    }
}

/// The callback: records `(ip, parent_ip, timestamp, cpu, context)`.
/// Lock-free and allocation-free. It takes no recursion guard of its own:
/// every path to a callback (list dispatcher or per-callback trampoline)
/// already holds the engine's, so traced code it calls (the platform's
/// clock, say) is refused there.
pub fn function_trace_call(ip: usize, parent_ip: usize, _ops: &Ops, _regs: &mut FtraceRegs) {
    let Some(t) = TRACER.get() else { return };
    if !t.recording.load(Ordering::Relaxed) {
        return;
    }
    let p = t.platform;
    let ev = Event {
        ip,
        parent_ip,
        ts_ns: p.clock_ns(),
        cpu: p.cpu_id() as u32,
        context: p.context(),
    };
    t.buffer.record(&ev);
}

/// Events lost to a full buffer.
pub fn lost() -> usize {
    TRACER.get().map_or(0, |t| t.buffer.lost())
}

/// Events written since the last [`reset`] (recorded or lost), without
/// copying them out as [`events`] does.
pub fn written() -> usize {
    TRACER.get().map_or(0, |t| t.buffer.written())
}

/// `(written, in buffer, lost)` of CPU `cpu` since the last [`reset`].
pub fn cpu_counts(cpu: usize) -> (usize, usize, usize) {
    TRACER.get().map_or((0, 0, 0), |t| t.buffer.cpu_counts(cpu))
}

/// Every recorded event in timestamp order.
pub fn events() -> alloc::vec::Vec<Event> {
    TRACER.get().map(|t| t.buffer.events()).unwrap_or_default()
}

/// Empties the buffers (call with recording off or the ops unregistered).
pub fn reset() {
    if let Some(t) = TRACER.get() {
        t.buffer.reset();
    }
}

/// Prints the trace in Linux's format: header, then one line per event.
pub fn write_trace(w: &mut dyn Write, symbols: &Symbols) -> fmt::Result {
    let Some(t) = TRACER.get() else { return Ok(()) };
    let events = t.buffer.events();
    write_function_header(w, events.len(), t.buffer.written(), t.buffer.nr_cpus())?;
    for e in &events {
        write_function_event(w, e, symbols)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::{MockArch, MockPlatform, SITE_STRIDE, call_site};
    use crate::update::Ftrace;
    use alloc::format;
    use alloc::string::String;
    use alloc::vec::Vec;
    use ftrace_abi::symtab::{SymbolTable, encode};

    /// The only test touching the global tracer: filter, record through the
    /// mock trampolines, print exactly, unregister.
    #[test]
    fn traces_filtered_calls_in_linux_format() {
        let (p, sites) = MockPlatform::with_sites(4);
        let names: Vec<String> = (0..4).map(|i| format!("kernel::demo::f{i}")).collect();
        let syms: Vec<(u64, u32, &str)> = sites
            .iter()
            .zip(&names)
            .map(|(&s, n)| (s as u64, SITE_STRIDE as u32, n.as_str()))
            .collect();
        let table = SymbolTable::parse(alloc::boxed::Box::leak(
            encode(&syms, false).into_boxed_slice(),
        ))
        .unwrap();
        let mut ft = Ftrace::new(MockArch::new(), p, sites.iter().copied(), Some(table)).unwrap();
        assert_eq!(ft.init().failed.len(), 0);

        init(p, 8);
        ft.set_filter(ops(), "f1,f3").unwrap();
        ft.register(ops()).unwrap();
        let mut regs = FtraceRegs::zeroed();
        for (i, &s) in sites.iter().enumerate() {
            let parent = sites[(i + 1) % 4] + 7;
            let called = call_site(&ft, s, parent, &mut regs);
            assert_eq!(called, i == 1 || i == 3, "site {i}");
        }
        let mut out = String::new();
        write_trace(&mut out, ft.symbols()).unwrap();
        let lines: Vec<&str> = out
            .lines()
            .skip(2)
            .take(1)
            .chain(out.lines().skip(12))
            .collect();
        assert_eq!(
            lines,
            [
                "# entries-in-buffer/entries-written: 2/2   #P:1",
                "          <idle>-0       [000] .....     0.000000: kernel::demo::f1 <-kernel::demo::f2",
                "          <idle>-0       [000] .....     0.000000: kernel::demo::f3 <-kernel::demo::f0",
            ]
        );
        assert_eq!(lost(), 0);
        ft.unregister(ops()).unwrap();
        assert_eq!(ft.check_all_nops(), 0);
    }
}
