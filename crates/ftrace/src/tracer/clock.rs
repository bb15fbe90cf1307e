//! The trace clock (Linux's `trace_clock`): `local` and `global` read the
//! platform's clock (a per-CPU-consistent, kernel-wide monotonic clock here,
//! so both are the same source), `counter` is an event counter shared by all
//! CPUs: every timestamp is the next integer, which makes traces exact
//! enough to compare in tests.

use core::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use crate::platform::{HotPlatform, Platform};

/// A trace clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    /// The platform's clock, read on the local CPU (Linux's default).
    Local,
    /// A clock consistent across CPUs (the platform's clock, documented by
    /// [`Platform::clock_ns`] as monotonic kernel-wide).
    Global,
    /// An event counter: 0, 1, 2, ... over all CPUs.
    Counter,
}

impl Clock {
    /// Linux's name.
    pub fn name(self) -> &'static str {
        match self {
            Clock::Local => "local",
            Clock::Global => "global",
            Clock::Counter => "counter",
        }
    }

    /// The clock of Linux's name `name`.
    pub fn from_name(name: &str) -> Option<Clock> {
        [Clock::Local, Clock::Global, Clock::Counter]
            .into_iter()
            .find(|c| c.name() == name)
    }
}

static CLOCK: AtomicU8 = AtomicU8::new(0);
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Selects the clock of every tracer's timestamps (set it while tracing is
/// off; the counter restarts at 0).
pub fn set(c: Clock) {
    COUNTER.store(0, Ordering::Relaxed);
    CLOCK.store(c as u8, Ordering::Relaxed);
}

/// The selected clock.
pub fn get() -> Clock {
    match CLOCK.load(Ordering::Relaxed) {
        1 => Clock::Global,
        2 => Clock::Counter,
        _ => Clock::Local,
    }
}

/// A timestamp from the selected clock.
#[inline]
pub fn now<P: Platform + ?Sized>(p: &P) -> u64 {
    if CLOCK.load(Ordering::Relaxed) == Clock::Counter as u8 {
        COUNTER.fetch_add(1, Ordering::Relaxed)
    } else {
        p.clock_ns()
    }
}

/// [`now`] when it needs no call into the platform (the counter, or a
/// clock the platform reads in line: [`HotPlatform::inline_clock_ns`]);
/// `None` otherwise.
#[inline(always)]
pub fn now_inline(p: &HotPlatform) -> Option<u64> {
    if CLOCK.load(Ordering::Relaxed) == Clock::Counter as u8 {
        Some(COUNTER.fetch_add(1, Ordering::Relaxed))
    } else {
        p.inline_clock_ns()
    }
}

/// The selected clock's current value without advancing it (the counter's
/// next value, or the platform's clock): Linux's `now ts`.
pub fn current<P: Platform + ?Sized>(p: &P) -> u64 {
    if CLOCK.load(Ordering::Relaxed) == Clock::Counter as u8 {
        COUNTER.load(Ordering::Relaxed)
    } else {
        p.clock_ns()
    }
}
