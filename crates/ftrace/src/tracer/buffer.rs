//! The function tracer's event as the output formats see it (decoded from
//! the ring buffer, [`super::ring`]).

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
    /// Interrupts were disabled (the `d` flag).
    pub irqs_off: bool,
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
                irqs_off: e.irqs_off,
            }),
            _ => None,
        }
    }
}
