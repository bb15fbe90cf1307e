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
use crate::recursion::RecursionState;
use crate::regs::FtraceRegs;
use crate::symbols::Symbols;

struct FunctionTracer {
    platform: &'static dyn Platform,
    buffer: EventBuffer,
    recording: AtomicBool,
    recursion: RecursionState,
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
        recursion: RecursionState::new(),
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
/// Lock-free and allocation-free; protected against recursion per CPU and
/// context (the platform's clock may itself be traced code).
pub fn function_trace_call(ip: usize, parent_ip: usize, _ops: &Ops, _regs: &mut FtraceRegs) {
    let Some(t) = TRACER.get() else { return };
    if !t.recording.load(Ordering::Relaxed) {
        return;
    }
    let Some(_guard) = t.recursion.try_enter(t.platform) else { return };
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

/// Recursions the tracer's guard refused (reported at the end of a run).
pub fn recursions() -> usize {
    TRACER.get().map_or(0, |t| t.recursion.recursions())
}

/// Events lost to a full buffer.
pub fn lost() -> usize {
    TRACER.get().map_or(0, |t| t.buffer.lost())
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
