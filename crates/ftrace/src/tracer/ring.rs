//! A per-CPU, lockless ring buffer of compact events (Linux's
//! `ring_buffer`, simplified).
//!
//! # Writers
//!
//! Each CPU writes only its own buffer; interrupts may nest writers on the
//! same CPU. A writer *reserves* room (a compare-and-swap on the CPU's
//! `tail`, so a nested writer simply takes the room after it), writes its
//! words, then *commits*. Only the outermost writer of a nest publishes:
//! `commit` moves to `tail` when the nesting count drops back to zero, so a
//! reader never sees a reservation that is still being written. Nothing
//! allocates and nothing locks on this path.
//!
//! When the buffer is full, overwrite mode (the default, Linux's) drops the
//! oldest committed events to make room, and stop-when-full mode
//! (`nooverwrite`) drops the new event instead. Either way the per-CPU
//! counters stay exact: `written = in buffer + overwritten + dropped`.
//!
//! # Events
//!
//! Events are sequences of 32-bit words, never split across the end of the
//! buffer (a padding record fills the tail instead). The first word is a
//! header: type (4 bits), context (2 bits), interrupts-off (1 bit), and 25
//! bits of payload (a graph depth). The second word holds the low 32 bits
//! of the event's timestamp; an extended-timestamp record with the whole
//! 64 bits is written first whenever 2^31 ns or more have passed since the
//! CPU's previous event, and the reader rebuilds each timestamp as the value
//! closest to the previous one. Addresses are 32-bit offsets from the
//! kernel's text base. A function event is 16 bytes on every arch (Linux:
//! 28 on 64-bit), a graph entry 12, a graph return 20 (24 with a 64-bit
//! return value).
//!
//! # Readers
//!
//! Readers never block writers: they copy events between the buffer's
//! `head` and `commit`, and drop anything a writer overwrote meanwhile (by
//! checking `head` again after copying). Read while tracing is stopped,
//! the copy is exact.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering, fence};

use crate::platform::Context;

/// Event types (header bits 0-3).
mod ty {
    pub const PADDING: u32 = 0;
    pub const FUNCTION: u32 = 1;
    pub const GRAPH_ENTRY: u32 = 2;
    pub const GRAPH_RETURN: u32 = 3;
    pub const TIME_EXTEND: u32 = 4;
    /// A function event whose addresses do not fit 32-bit offsets.
    pub const FUNCTION_WIDE: u32 = 5;
}

const HDR_CTX_SHIFT: u32 = 4;
const HDR_IRQS_OFF: u32 = 1 << 6;
const HDR_PAYLOAD_SHIFT: u32 = 7;
/// Largest payload (graph depth) a header holds.
pub const MAX_PAYLOAD: u32 = (1 << (32 - HDR_PAYLOAD_SHIFT)) - 1;
/// Gap after which the writer records the whole timestamp again.
const EXTEND_AFTER: u64 = 1 << 31;
/// `last_ts` of a CPU that has written nothing since the last reset: far
/// from every timestamp, so that the first event takes the slow path and
/// records the whole timestamp.
const NO_EVENT: u64 = 1 << 63;

/// What one event says, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload {
    /// A function was entered (the function tracer).
    Function {
        /// The function's site.
        ip: usize,
        /// Its return address.
        parent_ip: usize,
    },
    /// A function was entered (function_graph).
    GraphEntry {
        /// The function's site.
        func: usize,
        /// Shadow-stack depth.
        depth: u32,
    },
    /// A function returned (function_graph).
    GraphReturn {
        /// The function's site.
        func: usize,
        /// Shadow-stack depth.
        depth: u32,
        /// Nanoseconds from entry to return (saturates at `u32::MAX`).
        duration: u32,
        /// The first return register.
        retval: usize,
    },
}

/// An event as read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingEvent {
    /// Timestamp in nanoseconds (the tracer's clock).
    pub ts: u64,
    /// CPU whose buffer held it.
    pub cpu: u32,
    /// Context it was written in.
    pub context: Context,
    /// Interrupts were disabled when it was written.
    pub irqs_off: bool,
    /// What happened.
    pub payload: Payload,
}

/// Per-CPU counters (exact when read with tracing stopped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuStats {
    /// Events offered to the buffer.
    pub written: u64,
    /// Events still in the buffer.
    pub in_buffer: u64,
    /// Events removed to make room (overwrite mode).
    pub overwritten: u64,
    /// Events refused because the buffer was full (stop-when-full mode, or
    /// room held by a writer still in progress).
    pub dropped: u64,
}

/// A position in a CPU's stream of words: counts every word ever reserved,
/// modulo 2^32 (the index in the buffer is `pos & mask`). 32 bits so that
/// a 32-bit CPU loads and swaps it with plain instructions (a 64-bit atomic
/// there is a `lock cmpxchg8b` loop); positions are compared by their
/// wrapping difference ([`before`]), exact while a buffer holds less than
/// 2^31 words (8 GiB), which [`RingBuffer::new`] guarantees.
type Pos = u32;

/// Largest buffer, in words, for which wrapping position differences
/// stay exact.
const MAX_WORDS: usize = 1 << 30;

/// A CPU's latest timestamp, read and written only by writers on that CPU.
/// On 64-bit CPUs one atomic word; on 32-bit ones two halves, because a
/// 64-bit atomic there is a `lock cmpxchg8b` loop. A nested writer may
/// see the halves torn (an interrupt between the two stores): the value is
/// then off by about 2^32 ns, its gap looks long, and it records an
/// extended timestamp it did not need: never a missing one. A torn read
/// before a reservation is harmless too: the reservation's compare-and-swap
/// fails when a nested writer came in between.
#[cfg(target_pointer_width = "64")]
struct LastTs(AtomicU64);

#[cfg(target_pointer_width = "64")]
impl LastTs {
    const fn new(v: u64) -> Self {
        LastTs(AtomicU64::new(v))
    }
    #[inline(always)]
    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
    #[inline(always)]
    fn set(&self, v: u64) {
        self.0.store(v, Ordering::Relaxed)
    }
}

#[cfg(not(target_pointer_width = "64"))]
struct LastTs {
    lo: AtomicU32,
    hi: AtomicU32,
}

#[cfg(not(target_pointer_width = "64"))]
impl LastTs {
    const fn new(v: u64) -> Self {
        LastTs {
            lo: AtomicU32::new(v as u32),
            hi: AtomicU32::new((v >> 32) as u32),
        }
    }
    #[inline(always)]
    fn get(&self) -> u64 {
        let lo = self.lo.load(Ordering::Relaxed);
        u64::from(lo) | (u64::from(self.hi.load(Ordering::Relaxed)) << 32)
    }
    #[inline(always)]
    fn set(&self, v: u64) {
        self.lo.store(v as u32, Ordering::Relaxed);
        self.hi.store((v >> 32) as u32, Ordering::Relaxed);
    }
}

/// True when position `a` comes strictly before `b` (wrapping order).
#[inline(always)]
fn before(a: Pos, b: Pos) -> bool {
    (b.wrapping_sub(a) as i32) > 0
}

/// One CPU's buffer, alone on its cache lines.
#[repr(align(128))]
struct CpuRing {
    words: Box<[AtomicU32]>,
    /// `words.len() - 1` (the length is a power of two).
    mask: Pos,
    /// Oldest word still in the buffer (an event boundary).
    head: AtomicU32,
    /// Timestamp reference at `head` (for the first event's high bits).
    head_ts: AtomicU64,
    /// Words reserved so far.
    tail: AtomicU32,
    /// Words committed (readable) so far.
    commit: AtomicU32,
    /// Writers in progress on this CPU (nesting).
    nest: AtomicU32,
    /// Timestamp of this CPU's latest reservation ([`NO_EVENT`] before the
    /// first).
    last_ts: LastTs,
    // No `written` counter: every event offered ends up in the buffer,
    // overwritten or dropped, so `written` is their sum (`stats`), and the
    // hot path saves an atomic add.
    overwritten: AtomicU64,
    dropped: AtomicU64,
}

/// Per-CPU ring buffers of compact events.
pub struct RingBuffer {
    cpus: Box<[CpuRing]>,
    text_base: usize,
    overwrite: AtomicBool,
}

impl core::fmt::Debug for RingBuffer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RingBuffer")
            .field("cpus", &self.cpus.len())
            .field("bytes_per_cpu", &self.bytes_per_cpu())
            .finish_non_exhaustive()
    }
}

fn context_bits(c: Context) -> u32 {
    c as u32
}

fn context_of(bits: u32) -> Context {
    match bits & 3 {
        1 => Context::Softirq,
        2 => Context::Irq,
        3 => Context::Nmi,
        _ => Context::Normal,
    }
}

/// An event header.
#[inline(always)]
fn header(t: u32, ctx: Context, irqs_off: bool, payload: u32) -> u32 {
    t | (context_bits(ctx) << HDR_CTX_SHIFT)
        | if irqs_off { HDR_IRQS_OFF } else { 0 }
        | (payload.min(MAX_PAYLOAD) << HDR_PAYLOAD_SHIFT)
}

/// Words of an event of type `t` (header included); 0 for an unknown type.
fn event_words(t: u32, wide_retval: bool) -> Pos {
    match t {
        ty::FUNCTION => 4,
        ty::GRAPH_ENTRY => 3,
        ty::GRAPH_RETURN => {
            if wide_retval {
                6
            } else {
                5
            }
        }
        ty::TIME_EXTEND => 3,
        ty::FUNCTION_WIDE => {
            if wide_retval {
                6
            } else {
                4
            }
        }
        _ => 0,
    }
}

impl RingBuffer {
    /// Buffers of (at least) `bytes_per_cpu` bytes, rounded up to a power of
    /// two (64 bytes at least), for `nr_cpus` CPUs; addresses are stored
    /// as offsets from `text_base`. Overwrite mode.
    pub fn new(nr_cpus: usize, bytes_per_cpu: usize, text_base: usize) -> Self {
        let words = (bytes_per_cpu.div_ceil(4))
            .next_power_of_two()
            .clamp(16, MAX_WORDS);
        RingBuffer {
            cpus: (0..nr_cpus.max(1))
                .map(|_| CpuRing {
                    words: (0..words).map(|_| AtomicU32::new(0)).collect(),
                    mask: words as Pos - 1,
                    head: AtomicU32::new(0),
                    head_ts: AtomicU64::new(0),
                    tail: AtomicU32::new(0),
                    commit: AtomicU32::new(0),
                    nest: AtomicU32::new(0),
                    last_ts: LastTs::new(NO_EVENT),
                    overwritten: AtomicU64::new(0),
                    dropped: AtomicU64::new(0),
                })
                .collect(),
            text_base,
            overwrite: AtomicBool::new(true),
        }
    }

    /// Bytes of each CPU's buffer.
    pub fn bytes_per_cpu(&self) -> usize {
        self.cpus[0].words.len() * 4
    }

    /// Number of per-CPU buffers.
    pub fn nr_cpus(&self) -> usize {
        self.cpus.len()
    }

    /// Overwrite the oldest events when full (true, the default) or drop
    /// new ones (Linux's `nooverwrite`).
    pub fn set_overwrite(&self, on: bool) {
        self.overwrite.store(on, Ordering::Relaxed);
    }

    /// True in overwrite mode.
    pub fn overwrite(&self) -> bool {
        self.overwrite.load(Ordering::Relaxed)
    }

    fn wide(&self) -> bool {
        core::mem::size_of::<usize>() > 4
    }

    fn offset(&self, addr: usize) -> Option<u32> {
        u32::try_from(addr.checked_sub(self.text_base)?).ok()
    }

    /// Records a function event. False when it was dropped.
    #[inline(always)]
    pub fn function(
        &self,
        cpu: usize,
        ts: u64,
        ctx: Context,
        irqs_off: bool,
        ip: usize,
        parent_ip: usize,
    ) -> bool {
        // Both offsets at once: one test of the high bits on 64-bit.
        let (a, b) = (
            ip.wrapping_sub(self.text_base),
            parent_ip.wrapping_sub(self.text_base),
        );
        let fit = if self.wide() {
            (a | b) as u64 >> 32 == 0
        } else {
            ip >= self.text_base && parent_ip >= self.text_base
        };
        if fit {
            let hdr = header(ty::FUNCTION, ctx, irqs_off, 0);
            self.write(cpu, ts, hdr, [a as u32, b as u32])
        } else {
            self.function_wide(cpu, ts, ctx, irqs_off, ip, parent_ip)
        }
    }

    #[cold]
    fn function_wide(
        &self,
        cpu: usize,
        ts: u64,
        ctx: Context,
        irqs_off: bool,
        ip: usize,
        parent_ip: usize,
    ) -> bool {
        let hdr = header(ty::FUNCTION_WIDE, ctx, irqs_off, 0);
        let (a, b) = (ip as u64, parent_ip as u64);
        if self.wide() {
            self.write(
                cpu,
                ts,
                hdr,
                [a as u32, (a >> 32) as u32, b as u32, (b >> 32) as u32],
            )
        } else {
            self.write(cpu, ts, hdr, [a as u32, b as u32])
        }
    }

    /// Records a graph entry event (functions outside the 32-bit text
    /// window are stored as offset `u32::MAX`).
    pub fn graph_entry(
        &self,
        cpu: usize,
        ts: u64,
        ctx: Context,
        irqs_off: bool,
        func: usize,
        depth: u32,
    ) -> bool {
        let f = self.offset(func).unwrap_or(u32::MAX);
        self.write(cpu, ts, header(ty::GRAPH_ENTRY, ctx, irqs_off, depth), [f])
    }

    /// Records a graph return event (`ts` is the return time).
    #[expect(clippy::too_many_arguments, reason = "one event's fields")]
    pub fn graph_return(
        &self,
        cpu: usize,
        ts: u64,
        ctx: Context,
        irqs_off: bool,
        func: usize,
        depth: u32,
        duration: u64,
        retval: usize,
    ) -> bool {
        let f = self.offset(func).unwrap_or(u32::MAX);
        let d = u32::try_from(duration).unwrap_or(u32::MAX);
        let r = retval as u64;
        let hdr = header(ty::GRAPH_RETURN, ctx, irqs_off, depth);
        if self.wide() {
            self.write(cpu, ts, hdr, [f, d, r as u32, (r >> 32) as u32])
        } else {
            self.write(cpu, ts, hdr, [f, d, r as u32])
        }
    }

    /// Reserves, writes and commits one event of header `hdr` and `N` body
    /// words (inlined into each event kind's writer: no loop, no copies).
    ///
    /// The fast path is the common case: no extended timestamp due, room
    /// before the end of the buffer and before the head. Its reservation
    /// is one compare-and-swap, which only a writer nesting on this CPU
    /// (an interrupt between the load of `tail` and the swap) makes fail;
    /// everything else goes to [`write_slow`](Self::write_slow).
    #[inline(always)]
    fn write<const N: usize>(&self, cpu: usize, ts: u64, hdr: u32, body: [u32; N]) -> bool {
        let Some(r) = self.cpus.get(cpu) else {
            return false;
        };
        // Nesting: plain load and store (only this CPU writes it, and a
        // nested writer restores it before we run again). Relaxed loads
        // suffice below for the same reason: only writers on this CPU move
        // `tail`, `head` and `last_ts`, and a nested one has finished
        // before we resume.
        let nest = r.nest.load(Ordering::Relaxed);
        r.nest.store(nest + 1, Ordering::Relaxed);
        let words = 2 + N as Pos;
        let tail = r.tail.load(Ordering::Relaxed);
        let idx = tail & r.mask;
        let end = tail.wrapping_add(words);
        let fast = ts.wrapping_sub(r.last_ts.get()) < EXTEND_AFTER
            && idx + words <= r.mask + 1
            && end.wrapping_sub(r.head.load(Ordering::Relaxed)) <= r.mask + 1
            && r.tail
                .compare_exchange(tail, end, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok();
        if !fast {
            let mut b4 = [0u32; 4];
            b4[..N].copy_from_slice(&body);
            // A tail call: the fast path below makes no call at all.
            return self.write_slow_committed(r, ts, hdr, b4, N, nest);
        }
        let w = r.words.as_ptr();
        let i = idx as usize;
        // SAFETY: `idx + words <= mask + 1 == words.len()` was checked
        // above, so the event's `2 + N` words are in the buffer.
        unsafe {
            (*w.add(i)).store(hdr, Ordering::Relaxed);
            (*w.add(i + 1)).store(ts as u32, Ordering::Relaxed);
            for (k, b) in body.into_iter().enumerate() {
                (*w.add(i + 2 + k)).store(b, Ordering::Relaxed);
            }
        }
        r.last_ts.set(ts);
        self.commit(r, nest)
    }

    /// [`write_slow`](Self::write_slow), then the commit.
    #[cold]
    #[inline(never)]
    fn write_slow_committed(
        &self,
        r: &CpuRing,
        ts: u64,
        hdr: u32,
        body: [u32; 4],
        n: usize,
        nest: u32,
    ) -> bool {
        let ok = self.write_slow(r, ts, hdr, &body, n);
        self.commit(r, nest);
        ok
    }

    /// [`write`](Self::write) when an extended timestamp, padding or room
    /// made by overwriting is needed.
    #[cold]
    fn write_slow(&self, r: &CpuRing, ts: u64, hdr: u32, body: &[u32; 4], n: usize) -> bool {
        let last = r.last_ts.get();
        let extend = last == NO_EVENT || ts.abs_diff(last) >= EXTEND_AFTER;
        let words = 2 + n as Pos + if extend { 3 } else { 0 };
        let Some(mut pos) = self.reserve(r, words) else {
            r.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        };
        if extend {
            self.put(r, pos, ty::TIME_EXTEND);
            self.put(r, pos.wrapping_add(1), ts as u32);
            self.put(r, pos.wrapping_add(2), (ts >> 32) as u32);
            pos = pos.wrapping_add(3);
        }
        r.last_ts.set(ts);
        self.put(r, pos, hdr);
        self.put(r, pos.wrapping_add(1), ts as u32);
        for (i, &w) in body[..n].iter().enumerate() {
            self.put(r, pos.wrapping_add(2 + i as Pos), w);
        }
        true
    }

    fn put(&self, r: &CpuRing, pos: Pos, w: u32) {
        r.words[(pos & r.mask) as usize].store(w, Ordering::Relaxed);
    }

    fn get(&self, r: &CpuRing, pos: Pos) -> u32 {
        r.words[(pos & r.mask) as usize].load(Ordering::Relaxed)
    }

    /// Words of the record starting at `pos` (a padding record runs to the
    /// end of the buffer).
    fn record_words(&self, r: &CpuRing, pos: Pos) -> Pos {
        let hdr = self.get(r, pos);
        let t = hdr & 0xf;
        if t == ty::PADDING {
            return r.mask + 1 - (pos & r.mask);
        }
        match event_words(t, self.wide()) {
            0 => 1,
            w => w,
        }
    }

    /// Room for `words` contiguous words after `tail`, making room in
    /// overwrite mode; `None` when the event must be dropped.
    fn reserve(&self, r: &CpuRing, words: Pos) -> Option<Pos> {
        let cap = r.mask + 1;
        if words > cap / 2 {
            return None;
        }
        loop {
            let t = r.tail.load(Ordering::Acquire);
            let to_end = cap - (t & r.mask);
            let pad = if words > to_end { to_end } else { 0 };
            let new_t = t.wrapping_add(pad + words);
            let h = r.head.load(Ordering::Acquire);
            if new_t.wrapping_sub(h) > cap {
                if !self.overwrite() {
                    return None;
                }
                // Drop whole committed events from the head; never one a
                // writer on this CPU is still writing (past `commit`).
                let c = r.commit.load(Ordering::Acquire);
                let mut nh = h;
                let mut gone = 0;
                let mut ts_ref = r.head_ts.load(Ordering::Acquire);
                while new_t.wrapping_sub(nh) > cap && before(nh, c) {
                    let hdr = self.get(r, nh);
                    let ty_ = hdr & 0xf;
                    if ty_ == ty::TIME_EXTEND {
                        ts_ref = u64::from(self.get(r, nh.wrapping_add(1)))
                            | (u64::from(self.get(r, nh.wrapping_add(2))) << 32);
                    } else if ty_ != ty::PADDING {
                        ts_ref = rebuild_ts(ts_ref, self.get(r, nh.wrapping_add(1)));
                        gone += 1;
                    }
                    nh = nh.wrapping_add(self.record_words(r, nh));
                }
                if new_t.wrapping_sub(nh) > cap {
                    return None;
                }
                r.head_ts.store(ts_ref, Ordering::Release);
                if r.head
                    .compare_exchange(h, nh, Ordering::AcqRel, Ordering::Acquire)
                    .is_err()
                {
                    continue; // a nested writer moved it: look again
                }
                // The words we are about to overwrite are released from
                // `head` first: a reader that sees them changed sees the
                // new head too (paired with the fence in `read_cpu`).
                fence(Ordering::Release);
                r.overwritten.fetch_add(gone, Ordering::Relaxed);
            }
            if r.tail
                .compare_exchange(t, new_t, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                if pad > 0 {
                    self.put(r, t, ty::PADDING);
                }
                return Some(t.wrapping_add(pad));
            }
        }
    }

    /// Ends a writer; the outermost one publishes everything reserved.
    ///
    /// It stores `commit` while still counted in `nest` (so no nested
    /// writer publishes meanwhile and `commit` never moves backwards), then
    /// leaves; a writer that nested between its read of `tail` and its
    /// leaving is caught by the second look.
    ///
    /// Returns true (a written event's result, so that a writer can end
    /// with it and the rare late publication is a tail call).
    #[inline(always)]
    fn commit(&self, r: &CpuRing, outer_nest: u32) -> bool {
        if outer_nest != 0 {
            r.nest.store(outer_nest, Ordering::Release);
            return true;
        }
        let t = r.tail.load(Ordering::Acquire);
        r.commit.store(t, Ordering::Release);
        r.nest.store(0, Ordering::Release);
        let t2 = r.tail.load(Ordering::Acquire);
        if t2 != t {
            return Self::publish_late(r, t2);
        }
        true
    }

    /// Publishes up to `t2` (a writer nested just before the outermost one
    /// left) unless a writer already published further; positions wrap, so
    /// they are compared with [`before`] rather than by `fetch_max`.
    #[cold]
    #[inline(never)]
    fn publish_late(r: &CpuRing, t2: Pos) -> bool {
        let mut c = r.commit.load(Ordering::Acquire);
        while before(c, t2) {
            match r
                .commit
                .compare_exchange(c, t2, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => break,
                Err(now) => c = now,
            }
        }
        true
    }

    /// Counters of `cpu` (in buffer counted by walking it).
    pub fn stats(&self, cpu: usize) -> CpuStats {
        let Some(r) = self.cpus.get(cpu) else {
            return CpuStats::default();
        };
        let in_buffer = self.read_cpu(cpu, &mut |_| {});
        let overwritten = r.overwritten.load(Ordering::Relaxed);
        let dropped = r.dropped.load(Ordering::Relaxed);
        CpuStats {
            written: in_buffer + overwritten + dropped,
            in_buffer,
            overwritten,
            dropped,
        }
    }

    /// Bytes of `cpu`'s buffer holding committed events (headers, extended
    /// timestamps and padding included): Linux's `bytes` in
    /// `per_cpu/cpuN/stats`. Exact when read with tracing stopped.
    pub fn used_bytes(&self, cpu: usize) -> usize {
        let Some(r) = self.cpus.get(cpu) else {
            return 0;
        };
        let head = r.head.load(Ordering::Acquire);
        let commit = r.commit.load(Ordering::Acquire);
        commit.wrapping_sub(head) as usize * 4
    }

    /// Counters summed over all CPUs.
    pub fn totals(&self) -> CpuStats {
        (0..self.nr_cpus())
            .map(|c| self.stats(c))
            .fold(CpuStats::default(), |a, s| CpuStats {
                written: a.written + s.written,
                in_buffer: a.in_buffer + s.in_buffer,
                overwritten: a.overwritten + s.overwritten,
                dropped: a.dropped + s.dropped,
            })
    }

    /// Calls `f` for every committed event of `cpu`, oldest first; returns
    /// how many. Events a writer overwrote while they were read are
    /// skipped.
    pub fn read_cpu(&self, cpu: usize, f: &mut dyn FnMut(RingEvent)) -> u64 {
        let Some(r) = self.cpus.get(cpu) else {
            return 0;
        };
        let cap = r.mask + 1;
        let (mut pos, mut ts_ref) = loop {
            let h = r.head.load(Ordering::Acquire);
            let ts = r.head_ts.load(Ordering::Acquire);
            if r.head.load(Ordering::Acquire) == h {
                break (h, ts);
            }
        };
        let end = r.commit.load(Ordering::Acquire);
        let mut n = 0;
        while before(pos, end) {
            let hdr = self.get(r, pos);
            let t = hdr & 0xf;
            let words = self.record_words(r, pos);
            let body: [u32; 6] = core::array::from_fn(|i| {
                if (i as Pos) < words.min(6) {
                    self.get(r, pos.wrapping_add(i as Pos))
                } else {
                    0
                }
            });
            // Overwritten while we copied it: start again from the head.
            fence(Ordering::Acquire);
            let h = r.head.load(Ordering::Acquire);
            if before(pos, h) {
                pos = h;
                ts_ref = r.head_ts.load(Ordering::Acquire);
                continue;
            }
            // A record running past the committed words by more than a
            // buffer is garbage (wrapping difference, signed).
            if words == 0 || pos.wrapping_add(words).wrapping_sub(end) as i32 > cap as i32 {
                break;
            }
            pos = pos.wrapping_add(words);
            let ev = match t {
                ty::PADDING => continue,
                ty::TIME_EXTEND => {
                    ts_ref = u64::from(body[1]) | (u64::from(body[2]) << 32);
                    continue;
                }
                ty::FUNCTION => Payload::Function {
                    ip: self.text_base + body[2] as usize,
                    parent_ip: self.text_base + body[3] as usize,
                },
                ty::FUNCTION_WIDE if self.wide() => Payload::Function {
                    ip: (u64::from(body[2]) | (u64::from(body[3]) << 32)) as usize,
                    parent_ip: (u64::from(body[4]) | (u64::from(body[5]) << 32)) as usize,
                },
                ty::FUNCTION_WIDE => Payload::Function {
                    ip: body[2] as usize,
                    parent_ip: body[3] as usize,
                },
                ty::GRAPH_ENTRY => Payload::GraphEntry {
                    func: self.text_base.wrapping_add(body[2] as usize),
                    depth: hdr >> HDR_PAYLOAD_SHIFT,
                },
                ty::GRAPH_RETURN => Payload::GraphReturn {
                    func: self.text_base.wrapping_add(body[2] as usize),
                    depth: hdr >> HDR_PAYLOAD_SHIFT,
                    duration: body[3],
                    retval: if self.wide() {
                        (u64::from(body[4]) | (u64::from(body[5]) << 32)) as usize
                    } else {
                        body[4] as usize
                    },
                },
                _ => break,
            };
            ts_ref = rebuild_ts(ts_ref, body[1]);
            n += 1;
            f(RingEvent {
                ts: ts_ref,
                cpu: cpu as u32,
                context: context_of(hdr >> HDR_CTX_SHIFT),
                irqs_off: hdr & HDR_IRQS_OFF != 0,
                payload: ev,
            });
        }
        n
    }

    /// CPU `cpu`'s committed words from its head (oldest event) on, the
    /// timestamp reference at the head and its counters: everything a host
    /// tool needs to decode the buffer ([`decode_words`]). Read with
    /// tracing stopped.
    pub fn raw(&self, cpu: usize) -> Option<RawCpu> {
        let r = self.cpus.get(cpu)?;
        let head = r.head.load(Ordering::Acquire);
        let end = r.commit.load(Ordering::Acquire);
        Some(RawCpu {
            head_ts: r.head_ts.load(Ordering::Acquire),
            head_index: u64::from(head & r.mask),
            words: (0..end.wrapping_sub(head))
                .map(|i| self.get(r, head.wrapping_add(i)))
                .collect(),
            stats: self.stats(cpu),
        })
    }

    /// Base of the 32-bit address offsets.
    pub fn text_base(&self) -> usize {
        self.text_base
    }

    /// Every CPU's events merged in timestamp order (stable).
    pub fn events(&self) -> Vec<RingEvent> {
        let mut out = Vec::new();
        for cpu in 0..self.cpus.len() {
            self.read_cpu(cpu, &mut |e| out.push(e));
        }
        out.sort_by_key(|e| e.ts);
        out
    }

    /// Moves every (empty) buffer's positions to `pos`, as if that many
    /// words had been written and read: tests start near the point where
    /// positions wrap around 2^32.
    #[cfg(test)]
    fn start_at(&self, pos: Pos) {
        for r in self.cpus.iter() {
            r.head.store(pos, Ordering::Relaxed);
            r.tail.store(pos, Ordering::Relaxed);
            r.commit.store(pos, Ordering::Relaxed);
        }
    }

    /// Empties every buffer and zeroes the counters. Call only while
    /// nothing writes (tracing stopped, grace period passed).
    pub fn reset(&self) {
        for r in self.cpus.iter() {
            let t = r.tail.load(Ordering::Acquire);
            r.head.store(t, Ordering::Release);
            r.commit.store(t, Ordering::Release);
            r.last_ts.set(NO_EVENT);
            r.head_ts.store(0, Ordering::Relaxed);
            r.overwritten.store(0, Ordering::Relaxed);
            r.dropped.store(0, Ordering::Relaxed);
        }
    }
}

/// One CPU's buffer contents as [`RingBuffer::raw`] copies them out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawCpu {
    /// Timestamp reference at the first word.
    pub head_ts: u64,
    /// Index of the first word in the buffer (padding runs to the buffer's
    /// end, so the decoder needs the position).
    pub head_index: u64,
    /// The committed words, oldest first.
    pub words: Vec<u32>,
    /// The CPU's counters.
    pub stats: CpuStats,
}

/// Why [`decode_words`] stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// An unknown event type at this word.
    BadType {
        /// Word index.
        at: usize,
        /// The header word.
        header: u32,
    },
    /// The last event is cut short.
    Truncated {
        /// Word index of the cut event.
        at: usize,
    },
}

impl core::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DecodeError::BadType { at, header } => {
                write!(f, "unknown event header {header:#010x} at word {at}")
            }
            DecodeError::Truncated { at } => write!(f, "event at word {at} is cut short"),
        }
    }
}

/// Decodes a CPU's words copied by [`RingBuffer::raw`] (on the host, from a
/// dump) the way the kernel reads them: `wide` when the kernel's words are
/// 64-bit, `capacity` the buffer's size in words (for padding). Returns the
/// events decoded before any error, and the error.
pub fn decode_words(
    raw: &RawCpu,
    cpu: u32,
    text_base: usize,
    wide: bool,
    capacity: u64,
) -> (Vec<RingEvent>, Option<DecodeError>) {
    let w = &raw.words;
    let mut out = Vec::new();
    let mut ts_ref = raw.head_ts;
    let mut i = 0usize;
    let word = |k: usize| -> u64 { u64::from(w[k]) };
    while i < w.len() {
        let hdr = w[i];
        let t = hdr & 0xf;
        let n = if t == ty::PADDING {
            let pos = (raw.head_index + i as u64) % capacity.max(1);
            (capacity - pos) as usize
        } else {
            match event_words(t, wide) {
                0 => return (out, Some(DecodeError::BadType { at: i, header: hdr })),
                n => n as usize,
            }
        };
        if t != ty::PADDING && i + n > w.len() {
            return (out, Some(DecodeError::Truncated { at: i }));
        }
        let b = |k: usize| -> u32 { w.get(i + k).copied().unwrap_or(0) };
        let payload = match t {
            ty::PADDING => None,
            ty::TIME_EXTEND => {
                ts_ref = word(i + 1) | (word(i + 2) << 32);
                None
            }
            ty::FUNCTION => Some(Payload::Function {
                ip: text_base.wrapping_add(b(2) as usize),
                parent_ip: text_base.wrapping_add(b(3) as usize),
            }),
            ty::FUNCTION_WIDE if wide => Some(Payload::Function {
                ip: (u64::from(b(2)) | (u64::from(b(3)) << 32)) as usize,
                parent_ip: (u64::from(b(4)) | (u64::from(b(5)) << 32)) as usize,
            }),
            ty::FUNCTION_WIDE => Some(Payload::Function {
                ip: b(2) as usize,
                parent_ip: b(3) as usize,
            }),
            ty::GRAPH_ENTRY => Some(Payload::GraphEntry {
                func: text_base.wrapping_add(b(2) as usize),
                depth: hdr >> HDR_PAYLOAD_SHIFT,
            }),
            _ => Some(Payload::GraphReturn {
                func: text_base.wrapping_add(b(2) as usize),
                depth: hdr >> HDR_PAYLOAD_SHIFT,
                duration: b(3),
                retval: if wide {
                    (u64::from(b(4)) | (u64::from(b(5)) << 32)) as usize
                } else {
                    b(4) as usize
                },
            }),
        };
        if let Some(payload) = payload {
            ts_ref = rebuild_ts(ts_ref, b(1));
            out.push(RingEvent {
                ts: ts_ref,
                cpu,
                context: context_of(hdr >> HDR_CTX_SHIFT),
                irqs_off: hdr & HDR_IRQS_OFF != 0,
                payload,
            });
        }
        i += n;
    }
    (out, None)
}

/// The full timestamp whose low 32 bits are `low`, closest to `reference`.
fn rebuild_ts(reference: u64, low: u32) -> u64 {
    let base = reference & !0xffff_ffff;
    [base.wrapping_sub(1 << 32), base, base.wrapping_add(1 << 32)]
        .into_iter()
        .map(|b| b | u64::from(low))
        .min_by_key(|&c| c.abs_diff(reference))
        .unwrap_or(reference)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::VecDeque;

    const BASE: usize = 0x10_0000;

    fn f(ip: usize) -> Payload {
        Payload::Function {
            ip: BASE + ip,
            parent_ip: BASE + ip + 1,
        }
    }

    fn write_f(b: &RingBuffer, cpu: usize, ts: u64, ip: usize) -> bool {
        b.function(cpu, ts, Context::Normal, false, BASE + ip, BASE + ip + 1)
    }

    #[test]
    fn raw_words_decode_to_the_same_events() {
        let b = RingBuffer::new(2, 128, BASE);
        for i in 0..40 {
            write_f(&b, i % 2, 1000 + i as u64 * 7, i);
            b.graph_entry(0, 2000 + i as u64, Context::Irq, false, BASE + i, 3);
        }
        for cpu in 0..2 {
            let raw = b.raw(cpu).unwrap();
            let (ev, err) = decode_words(
                &raw,
                cpu as u32,
                BASE,
                cfg!(target_pointer_width = "64"),
                32,
            );
            assert_eq!(err, None);
            let mut direct = Vec::new();
            b.read_cpu(cpu, &mut |e| direct.push(e));
            assert_eq!(ev, direct);
            assert_eq!(ev.len() as u64, raw.stats.in_buffer);
        }
        let mut raw = b.raw(0).unwrap();
        raw.words.truncate(raw.words.len() - 1);
        assert!(matches!(
            decode_words(&raw, 0, BASE, true, 32).1,
            Some(DecodeError::Truncated { .. })
        ));
    }

    #[test]
    fn sizes_are_compact() {
        // header + timestamp + two 32-bit offsets.
        assert_eq!(event_words(ty::FUNCTION, true) * 4, 16);
        assert_eq!(event_words(ty::GRAPH_ENTRY, true) * 4, 12);
        assert_eq!(event_words(ty::GRAPH_RETURN, false) * 4, 20);
    }

    #[test]
    fn writes_reads_and_counts_exactly() {
        let b = RingBuffer::new(2, 4096, BASE);
        assert!(write_f(&b, 0, 100, 1));
        assert!(write_f(&b, 1, 150, 2));
        assert!(b.graph_entry(0, 200, Context::Irq, true, BASE + 3, 2));
        assert!(b.graph_return(0, 300, Context::Irq, true, BASE + 3, 2, 100, 0xdead));
        let ev = b.events();
        assert_eq!(
            ev.iter()
                .map(|e| (e.ts, e.cpu, e.payload))
                .collect::<Vec<_>>(),
            [
                (100, 0, f(1)),
                (150, 1, f(2)),
                (
                    200,
                    0,
                    Payload::GraphEntry {
                        func: BASE + 3,
                        depth: 2
                    }
                ),
                (
                    300,
                    0,
                    Payload::GraphReturn {
                        func: BASE + 3,
                        depth: 2,
                        duration: 100,
                        retval: 0xdead
                    }
                ),
            ]
        );
        assert_eq!((ev[2].context, ev[2].irqs_off), (Context::Irq, true));
        assert_eq!(
            b.stats(0),
            CpuStats {
                written: 3,
                in_buffer: 3,
                overwritten: 0,
                dropped: 0
            }
        );
        b.reset();
        assert_eq!(b.events(), []);
        assert_eq!(b.stats(0), CpuStats::default());
    }

    #[test]
    fn extended_timestamps_across_long_gaps() {
        let b = RingBuffer::new(1, 4096, BASE);
        let times = [5, 6, 5 + (1 << 31), 10 << 32, (10 << 32) + 1, u64::MAX >> 4];
        for (i, &t) in times.iter().enumerate() {
            assert!(write_f(&b, 0, t, i));
        }
        let got: Vec<u64> = b.events().iter().map(|e| e.ts).collect();
        assert_eq!(got, times);
    }

    #[test]
    fn addresses_outside_the_window_are_kept_whole() {
        let b = RingBuffer::new(1, 4096, BASE);
        assert!(b.function(0, 1, Context::Normal, false, 0x10, BASE + 5));
        assert_eq!(
            b.events()[0].payload,
            Payload::Function {
                ip: 0x10,
                parent_ip: BASE + 5
            }
        );
    }

    #[test]
    fn nested_writer_takes_the_room_after_and_commit_waits_for_the_outer() {
        let b = RingBuffer::new(1, 4096, BASE);
        let r = &b.cpus[0];
        // An outer writer reserved and is writing...
        r.nest.store(1, Ordering::Relaxed);
        let outer = b.reserve(r, 4).unwrap();
        // ...when an interrupt writes a whole event.
        assert!(write_f(&b, 0, 20, 7));
        assert_eq!(b.events(), [], "nothing visible before the outer commits");
        b.put(r, outer, ty::FUNCTION);
        b.put(r, outer + 1, 10);
        b.put(r, outer + 2, 1);
        b.put(r, outer + 3, 2);
        b.commit(r, 0);
        let got: Vec<(u64, Payload)> = b.events().iter().map(|e| (e.ts, e.payload)).collect();
        assert_eq!(got[1], (20, f(7)));
        assert_eq!(got.len(), 2);
    }

    /// Model: a queue of the events that fit, oldest dropped (overwrite) or
    /// newest refused (stop-when-full); counters exact; the buffer holds
    /// exactly the model's events, in order, with their timestamps.
    fn check_against_model(bytes: usize, overwrite: bool, gaps: &[u64], start: Pos) {
        let b = RingBuffer::new(1, bytes, BASE);
        b.start_at(start);
        b.set_overwrite(overwrite);
        let cap_words = (b.bytes_per_cpu() / 4) as u64;
        let mut model: VecDeque<(u64, usize, u64)> = VecDeque::new(); // (ts, ip, words incl. extend)
        let (mut ts, mut dropped, mut over) = (0u64, 0u64, 0u64);
        for (i, &g) in gaps.iter().enumerate() {
            ts += g;
            let ok = write_f(&b, 0, ts, i);
            if !ok {
                dropped += 1;
            } else {
                model.push_back((ts, i, 0));
            }
            let _ = cap_words;
        }
        let got: Vec<(u64, usize)> = b
            .events()
            .iter()
            .map(|e| match e.payload {
                Payload::Function { ip, .. } => (e.ts, ip - BASE),
                _ => unreachable!(),
            })
            .collect();
        let s = b.stats(0);
        assert_eq!(s.written, gaps.len() as u64);
        assert_eq!(s.written, s.in_buffer + s.overwritten + s.dropped);
        assert_eq!(s.dropped, dropped);
        over += s.overwritten;
        // What is left is the newest `in_buffer` of the accepted events, in
        // order (overwrite) or the oldest (stop-when-full), timestamps exact.
        let accepted: Vec<(u64, usize)> = model.iter().map(|&(t, i, _)| (t, i)).collect();
        assert_eq!(got.len() as u64, s.in_buffer);
        if overwrite {
            assert_eq!(s.dropped, 0);
            assert_eq!(got[..], accepted[over as usize..]);
        } else {
            assert_eq!(s.overwritten, 0);
            assert_eq!(got[..], accepted[..]);
            assert_eq!(got[..], accepted[..got.len()]);
        }
    }

    proptest! {
        #[test]
        fn ring_matches_its_model(
            bytes in 64usize..2048,
            overwrite in any::<bool>(),
            gaps in proptest::collection::vec(
                prop_oneof![1u64..100, (1u64 << 31)..(1u64 << 33)], 0..600),
            // Positions are 32-bit and wrap: start anywhere, often just
            // before the wrap (the 600 events cross it).
            start in prop_oneof![Just(0u32), (u32::MAX - 3000)..=u32::MAX, any::<u32>()],
        ) {
            check_against_model(bytes, overwrite, &gaps, start);
        }
    }

    #[test]
    fn reader_while_writing_never_returns_torn_events() {
        use std::sync::Arc;
        let b = Arc::new(RingBuffer::new(1, 512, BASE));
        let w = b.clone();
        let writer = std::thread::spawn(move || {
            for i in 0..200_000u64 {
                w.function(
                    0,
                    i + 1,
                    Context::Normal,
                    false,
                    BASE + (i as usize % 1000),
                    BASE + (i as usize % 1000) + 1,
                );
            }
        });
        let mut reads = 0;
        while !writer.is_finished() {
            for e in b.events() {
                let Payload::Function { ip, parent_ip } = e.payload else {
                    panic!("torn")
                };
                assert_eq!(parent_ip, ip + 1, "torn event {e:?}");
                assert_eq!((e.ts - 1) % 1000, (ip - BASE) as u64, "torn event {e:?}");
            }
            reads += 1;
        }
        writer.join().unwrap();
        assert!(reads > 0);
        let s = b.stats(0);
        assert_eq!(s.written, s.in_buffer + s.overwritten + s.dropped);
        assert_eq!(s.written, 200_000);
    }
}
