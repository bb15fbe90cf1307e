//! A bounded per-CPU event buffer for the tracers.
//!
//! Writers never lock: a CPU reserves a slot with one atomic add on its own
//! buffer, so an interrupt arriving mid-write simply takes the next slot.
//! When a CPU's buffer is full, further events are counted as lost (the
//! header reports `entries-in-buffer/entries-written` exactly). Readers are
//! meant to run once tracing has stopped; a later issue replaces this with a
//! lockless ring buffer that overwrites the oldest events.
//!
//! Every field is an atomic, so the buffer needs no `unsafe` at all.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

use crate::platform::Context;

/// One recorded function entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// Address of the traced function's site (what callbacks get as `ip`).
    pub ip: usize,
    /// Return address into the caller.
    pub parent_ip: usize,
    /// [`Platform::clock_ns`](crate::platform::Platform::clock_ns) at entry.
    pub ts_ns: u64,
    /// CPU that recorded it.
    pub cpu: u32,
    /// Context it was recorded in.
    pub context: Context,
}

impl Event {
    /// The function event a ring-buffer event holds (`None` for a graph
    /// event).
    pub fn from_ring(e: &super::ring::RingEvent) -> Option<Event> {
        match e.payload {
            super::ring::Payload::Function { ip, parent_ip } => Some(Event {
                ip,
                parent_ip,
                ts_ns: e.ts,
                cpu: e.cpu,
                context: e.context,
            }),
            _ => None,
        }
    }
}

struct Slot {
    ip: AtomicUsize,
    parent_ip: AtomicUsize,
    ts_ns: AtomicU64,
    /// Context in the low byte; bit 8 set once the slot is fully written.
    meta: AtomicU32,
}

const META_READY: u32 = 1 << 8;

impl Slot {
    fn new() -> Self {
        Slot {
            ip: AtomicUsize::new(0),
            parent_ip: AtomicUsize::new(0),
            ts_ns: AtomicU64::new(0),
            meta: AtomicU32::new(0),
        }
    }
}

struct CpuBuffer {
    slots: Box<[Slot]>,
    /// Slots handed out (may exceed the capacity: the excess was lost).
    reserved: AtomicUsize,
}

/// Per-CPU bounded buffers of [`Event`]s.
pub struct EventBuffer {
    cpus: Box<[CpuBuffer]>,
}

impl EventBuffer {
    /// Allocates `per_cpu` slots for each of `nr_cpus` CPUs.
    pub fn new(nr_cpus: usize, per_cpu: usize) -> Self {
        let cpus = (0..nr_cpus.max(1))
            .map(|_| CpuBuffer {
                slots: (0..per_cpu).map(|_| Slot::new()).collect(),
                reserved: AtomicUsize::new(0),
            })
            .collect();
        EventBuffer { cpus }
    }

    /// Number of per-CPU buffers.
    pub fn nr_cpus(&self) -> usize {
        self.cpus.len()
    }

    /// Records an event on `ev.cpu`'s buffer. Lock-free and allocation-free;
    /// returns false when the event was lost (buffer full or CPU out of range).
    pub fn record(&self, ev: &Event) -> bool {
        let Some(buf) = self.cpus.get(ev.cpu as usize) else {
            return false;
        };
        let i = buf.reserved.fetch_add(1, Ordering::Relaxed);
        let Some(slot) = buf.slots.get(i) else {
            return false;
        };
        slot.ip.store(ev.ip, Ordering::Relaxed);
        slot.parent_ip.store(ev.parent_ip, Ordering::Relaxed);
        slot.ts_ns.store(ev.ts_ns, Ordering::Relaxed);
        slot.meta
            .store(ev.context as u32 | META_READY, Ordering::Release);
        true
    }

    /// Events written (recorded or lost) since the last reset, over all CPUs.
    pub fn written(&self) -> usize {
        self.cpus
            .iter()
            .map(|c| c.reserved.load(Ordering::Acquire))
            .sum()
    }

    /// `(written, in buffer, lost)` of CPU `cpu`'s buffer: written =
    /// in buffer + lost, exactly.
    pub fn cpu_counts(&self, cpu: usize) -> (usize, usize, usize) {
        let Some(c) = self.cpus.get(cpu) else {
            return (0, 0, 0);
        };
        let written = c.reserved.load(Ordering::Acquire);
        let in_buffer = written.min(c.slots.len());
        (written, in_buffer, written - in_buffer)
    }

    /// Events lost because a buffer was full.
    pub fn lost(&self) -> usize {
        self.cpus
            .iter()
            .map(|c| {
                c.reserved
                    .load(Ordering::Acquire)
                    .saturating_sub(c.slots.len())
            })
            .sum()
    }

    /// Every complete event, merged across CPUs in timestamp order (stable:
    /// equal timestamps keep per-CPU order).
    pub fn events(&self) -> Vec<Event> {
        let mut out = Vec::new();
        for (cpu, buf) in self.cpus.iter().enumerate() {
            let n = buf.reserved.load(Ordering::Acquire).min(buf.slots.len());
            for slot in &buf.slots[..n] {
                let meta = slot.meta.load(Ordering::Acquire);
                if meta & META_READY == 0 {
                    continue; // reserved but not written yet
                }
                out.push(Event {
                    ip: slot.ip.load(Ordering::Relaxed),
                    parent_ip: slot.parent_ip.load(Ordering::Relaxed),
                    ts_ns: slot.ts_ns.load(Ordering::Relaxed),
                    cpu: cpu as u32,
                    context: context_from(meta as u8),
                });
            }
        }
        out.sort_by_key(|e| e.ts_ns);
        out
    }

    /// Empties every buffer. Call only while nothing records.
    pub fn reset(&self) {
        for buf in self.cpus.iter() {
            for slot in buf.slots.iter() {
                slot.meta.store(0, Ordering::Relaxed);
            }
            buf.reserved.store(0, Ordering::Release);
        }
    }
}

pub(crate) fn context_from(b: u8) -> Context {
    match b {
        1 => Context::Softirq,
        2 => Context::Irq,
        3 => Context::Nmi,
        _ => Context::Normal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(ip: usize, ts: u64, cpu: u32) -> Event {
        Event {
            ip,
            parent_ip: ip + 1,
            ts_ns: ts,
            cpu,
            context: Context::Irq,
        }
    }

    #[test]
    fn records_merges_and_counts_losses_exactly() {
        let b = EventBuffer::new(2, 2);
        assert!(b.record(&ev(1, 30, 0)));
        assert!(b.record(&ev(2, 10, 1)));
        assert!(b.record(&ev(3, 20, 0)));
        assert!(
            !b.record(&ev(4, 40, 0)),
            "third event on a 2-slot CPU is lost"
        );
        assert!(!b.record(&ev(5, 50, 7)), "CPU out of range");
        assert_eq!(b.written(), 4);
        assert_eq!(b.lost(), 1);
        let ips: Vec<usize> = b.events().iter().map(|e| e.ip).collect();
        assert_eq!(ips, [2, 3, 1]);
        assert_eq!(b.events()[0], ev(2, 10, 1));
        b.reset();
        assert_eq!((b.written(), b.lost(), b.events().len()), (0, 0, 0));
    }
}
