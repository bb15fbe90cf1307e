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
        let prev = word.fetch_or(bit, Ordering::Acquire);
        if prev & bit != 0 {
            self.recursions.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        if prev & (bit << QUIET_SHIFT) != 0 {
            // The engine itself is working in this context (allocating,
            // writing text): its calls are not events, and not recursions.
            word.fetch_and(!bit, Ordering::Release);
            return None;
        }
        Some(RecursionGuard {
            state: self,
            cpu,
            bit,
        })
    }

    /// Marks the current CPU's current context as "the engine is working":
    /// until the guard is dropped, traced functions called in this context
    /// are not passed to callbacks and not counted (the update engine's own
    /// allocations and text accesses never appear in a trace). An interrupt
    /// arriving meanwhile runs in another context and is traced as usual.
    pub fn quiet<'a>(&'a self, p: &dyn Platform) -> Option<QuietGuard<'a>> {
        let cpu = p.cpu_id();
        let word = self.bits.get(cpu)?;
        let bit = 1u32 << (p.context() as u32 + QUIET_SHIFT);
        if word.fetch_or(bit, Ordering::Acquire) & bit != 0 {
            // Already quiet (a nested engine call): the outer guard clears.
            return None;
        }
        Some(QuietGuard {
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

/// Returned by [`RecursionState::quiet`]; ends the quiet region when
/// dropped.
#[derive(Debug)]
#[must_use = "the quiet region ends when the guard is dropped"]
pub struct QuietGuard<'a> {
    state: &'a RecursionState,
    cpu: usize,
    bit: u32,
}

impl Drop for QuietGuard<'_> {
    fn drop(&mut self) {
        self.state.bits[self.cpu].fetch_and(!self.bit, Ordering::Release);
    }
}

/// The quiet bits ([`RecursionState::quiet`]) sit this far above the
/// recursion bits of the same contexts.
const QUIET_SHIFT: u32 = 8;

/// Makes `Context` usable as a bit index, recursion and quiet bits apart.
const _: () =
    assert!(Context::COUNT as u32 <= QUIET_SHIFT && QUIET_SHIFT + Context::COUNT as u32 <= 32);
