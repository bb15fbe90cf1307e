//! Recursion protection for the tracing hot path (Linux's
//! `trace_test_and_set_recursion`), which also tells the update engine
//! when a CPU has left the dispatchers (its grace periods).
//!
//! One word per CPU, alone on its cache line, with one bit per [`Context`]:
//! a callback that calls traced code on the same CPU in the same context is
//! refused (and counted); an interrupt arriving meanwhile runs in another
//! context and is traced. Only the owning CPU writes its word, and
//! interrupts nesting on that CPU leave it as they found it (nesting is
//! LIFO), so setting and clearing a bit is a plain load and store, no
//! locked read-modify-write.
//!
//! # Grace periods
//!
//! Every path to a callback holds the guard while it reads published
//! snapshots (the callback list, filter sets). A CPU whose word is zero is
//! outside every dispatcher; each time its word drops back to zero its
//! generation counter moves on. [`RecursionState::synchronize`] snapshots
//! all CPUs and waits until each one that was inside has either left
//! (word zero) or passed through zero since (epoch changed): after
//! it, no CPU can still hold a snapshot replaced before the call (Linux's
//! `synchronize_rcu_tasks_rude` after `unregister_ftrace_function`). It
//! waits only for readers that were already there, so it terminates while
//! new readers keep coming. Fixed arrays of atomics, no allocation.
//!
//! # Quiet bits
//!
//! Next to its recursion bits each CPU has one "quiet" bit per context
//! ([`RecursionState::quiet`]): set while the update engine works in that
//! context, so that traced code the engine calls (the allocator, the
//! kernel's text accessors) is neither passed to callbacks nor counted as
//! recursion. They are not part of the grace-period word: a quiet CPU is
//! outside every dispatcher.

use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering, fence};

use crate::platform::{Context, HotPlatform, Platform};

/// CPUs the recursion bits cover; CPUs with a higher id are never traced.
pub const MAX_CPUS: usize = 64;

/// A CPU's word and generation, alone on a cache line (128 bytes covers
/// the adjacent-line prefetch of x86 and ppc64's line size).
#[repr(align(128))]
#[derive(Debug)]
struct CpuWord {
    bits: AtomicU32,
    epoch: AtomicUsize,
    /// One bit per context in which the update engine is working on this
    /// CPU ([`RecursionState::quiet`]).
    quiet: AtomicU32,
}

/// The layout of [`CpuWord`] the trampolines' fast path reads
/// (`global_asm!` const operands of the kernel builds; see
/// [`RecursionState::words_addr`]).
#[cfg_attr(not(target_os = "none"), allow(dead_code))]
pub(crate) mod layout {
    use super::CpuWord;
    /// Bytes from one CPU's word to the next.
    pub(crate) const WORD_STRIDE: usize = core::mem::size_of::<CpuWord>();
    /// Offset of a CPU's recursion bits (`u32`) in its word.
    pub(crate) const OFF_BITS: usize = core::mem::offset_of!(CpuWord, bits);
    /// Offset of a CPU's generation counter (`usize`) in its word.
    pub(crate) const OFF_EPOCH: usize = core::mem::offset_of!(CpuWord, epoch);
    /// Offset of a CPU's quiet bits (`u32`) in its word.
    pub(crate) const OFF_QUIET: usize = core::mem::offset_of!(CpuWord, quiet);
}

/// Counters shared by all CPUs, kept off the per-CPU lines.
#[repr(align(128))]
#[derive(Debug)]
struct Counters {
    recursions: AtomicUsize,
    dropped: AtomicUsize,
}

/// Per-CPU, per-context recursion bits with a counter of refusals.
#[derive(Debug)]
#[repr(C)]
pub struct RecursionState {
    // `#[repr(C)]` with the words first: the address the fast path
    // publishes (`words_addr`) is the state's own (`try_enter_published`).
    cpus: [CpuWord; MAX_CPUS],
    counters: Counters,
}

impl RecursionState {
    /// All bits clear.
    pub const fn new() -> Self {
        RecursionState {
            cpus: [const {
                CpuWord {
                    bits: AtomicU32::new(0),
                    epoch: AtomicUsize::new(0),
                    quiet: AtomicU32::new(0),
                }
            }; MAX_CPUS],
            counters: Counters {
                recursions: AtomicUsize::new(0),
                dropped: AtomicUsize::new(0),
            },
        }
    }

    /// Sets the current CPU's bit for its current context; `None` (counted)
    /// when it was already set, or when the CPU id is `>= MAX_CPUS`.
    #[inline]
    pub fn try_enter<'a, P: Platform + ?Sized>(&'a self, p: &P) -> Option<RecursionGuard<'a>> {
        let cpu = p.cpu_id();
        let Some(word) = self.cpus.get(cpu) else {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        let context = p.context();
        let bit = 1u32 << (context as u32);
        if !Self::set_bit(word, bit, &self.counters) {
            return None;
        }
        Some(RecursionGuard::new(word, cpu, context))
    }

    /// [`try_enter`](Self::try_enter) for a callback's own guard
    /// ([`crate::ops::Ops::guard`]), as the trampolines' fast path takes
    /// it: in the state whose words it uses
    /// ([`crate::ops::FTRACE_FAST_WORDS`], published by
    /// [`Ftrace::use_cpu_local`](crate::Ftrace::use_cpu_local)), with the
    /// CPU id and context read from the per-CPU area and the bit set in
    /// line. `None` for anything unusual (nothing published, a CPU id or
    /// context word out of range, a quiet CPU, the bit already set, left
    /// as it was): the caller decides out of line, with
    /// [`try_enter_hot_cold`](Self::try_enter_hot_cold).
    #[inline(always)]
    pub(crate) fn try_enter_published() -> Option<RecursionGuard<'static>> {
        let words = crate::ops::FTRACE_FAST_WORDS.load(Ordering::Relaxed);
        if words == 0 {
            return None;
        }
        // SAFETY: a non-zero value is `words_addr()` of an engine's state,
        // which is the state's own address (`#[repr(C)]`, words first), in
        // its `Dispatch`, which is never freed.
        let state = unsafe { &*(words as *const RecursionState) };
        // SAFETY: the words are published (loaded non-zero above).
        let (cpu, ctx) = unsafe {
            (
                HotPlatform::per_cpu_published(&crate::ops::FTRACE_FAST_CPU_OFF)?,
                HotPlatform::per_cpu_published(&crate::ops::FTRACE_FAST_CTX_OFF)?,
            )
        };
        if ctx >= Context::COUNT || cpu >= MAX_CPUS {
            return None;
        }
        let word = &state.cpus[cpu];
        let bit = 1u32 << ctx;
        if word.quiet.load(Ordering::Relaxed) & bit != 0 || !Self::set_bit_fast(word, bit) {
            return None;
        }
        Some(RecursionGuard::new(word, cpu, Context::ALL[ctx]))
    }

    /// [`try_enter`](Self::try_enter) for a callback's own guard, out of
    /// line: with the kernel's per-CPU area described
    /// ([`Ftrace::use_cpu_local`](crate::Ftrace::use_cpu_local)) nothing calls the platform: a bit
    /// already set or a quiet CPU is decided (and counted) as `try_enter`
    /// would, and a CPU id or context word out of range is refused and
    /// counted as dropped (the trampolines would ask the platform; in an
    /// mcount build, which instruments it, that would recurse here).
    /// Without the per-CPU area, `try_enter`.
    #[inline(never)]
    pub(crate) fn try_enter_hot_cold<'a>(&'a self, p: &HotPlatform) -> Option<RecursionGuard<'a>> {
        let (Some(cpu), Some(ctx)) = (
            HotPlatform::per_cpu(&crate::ops::FTRACE_FAST_CPU_OFF),
            HotPlatform::per_cpu(&crate::ops::FTRACE_FAST_CTX_OFF),
        ) else {
            return self.try_enter(p);
        };
        let (Some(word), true) = (self.cpus.get(cpu), ctx < Context::COUNT) else {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        if !Self::set_bit(word, 1u32 << ctx, &self.counters) {
            return None;
        }
        Some(RecursionGuard::new(word, cpu, Context::ALL[ctx]))
    }

    /// Sets `bit` in `word` and fences as [`set_bit`](Self::set_bit)
    /// does; false, changing nothing and counting nothing, when it was
    /// set.
    #[inline(always)]
    fn set_bit_fast(word: &CpuWord, bit: u32) -> bool {
        #[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
        {
            // One `lock bts`: sets the bit (a set bit stays set), returns
            // the old one, and is the fence.
            word.bits.fetch_or(bit, Ordering::SeqCst) & bit == 0
        }
        #[cfg(not(any(target_arch = "x86_64", target_arch = "x86")))]
        {
            let w = word.bits.load(Ordering::Relaxed);
            if w & bit != 0 {
                return false;
            }
            word.bits.store(w | bit, Ordering::Relaxed);
            fence(Ordering::SeqCst);
            true
        }
    }

    /// Sets `bit` in `word` unless it is set (a recursion: counted) or the
    /// CPU is quiet in that context, then a full fence, which pairs with
    /// the one in `synchronize`: either the updater sees this CPU inside,
    /// or this CPU sees everything the updater published before it looked.
    /// A recursion is counted whether or not the CPU is also quiet (the
    /// trampolines' fast path sends both cases to the assist function,
    /// which decides here).
    #[inline(always)]
    fn set_bit(word: &CpuWord, bit: u32, counters: &Counters) -> bool {
        // x86: one locked `bts` sets the bit, returns the old one and is
        // the fence. A bit that was set is left as it was; a quiet CPU's
        // bit is cleared again (only this CPU writes its word, and
        // interrupts leave it as they found it) without a generation step:
        // a grace period that saw it set waits, as for any set bit, until
        // the word is zero or its generation moves, and no callback ran
        // under it.
        #[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
        {
            // Only the old bit is used: that is what lets the compiler
            // emit `lock bts` instead of a compare-and-swap loop.
            if word.bits.fetch_or(bit, Ordering::SeqCst) & bit != 0 {
                counters.recursions.fetch_add(1, Ordering::Relaxed);
                return false;
            }
            if word.quiet.load(Ordering::Relaxed) & bit != 0 {
                // The engine itself is working in this context (allocating,
                // writing text): its calls are not events, and not
                // recursions.
                let w = word.bits.load(Ordering::Relaxed);
                word.bits.store(w & !bit, Ordering::Release);
                return false;
            }
            true
        }
        // Elsewhere an atomic read-modify-write is a loop: a plain load and
        // store (only this CPU writes the word) and a separate fence.
        #[cfg(not(any(target_arch = "x86_64", target_arch = "x86")))]
        {
            let w = word.bits.load(Ordering::Relaxed);
            if w & bit != 0 {
                counters.recursions.fetch_add(1, Ordering::Relaxed);
                return false;
            }
            if word.quiet.load(Ordering::Relaxed) & bit != 0 {
                // As above: the engine's own calls.
                return false;
            }
            word.bits.store(w | bit, Ordering::Relaxed);
            fence(Ordering::SeqCst);
            true
        }
    }

    /// Marks the current CPU's current context as "the engine is working":
    /// until the guard is dropped, traced functions called in this context
    /// are not passed to callbacks and not counted (the update engine's own
    /// allocations and text accesses never appear in a trace). An interrupt
    /// arriving meanwhile runs in another context and is traced as usual.
    ///
    /// Quiet bits are kept apart from the recursion bits: a quiet CPU is
    /// not "inside a dispatcher", so grace periods
    /// ([`synchronize`](Self::synchronize)), which the engine waits for
    /// while quiet, do not wait for it. They are set with atomic
    /// read-modify-writes (only the engine writes them, off the hot path),
    /// so an engine that migrated meanwhile clears the right bit.
    pub fn quiet<'a, P: Platform + ?Sized>(&'a self, p: &P) -> Option<QuietGuard<'a>> {
        let cpu = p.cpu_id();
        let word = self.cpus.get(cpu)?;
        let bit = 1u32 << (p.context() as u32);
        if word.quiet.fetch_or(bit, Ordering::Acquire) & bit != 0 {
            // Already quiet (a nested engine call): the outer guard clears.
            return None;
        }
        Some(QuietGuard {
            state: self,
            cpu,
            bit,
        })
    }

    /// Address of CPU 0's word; CPU `n`'s is `n * WORD_STRIDE` further.
    /// The x86_64 trampolines' fast path takes and releases the guard
    /// there exactly as [`try_enter`](Self::try_enter) and the guard's drop
    /// do (same bits, same fence, same generation step).
    pub(crate) fn words_addr(&self) -> usize {
        self.cpus.as_ptr() as usize
    }

    /// Number of refused recursive entries so far.
    pub fn recursions(&self) -> usize {
        self.counters.recursions.load(Ordering::Relaxed)
    }

    /// Number of entries refused because the CPU id was `>= MAX_CPUS`.
    pub fn dropped(&self) -> usize {
        self.counters.dropped.load(Ordering::Relaxed)
    }

    /// Waits until every CPU that was inside a guarded region when called
    /// has left it at least once (module docs). `own` is the caller's CPU:
    /// a caller that is itself inside a guarded region (a callback calling
    /// the engine) cannot wait for itself, so the call returns `false` at
    /// once and nothing may be freed; `true` otherwise.
    pub fn synchronize(&self, own: usize) -> bool {
        fence(Ordering::SeqCst);
        if self
            .cpus
            .get(own)
            .is_some_and(|w| w.bits.load(Ordering::Acquire) != 0)
        {
            return false;
        }
        // The caller's own word was just seen at zero and stays so: what
        // interrupts it takes leave it as they found it. Every word is
        // read, the caller's included, without a test of the index.
        // Relaxed loads: the fence after the scan orders them all before
        // what the caller frees (it pairs with the guards' release stores),
        // instead of an acquire barrier per CPU (ppc64: four instructions
        // per word).
        for w in &self.cpus {
            if w.bits.load(Ordering::Relaxed) == 0 {
                continue;
            }
            let epoch = w.epoch.load(Ordering::Relaxed);
            while w.bits.load(Ordering::Relaxed) != 0 && w.epoch.load(Ordering::Relaxed) == epoch {
                core::hint::spin_loop();
            }
        }
        fence(Ordering::SeqCst);
        true
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
    word: &'a CpuWord,
    // Two words in all (the CPU id is below MAX_CPUS): a guard, or an
    // `Option` of one, comes back from a call in two registers.
    cpu: u32,
    context: Context,
}

impl<'a> RecursionGuard<'a> {
    /// The guard of `cpu` (below [`MAX_CPUS`]), whose bit for `context`
    /// in `word` the caller set.
    #[inline(always)]
    fn new(word: &'a CpuWord, cpu: usize, context: Context) -> Self {
        RecursionGuard {
            word,
            cpu: cpu as u32,
            context,
        }
    }

    /// The context the guard was taken in (the platform's, at entry).
    pub fn context(&self) -> Context {
        self.context
    }

    /// The CPU the guard was taken on.
    pub fn cpu(&self) -> usize {
        self.cpu as usize
    }
}

const _: () = assert!(MAX_CPUS <= u32::MAX as usize);

impl Drop for RecursionGuard<'_> {
    // Always inlined: it runs on every dispatch, and an out-of-line copy
    // costs a call and the guard's spill (ppc64 chose that once).
    #[inline(always)]
    fn drop(&mut self) {
        let word = self.word;
        let w = word.bits.load(Ordering::Relaxed) & !(1u32 << (self.context as u32));
        // Release: the region's reads happen before an updater sees it left.
        word.bits.store(w, Ordering::Release);
        if w == 0 {
            let g = word.epoch.load(Ordering::Relaxed);
            word.epoch.store(g.wrapping_add(1), Ordering::Release);
        }
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
        self.state.cpus[self.cpu]
            .quiet
            .fetch_and(!self.bit, Ordering::Release);
    }
}

/// Makes `Context` usable as a bit index.
const _: () = assert!(Context::COUNT <= 32);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::MockPlatform;

    #[test]
    fn nesting_contexts_and_grace_periods() {
        let p = MockPlatform::new(16);
        let s = RecursionState::new();
        let g = s.try_enter(&p).expect("first entry");
        assert!(s.try_enter(&p).is_none(), "same context refused");
        p.set_context(Context::Irq);
        let irq = s.try_enter(&p).expect("an interrupt nests");
        assert!(!s.synchronize(0), "cannot wait for ourselves");
        drop(irq);
        p.set_context(Context::Normal);
        drop(g);
        assert!(s.synchronize(0));
        assert_eq!(s.recursions(), 1);
        // Another CPU inside: synchronize waits until it leaves.
        let p1: &'static MockPlatform =
            alloc::boxed::Box::leak(alloc::boxed::Box::new(MockPlatform::new(16)));
        p1.set_cpu(1);
        let s: &'static RecursionState =
            alloc::boxed::Box::leak(alloc::boxed::Box::new(RecursionState::new()));
        let g1 = s.try_enter(p1).unwrap();
        let done = std::sync::Arc::new(core::sync::atomic::AtomicBool::new(false));
        let d = done.clone();
        let t = std::thread::spawn(move || {
            assert!(s.synchronize(0));
            d.store(true, Ordering::SeqCst);
        });
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(!done.load(Ordering::SeqCst), "waits for CPU 1");
        drop(g1);
        t.join().unwrap();
        assert!(done.load(Ordering::SeqCst));
    }
}
