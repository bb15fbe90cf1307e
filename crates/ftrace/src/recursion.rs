//! Recursion protection for the tracing hot path (Linux's
//! `trace_test_and_set_recursion`).
//!
//! One bit per CPU and per [`Context`]: a callback that calls traced code on
//! the same CPU in the same context is refused (and counted); an interrupt
//! arriving meanwhile runs in another context and is traced. Fixed arrays of
//! atomics, no allocation.

use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use crate::platform::{Context, Platform};

/// CPUs the recursion bits cover; CPUs with a higher id are never traced.
pub const MAX_CPUS: usize = 64;

/// A set of per-CPU, per-context recursion bits with a counter of refusals.
#[derive(Debug)]
pub struct RecursionState {
    bits: [AtomicU32; MAX_CPUS],
    recursions: AtomicUsize,
    dropped: AtomicUsize,
}

impl RecursionState {
    /// All bits clear.
    pub const fn new() -> Self {
        RecursionState {
            bits: [const { AtomicU32::new(0) }; MAX_CPUS],
            recursions: AtomicUsize::new(0),
            dropped: AtomicUsize::new(0),
        }
    }

    /// Sets the current CPU's bit for its current context; `None` (counted)
    /// when it was already set, or when the CPU id is `>= MAX_CPUS`.
    pub fn try_enter<'a>(&'a self, p: &dyn Platform) -> Option<RecursionGuard<'a>> {
        let cpu = p.cpu_id();
        let Some(word) = self.bits.get(cpu) else {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        let bit = 1u32 << (p.context() as u32);
        // Only this CPU touches its word; an interrupt nesting on it sets a
        // different bit and clears it before returning, so a plain RMW is
        // enough. Acquire/Release keeps the callback's accesses inside.
        if word.fetch_or(bit, Ordering::Acquire) & bit != 0 {
            self.recursions.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(RecursionGuard {
            state: self,
            cpu,
            bit,
        })
    }

    /// Number of refused recursive entries so far.
    pub fn recursions(&self) -> usize {
        self.recursions.load(Ordering::Relaxed)
    }

    /// Number of entries refused because the CPU id was `>= MAX_CPUS`.
    pub fn dropped(&self) -> usize {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl Default for RecursionState {
    fn default() -> Self {
        Self::new()
    }
}

/// Proof that the current CPU is inside a protected region; clears its bit
/// when dropped.
#[derive(Debug)]
#[must_use = "the protected region ends when the guard is dropped"]
pub struct RecursionGuard<'a> {
    state: &'a RecursionState,
    cpu: usize,
    bit: u32,
}

impl RecursionGuard<'_> {
    /// The CPU the guard was taken on.
    pub fn cpu(&self) -> usize {
        self.cpu
    }
}

impl Drop for RecursionGuard<'_> {
    fn drop(&mut self) {
        self.state.bits[self.cpu].fetch_and(!self.bit, Ordering::Release);
    }
}

/// Makes `Context` usable as a bit index.
const _: () = assert!(Context::COUNT <= 32);
