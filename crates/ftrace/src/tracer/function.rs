//! The function tracer: one event per traced call, Linux's `function`
//! tracer.
//!
//! There is one instance per kernel, like Linux's: [`init`] creates it,
//! [`ops`] is the callback object to register (with filters) on the engine,
//! [`write_trace`] prints what was recorded in Linux's format. Events go to
//! a per-CPU ring buffer ([`super::ring`]) of 16-byte records.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicPtr, Ordering};

use super::buffer::Event;
use super::output::{TraceOptions, write_function_trace_as};
use super::ring::{CpuStats, RingBuffer};
use crate::ops::{Ops, OpsFlags};
use crate::platform::{Context, HotPlatform, Platform};
use crate::regs::FtraceRegs;
use crate::symbols::Symbols;

/// Bytes of the ring buffer a function event takes.
pub const EVENT_BYTES: usize = 16;

struct FunctionTracer {
    platform: HotPlatform,
    ring: RingBuffer,
}

static TRACER: spin::Once<FunctionTracer> = spin::Once::new();
/// The tracer while recording is on ([`set_recording`]), null while it is
/// off and until [`init`]: the callback's early exit and the way to the
/// tracer are one load and one test, with no `Once` state to check.
static RECORDING: AtomicPtr<FunctionTracer> = AtomicPtr::new(core::ptr::null_mut());

/// What [`RECORDING`] holds while recording: the initialised tracer.
fn recording_ptr(t: &'static FunctionTracer) -> *mut FunctionTracer {
    t as *const FunctionTracer as *mut FunctionTracer
}

/// The function tracer's callback object. Register it with
/// [`crate::Ftrace::register`] after setting its filters; its callback
/// records nothing until [`init`] has run and while [`set_recording`] is off.
/// It takes the recursion guard itself ([`OpsFlags::RECURSION`]), only
/// when it records: with recording off, its own trampoline's call and its
/// one test are the whole cost.
pub static FUNCTION_OPS: Ops = Ops::new(function_trace_call, OpsFlags::RECURSION);

/// The callback object of the function tracer (see [`FUNCTION_OPS`]).
pub fn ops() -> &'static Ops {
    &FUNCTION_OPS
}

/// Creates the tracer's buffers: room for about `per_cpu` events for each
/// of the platform's CPUs, addresses stored as offsets from `text_base`
/// (the lowest traced address, say). Later calls keep the first instance.
/// Recording starts on, in overwrite mode.
pub fn init(platform: &'static dyn Platform, per_cpu: usize, text_base: usize) {
    init_bytes(platform, per_cpu * EVENT_BYTES, text_base);
}

/// Like [`init`] with the per-CPU buffer size in bytes (Linux's
/// `buffer_size_kb`, rounded up to a power of two).
pub fn init_bytes(platform: &'static dyn Platform, bytes_per_cpu: usize, text_base: usize) {
    let mut created = false;
    let t = TRACER.call_once(|| {
        created = true;
        FunctionTracer {
            platform: HotPlatform::new(platform),
            ring: RingBuffer::new(platform.nr_cpus(), bytes_per_cpu, text_base),
        }
    });
    if created {
        RECORDING.store(recording_ptr(t), Ordering::Release);
    }
}

/// Turns recording on or off without touching any site (Linux's
/// `tracing_on`): with recording off the callback returns at once, which is
/// how the dispatch cost alone is measured.
pub fn set_recording(on: bool) {
    if let Some(t) = TRACER.get() {
        let p = if on {
            recording_ptr(t)
        } else {
            core::ptr::null_mut()
        };
        RECORDING.store(p, Ordering::Release);
    }
}

/// Whether recording is on ([`set_recording`]); false before [`init`].
pub fn is_recording() -> bool {
    !RECORDING.load(Ordering::Relaxed).is_null()
}

/// Overwrite the oldest events when a CPU's buffer is full (the default),
/// or drop new ones (`trace_options=nooverwrite`).
pub fn set_overwrite(on: bool) {
    if let Some(t) = TRACER.get() {
        t.ring.set_overwrite(on);
    }
}

/// The callback: records `(ip, parent_ip, timestamp, cpu, context)`.
/// Lock-free and allocation-free. With recording off it returns after
/// one load and one test, without the recursion guard (its ops has
/// [`OpsFlags::RECURSION`]); the recording path takes the guard before
/// anything else ([`Ops::guard`]), so traced code it calls (the
/// platform's clock, say) is refused there, and it records nothing once
/// the ops is unregistered.
pub extern "C" fn function_trace_call(
    ip: usize,
    parent_ip: usize,
    ops: &Ops,
    regs: &mut FtraceRegs,
) {
    let t = RECORDING.load(Ordering::Relaxed);
    if t.is_null() {
        return;
    }
    record(ip, parent_ip, ops, regs, t);
}

/// The recording half of [`function_trace_call`], kept out of line so that
/// the early return above pays no register saves; its arguments are where
/// the callback received them, so the callback moves nothing before its
/// test. Called by its own trampoline (the common case), it takes the
/// recursion guard; called by a dispatcher that holds it (the list), it
/// records under that one.
#[inline(never)]
fn record(ip: usize, parent_ip: usize, ops: &Ops, regs: &FtraceRegs, t: *mut FunctionTracer) {
    // Pairs with the release store that published the tracer; only the
    // recording path pays for it (ppc64: one lwsync).
    core::sync::atomic::fence(Ordering::Acquire);
    // SAFETY: RECORDING held null or the tracer in `TRACER`, which lives
    // for the rest of the program once initialised.
    let t = unsafe { &*t };
    if regs.is_guarded() {
        write(t, ip, parent_ip, regs.cpu(), regs.context());
        return;
    }
    let Some(guard) = ops.own_guard() else {
        return;
    };
    write(t, ip, parent_ip, guard.cpu(), guard.context());
    drop(guard);
}

/// One event, under the recursion guard.
#[inline(always)]
fn write(t: &FunctionTracer, ip: usize, parent_ip: usize, cpu: usize, context: Context) {
    let p = &t.platform;
    // The interrupt state first: reading the clock may advance it (the
    // `counter` clock), so it is read only when this path will record.
    if let Some(irqs_off) = p.inline_irqs_disabled()
        && let Some(ts) = super::clock::now_inline(p)
    {
        t.ring.function(cpu, ts, context, irqs_off, ip, parent_ip);
        return;
    }
    record_calling(t, ip, parent_ip, cpu, context)
}

/// [`record`] asking the platform for the time or the interrupt state.
#[inline(never)]
fn record_calling(t: &FunctionTracer, ip: usize, parent_ip: usize, cpu: usize, context: Context) {
    let p = &t.platform;
    t.ring.function(
        cpu,
        super::clock::now(p),
        context,
        p.irqs_disabled(),
        ip,
        parent_ip,
    );
}

/// Events lost (overwritten or dropped) over all CPUs.
pub fn lost() -> usize {
    TRACER.get().map_or(0, |t| {
        let s = t.ring.totals();
        (s.overwritten + s.dropped) as usize
    })
}

/// Events written since the last [`reset`] (kept or lost), over all CPUs.
pub fn written() -> usize {
    TRACER.get().map_or(0, |t| t.ring.totals().written as usize)
}

/// `(written, in buffer, lost)` of CPU `cpu` since the last [`reset`]:
/// written = in buffer + lost, exactly.
pub fn cpu_counts(cpu: usize) -> (usize, usize, usize) {
    TRACER.get().map_or((0, 0, 0), |t| {
        let s = t.ring.stats(cpu);
        (
            s.written as usize,
            s.in_buffer as usize,
            (s.overwritten + s.dropped) as usize,
        )
    })
}

/// Counters of CPU `cpu`'s buffer.
pub fn cpu_stats(cpu: usize) -> CpuStats {
    TRACER.get().map(|t| t.ring.stats(cpu)).unwrap_or_default()
}

/// Number of per-CPU buffers (0 before [`init`]).
pub fn nr_cpus() -> usize {
    TRACER.get().map_or(0, |t| t.ring.nr_cpus())
}

/// Every event in the buffers, in timestamp order.
pub fn events() -> alloc::vec::Vec<Event> {
    TRACER.get().map_or_else(alloc::vec::Vec::new, |t| {
        t.ring
            .events()
            .iter()
            .filter_map(Event::from_ring)
            .collect()
    })
}

/// The tracer's ring buffer (for dumps), once [`init`] ran.
pub fn ring() -> Option<&'static super::ring::RingBuffer> {
    TRACER.get().map(|t| &t.ring)
}

/// Empties the buffers (call with recording off or the ops unregistered).
pub fn reset() {
    if let Some(t) = TRACER.get() {
        t.ring.reset();
    }
}

/// Prints the trace in Linux's format: header, then one line per event,
/// with a `CPU:N [LOST K EVENTS]` line before the first event of each CPU
/// that lost some (Linux prints it where the stream has a gap).
pub fn write_trace(w: &mut dyn Write, symbols: &Symbols) -> fmt::Result {
    write_trace_opts(w, symbols, &TraceOptions::default())
}

/// [`write_trace`] with Linux's output options.
pub fn write_trace_opts(w: &mut dyn Write, symbols: &Symbols, opts: &TraceOptions) -> fmt::Result {
    if TRACER.get().is_none() {
        return Ok(());
    }
    write_trace_as(w, symbols, "function", opts)
}

/// [`write_trace_opts`] under another tracer's name in the header (Linux's
/// `nop` tracer prints the same columns); before [`init`], the header of
/// an empty buffer.
pub fn write_trace_as(
    w: &mut dyn Write,
    symbols: &Symbols,
    tracer: &str,
    opts: &TraceOptions,
) -> fmt::Result {
    let stats: alloc::vec::Vec<CpuStats> = TRACER.get().map_or_else(
        || alloc::vec![CpuStats::default()],
        |t| (0..t.ring.nr_cpus()).map(|c| t.ring.stats(c)).collect(),
    );
    write_function_trace_as(w, tracer, &events(), &stats, symbols, opts)
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
    /// mock trampolines, print exactly, then overflow the buffer and check
    /// the counts and the lost-events line.
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

        // 64 bytes: room for 3 events (an extended timestamp comes first).
        init_bytes(p, 64, sites[0]);
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
        // Ten more: the oldest go, counted exactly.
        for _ in 0..5 {
            call_site(&ft, sites[1], sites[2] + 7, &mut regs);
            call_site(&ft, sites[3], sites[0] + 7, &mut regs);
        }
        let s = cpu_stats(0);
        assert_eq!(s.written, 12);
        assert_eq!(s.written, s.in_buffer + s.overwritten + s.dropped);
        assert_eq!(s.dropped, 0);
        let mut out = String::new();
        write_trace(&mut out, ft.symbols()).unwrap();
        assert!(out.contains(&format!(
            "# entries-in-buffer/entries-written: {}/12   #P:1\n",
            s.in_buffer
        )));
        assert!(out.contains(&format!("\nCPU:0 [LOST {} EVENTS]\n", s.overwritten)));
        ft.unregister(ops()).unwrap();
        assert_eq!(ft.check_all_nops(), 0);
    }
}
