//! What the embedding kernel provides: the [`Platform`] trait.
//!
//! This is the whole contract between the tracer and its host kernel. It is
//! kept small on purpose: a kernel with one CPU, a monotonic clock and a way
//! to write its own text can implement it in an afternoon.

use core::fmt;

use crate::fgraph::ShadowStack;

/// Execution context of the current CPU, used to keep one recursion bit per
/// context (an interrupt arriving inside a callback may trace again; the same
/// context re-entering itself may not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Context {
    /// Thread / process context.
    Normal = 0,
    /// Deferred interrupt work (bottom halves). Kernels without the concept
    /// never return it.
    Softirq = 1,
    /// Hardware interrupt handler.
    Irq = 2,
    /// Non-maskable interrupt (or anything that can interrupt `Irq` with
    /// interrupts masked, such as a machine check).
    Nmi = 3,
}

impl Context {
    /// Number of contexts, i.e. recursion bits per CPU.
    pub const COUNT: usize = 4;
    /// Every context, in index order (`ALL[i]` is `from_index(i)` for
    /// `i < COUNT`, without a branch).
    pub const ALL: [Context; Context::COUNT] = [
        Context::Normal,
        Context::Softirq,
        Context::Irq,
        Context::Nmi,
    ];

    /// The context numbered `i` (its discriminant); [`Context::Nmi`] for
    /// anything above.
    pub const fn from_index(i: usize) -> Self {
        match i {
            0 => Context::Normal,
            1 => Context::Softirq,
            2 => Context::Irq,
            _ => Context::Nmi,
        }
    }
}

/// Returned by [`Platform::text_read`] and [`Platform::text_write`] when the
/// address is not mapped, not kernel text, or the access faulted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextFault;

impl core::fmt::Display for TextFault {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("fault accessing kernel text")
    }
}

/// Services the host kernel provides to the tracer.
///
/// # Who calls what, from where
///
/// | method | called from | may it be traced? |
/// | --- | --- | --- |
/// | [`cpu_id`](Self::cpu_id), [`context`](Self::context) | the hot path: every traced call, on any CPU, in any context (NMI included), interrupts on or off, *before* the recursion guard can refuse it | **never**: a traced `cpu_id` recurses without end |
/// | [`clock_ns`](Self::clock_ns), [`shadow_stack`](Self::shadow_stack) | the hot path, under the recursion guard (function_graph: also on every hooked return) | no (a traced one is refused and counted as a recursion, so its events are lost) |
/// | [`nr_cpus`](Self::nr_cpus) | engine and tracer set-up (buffer sizes), tracer output | yes, harmless |
/// | [`text_read`](Self::text_read), [`text_write`](Self::text_write) | the update engine ([`crate::Ftrace`]'s methods) only: one CPU at a time (the kernel serialises updates, e.g. with a lock around the engine), in the context that called it, interrupts on or off | **never**: `text_write` runs while sites hold `int3` (x86), and a site being rewritten must not be executed by the code rewriting it |
/// | [`sync_cores`](Self::sync_cores) | the update engine, once per phase of a batch | **never**, for the same reason |
///
/// There is no method to mask interrupts: the engine never needs it (see
/// "Interrupts" below).
///
/// "Never traced" means compiled without a patchable entry: put
/// `#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]` on the
/// function (the kernel needs `#![feature(patchable_function_entry)]`), or
/// use helpers of this crate, which is never instrumented
/// ([`crate::arch::x86::helpers`]). rustc refuses that attribute on trait
/// methods, so a kernel implementing this trait for its own type should
/// forward each method to a free function it marked, or fill a
/// [`FnPlatform`] with such functions. Everything these methods call must be
/// untraced too; generic code of `core`, `alloc` and this crate that the
/// compiler instantiates in the kernel's crate gets no record at all
/// ([`crate::update::NEVER_TRACED_CRATES`]), so calling it is fine. Traced
/// code the engine itself calls in the caller's context (the kernel's
/// allocator, say) is not an event: the engine marks its work quiet
/// ([`crate::recursion::RecursionState::quiet`]).
///
/// # Interrupts
///
/// The engine does not need interrupts masked while it patches, and never
/// masks them itself: every backend keeps each site executable at every
/// step (on x86 through the `int3` protocol, the kernel's `#BP` handler
/// emulating sites in flight; on ppc64 each site is one aligned word), and
/// other CPUs are handled by [`sync_cores`](Self::sync_cores). A
/// `text_write` that opens a window in which text is writable (clearing
/// `CR0.WP`, mapping an alias) must mask interrupts on its own CPU for that
/// window ([`crate::arch::x86::helpers::text_write_cr0`] does). Interrupt
/// handlers may run traced code at any time, including while the engine
/// patches.
///
/// # Several CPUs
///
/// - [`Ftrace::init`](crate::Ftrace::init) runs before the other CPUs
///   execute instrumented code (it rewrites the compiler's sequences in
///   place); from then on every CPU may execute any site while it is being
///   patched. On x86 the
///   kernel's `#BP` handler must call
///   [`poke_int3_handler`](crate::arch::x86::poke_int3_handler) on whichever
///   CPU traps, and must be an *interrupt* gate (interrupts off on entry), so
///   that nothing nests between the trap and the emulation
///   ([`crate::arch::x86::helpers`] has such a handler).
/// - [`sync_cores`](Self::sync_cores) returns only once every online CPU has
///   executed a full memory barrier followed by an instruction-serialising
///   instruction after the call began (x86: an IPI whose handler runs
///   `cpuid` or returns with `iret`; ppc64: an IPI whose handler runs
///   `sync; isync`), Linux's `text_poke_sync` / `on_each_cpu`. One CPU: a
///   single serialising instruction suffices.
/// - Tracing callbacks may run in hardirq and NMI context: report it through
///   [`context`](Self::context) (Linux's `irq_enter`/`irq_exit` marks, kept
///   by [`crate::context::ContextMarks`]), so that a callback interrupted by
///   traced code on the same CPU is not refused as recursion and the trace
///   shows `h`.
/// - Updates wait for grace periods ([`crate::recursion`]): the engine spins
///   until every CPU that was inside a dispatcher has left it. Never call
///   the engine from a callback, and never hold a lock a callback may need
///   while calling it.
///
/// # Safety
///
/// Implementations must guarantee:
///
/// 1. [`cpu_id`](Self::cpu_id) returns a value `< nr_cpus()` that is stable
///    while the caller cannot migrate (interrupts disabled or inside a
///    trampoline), and two CPUs never report the same id at the same time.
/// 2. [`context`](Self::context) reports the context of the *current* CPU
///    accurately, so that the recursion bits of distinct nesting levels
///    differ ([`crate::context::ContextMarks`] keeps Linux's
///    `irq_enter`/`irq_exit` counts for this).
/// 3. [`text_write`](Self::text_write) writes exactly the given bytes at the
///    given kernel-text address (or fails without writing anything it was not
///    asked to), and makes them visible to data reads of every CPU before it
///    returns; [`text_read`](Self::text_read) reads the current bytes.
/// 4. [`sync_cores`](Self::sync_cores) returns only after every CPU has
///    executed a memory barrier and a serialising instruction (above), so no
///    CPU executes stale instructions fetched before the call.
/// 5. None of the methods in the table above marked "never" has a
///    patchable entry that the engine could enable.
/// 6. [`shadow_stack`](Self::shadow_stack), when implemented, returns the
///    running task's own stack, never another running task's.
///
/// The update engine relies on these to keep every patched site in a state
/// the CPU can execute.
///
/// (Earlier versions had `irq_save`/`irq_restore` here; nothing in the
/// crate called them, see "Interrupts".)
pub unsafe trait Platform: Sync {
    /// Id of the current CPU, `0..nr_cpus()`. Ids at or above
    /// [`crate::recursion::MAX_CPUS`] are not traced.
    fn cpu_id(&self) -> usize;

    /// Number of CPUs the kernel may run on.
    fn nr_cpus(&self) -> usize;

    /// Monotonic time in nanoseconds (for tracers' timestamps). Must be
    /// callable from any context. On x86,
    /// [`crate::arch::x86::helpers::TscClock`] converts the time-stamp
    /// counter with a calibrated rate.
    fn clock_ns(&self) -> u64;

    /// Context the current CPU is executing in: what the `h`/`s` column of
    /// the trace shows and what keeps an interrupt's calls apart from the
    /// code it interrupted. A kernel marks its handlers with
    /// [`crate::context::ContextMarks`] and returns
    /// [`ContextMarks::context`](crate::context::ContextMarks::context).
    fn context(&self) -> Context;

    /// True when interrupts are disabled on the current CPU: the `d` of the
    /// trace's flags column. Called on the hot path like
    /// [`context`](Self::context); the default says no.
    fn irqs_disabled(&self) -> bool {
        false
    }

    /// Reads `buf.len()` bytes of kernel text at `addr`.
    ///
    /// The default performs plain volatile byte reads, which suits kernels
    /// whose text is mapped readable (the usual case).
    ///
    /// # Safety
    ///
    /// `addr..addr + buf.len()` must be a patch site (or other text) the
    /// caller obtained from the site table or an arch backend; with the
    /// default implementation it must be mapped and readable.
    unsafe fn text_read(&self, addr: usize, buf: &mut [u8]) -> Result<(), TextFault> {
        // SAFETY: the caller guarantees that the range is mapped, readable
        // kernel text (this function's contract).
        unsafe { plain_text_read(addr, buf) };
        Ok(())
    }

    /// Writes `bytes` to kernel text at `addr`, e.g. through a writable alias
    /// mapping or by briefly lifting write protection
    /// ([`crate::arch::x86::helpers::text_write_cr0`]), with whatever cache
    /// maintenance the arch needs for code (ppc64: `dcbst; sync; icbi`).
    ///
    /// Must not reorder the writes in a way that another CPU could observe
    /// bytes other than the old or new ones at a position (byte-wise
    /// atomicity); multi-byte atomicity protocols (x86's `int3` dance) are
    /// the arch backend's job, not the platform's. Called only by the
    /// update engine (which the kernel serialises), never from the hot
    /// path; must not be traced.
    ///
    /// # Safety
    ///
    /// The caller (an arch backend) guarantees that the new bytes leave every
    /// CPU able to execute the site at every intermediate step.
    unsafe fn text_write(&self, addr: usize, bytes: &[u8]) -> Result<(), TextFault>;

    /// Makes every CPU serialise its instruction stream before it returns:
    /// on one CPU a serialising instruction (x86 `cpuid`, ppc64 `isync`);
    /// on SMP an IPI to every other CPU whose handler executes a full
    /// memory barrier and one, waiting until all of them did (Linux's
    /// `text_poke_sync`; "Several CPUs" above). The engine calls it between
    /// the phases of a batch; must not be traced.
    fn sync_cores(&self);

    /// The running task's shadow return stack, for return hooking
    /// ([`crate::fgraph`]): one per task (a kernel without tasks gives one
    /// per CPU). Called on every hooked entry and return, from any context:
    /// it must be cheap, untraced, and return the same stack for the same
    /// task every time while any of its calls are hooked.
    ///
    /// The default, `None`, means "no graph tracing here": entries are not
    /// hooked.
    fn shadow_stack(&self) -> Option<&ShadowStack> {
        None
    }

    /// The platform's services as plain function pointers, when it is made
    /// of them ([`FnPlatform`] returns itself). The tracing hot path then
    /// calls them directly ([`HotPlatform`]) instead of through the trait
    /// object and a forwarding method (on ppc64 that forwarding alone costs
    /// 16 instructions per call: its own frame and TOC save). The default,
    /// `None`, keeps trait calls.
    fn as_fn_platform(&self) -> Option<&FnPlatform> {
        None
    }

    /// What the tracing hot path may read from the CPU itself instead of
    /// calling [`clock_ns`](Self::clock_ns) and
    /// [`irqs_disabled`](Self::irqs_disabled) once per event: see
    /// [`CpuSources`]. Asked once, when a tracer or the engine is set up.
    /// The default, [`CpuSources::NONE`], always calls.
    fn cpu_sources(&self) -> CpuSources {
        CpuSources::NONE
    }
}

/// How the platform's clock and interrupt state relate to the CPU's own
/// registers ([`Platform::cpu_sources`]). When they are plain reads of
/// the CPU, the tracing hot path makes them in line ([`HotPlatform`],
/// [`crate::arch::cpu`]): no call into the kernel per event, and the
/// same values the platform's methods would return. On an arch without
/// those reads (see [`crate::arch::cpu::SUPPORTED`]) this is ignored.
#[derive(Debug, Clone, Copy)]
pub struct CpuSources {
    /// [`Platform::irqs_disabled`] is exactly "the CPU masks external
    /// interrupts": x86 `EFLAGS.IF` clear, ppc64 `MSR.EE` clear. Not so on
    /// a kernel that masks interrupts in software (Linux ppc64's lazy
    /// masking).
    pub irq_flag: bool,
    /// What [`Platform::clock_ns`] is in terms of the CPU's cycle counter.
    pub clock: ClockSource,
}

impl CpuSources {
    /// Nothing is read in line: every read calls the platform.
    pub const NONE: CpuSources = CpuSources {
        irq_flag: false,
        clock: ClockSource::Platform,
    };
}

/// [`CpuSources::clock`]: what [`Platform::clock_ns`] returns.
#[derive(Debug, Clone, Copy)]
pub enum ClockSource {
    /// Something else: the platform is called.
    Platform,
    /// The cycle counter itself (x86 `rdtsc`, ppc64 `mftb`), taken as
    /// nanoseconds.
    Counter,
    /// The cycle counter converted: `(counter * mult) >> 32` computed in
    /// 128 bits, `mult` being nanoseconds per tick in 32.32 fixed point
    /// (read on every event, so the kernel may set it once it knows the
    /// counter's rate; on a 32-bit CPU that 64-bit atomic load is a
    /// locked `cmpxchg8b`, so `Counter` is the cheap choice there).
    Scaled(&'static core::sync::atomic::AtomicU64),
}

/// The default [`Platform::text_read`]: volatile reads of `buf.len()`
/// bytes at `addr` (one read for the sizes the backends use).
///
/// # Safety
///
/// `addr..addr + buf.len()` is mapped, readable memory.
#[inline]
pub(crate) unsafe fn plain_text_read(addr: usize, buf: &mut [u8]) {
    /// One volatile read of `N` bytes (byte arrays need no alignment).
    ///
    /// # Safety
    /// `addr..addr + N` is mapped, readable memory.
    #[inline(always)]
    unsafe fn read<const N: usize>(addr: usize, buf: &mut [u8]) {
        // SAFETY: guaranteed by the caller; `[u8; N]` has alignment 1.
        let v = unsafe { core::ptr::read_volatile(addr as *const [u8; N]) };
        buf.copy_from_slice(&v);
    }
    // SAFETY: the caller guarantees that the range is mapped and
    // readable; every arm reads exactly `buf.len()` bytes from `addr`.
    unsafe {
        match buf.len() {
            // The sizes the backends read: a ppc64 word, an x86 site,
            // the ppc64 site with its TOC pair, a ppc64 stub.
            4 => read::<4>(addr, buf),
            5 => read::<5>(addr, buf),
            8 => read::<8>(addr, buf),
            16 => read::<16>(addr, buf),
            _ => {
                for (i, b) in buf.iter_mut().enumerate() {
                    *b = core::ptr::read_volatile((addr + i) as *const u8);
                }
            }
        }
    }
}

/// [`Platform::text_read`] and [`Platform::text_write`] of `p`, looked
/// up once for many accesses. A platform made of function pointers
/// ([`Platform::as_fn_platform`]) has its `text_write` called directly,
/// saving the trait object's forwarding call on every write (three per
/// x86 site, two per ppc64 site), and its reads made in line (a
/// [`FnPlatform`] reads text with the default [`Platform::text_read`]).
/// When that `text_write` is this crate's own helper for the arch
/// ([`crate::arch::x86::helpers::text_write`],
/// [`crate::arch::ppc64::helpers::text_write`]), the helper is inlined
/// here: the engine's patch loops then make no call per write.
#[derive(Clone, Copy)]
pub(crate) struct TextWriter<'a> {
    p: &'a dyn Platform,
    /// `p` reads text with the default `text_read` (it is a `FnPlatform`).
    plain_read: bool,
    /// `p`'s `text_write` as a function pointer, when it is a `FnPlatform`.
    direct: Option<TextWriteFn>,
    /// `p`'s `text_write` is the arch's helper of this crate (only kernel
    /// builds have one to recognise).
    #[cfg_attr(
        not(all(
            target_os = "none",
            any(target_arch = "x86_64", target_arch = "x86", target_arch = "powerpc64")
        )),
        allow(dead_code)
    )]
    helper: bool,
}

#[cfg(all(target_os = "none", target_arch = "powerpc64"))]
use crate::arch::ppc64::helpers::{text_store as arch_text_store, text_write as arch_text_write};
/// The crate's own text writer for the arch being built, when it has one
/// (kernel builds only: it writes real text).
#[cfg(all(target_os = "none", any(target_arch = "x86_64", target_arch = "x86")))]
use crate::arch::x86::helpers::{text_store as arch_text_store, text_write as arch_text_write};

/// True when `f` is the crate's own text writer of this arch (compared by
/// address: a copy the compiler made elsewhere is not recognised, and is
/// then simply called through the pointer, with the same effect).
#[inline]
fn is_arch_helper(f: TextWriteFn) -> bool {
    #[cfg(all(
        target_os = "none",
        any(target_arch = "x86_64", target_arch = "x86", target_arch = "powerpc64")
    ))]
    return f as usize == arch_text_write as TextWriteFn as usize;
    #[cfg(not(all(
        target_os = "none",
        any(target_arch = "x86_64", target_arch = "x86", target_arch = "powerpc64")
    )))]
    {
        let _ = f;
        false
    }
}

/// [`FnPlatform::text_write`]'s type.
type TextWriteFn = unsafe fn(usize, &[u8]) -> Result<(), TextFault>;

impl<'a> TextWriter<'a> {
    /// `p`'s writer.
    #[inline]
    pub(crate) fn new(p: &'a dyn Platform) -> Self {
        let direct = p.as_fn_platform().map(|f| f.text_write);
        TextWriter {
            p,
            plain_read: direct.is_some(),
            direct,
            helper: direct.is_some_and(is_arch_helper),
        }
    }

    /// [`Platform::text_read`].
    ///
    /// # Safety
    ///
    /// As for [`Platform::text_read`].
    #[inline(always)]
    pub(crate) unsafe fn read(&self, addr: usize, buf: &mut [u8]) -> Result<(), TextFault> {
        if self.plain_read {
            // SAFETY: the caller upholds `text_read`'s contract; a
            // `FnPlatform` reads with the default, which is this.
            unsafe { plain_text_read(addr, buf) };
            return Ok(());
        }
        // SAFETY: the caller upholds `text_read`'s contract.
        unsafe { self.p.text_read(addr, buf) }
    }

    /// [`Platform::text_write`].
    ///
    /// # Safety
    ///
    /// As for [`Platform::text_write`].
    #[inline(always)]
    pub(crate) unsafe fn write(&self, addr: usize, bytes: &[u8]) -> Result<(), TextFault> {
        // SAFETY: the caller upholds `text_write`'s contract; a
        // `FnPlatform`'s `text_write` field is its `Platform::text_write`,
        // with the same contract.
        unsafe {
            #[cfg(all(
                target_os = "none",
                any(target_arch = "x86_64", target_arch = "x86", target_arch = "powerpc64")
            ))]
            if self.helper {
                return arch_text_store(addr, bytes);
            }
            match self.direct {
                Some(w) => w(addr, bytes),
                None => self.p.text_write(addr, bytes),
            }
        }
    }
}

/// What a batch's platform lets a backend do in line, looked up once per
/// batch ([`crate::Arch::begin_batch`]) instead of once per site: reads in
/// line for a [`FnPlatform`], writes through the crate's own helper in
/// line. The engine holds one platform and passes it to every hook, so
/// what was looked up for one batch stays true; a hook called before the
/// first batch finds nothing cached and asks the platform.
#[derive(Debug, Default)]
pub(crate) struct TextCache {
    /// [`Self::PLAIN_READ`] and [`Self::HELPER`]: one load per access.
    bits: core::sync::atomic::AtomicU8,
}

impl TextCache {
    const PLAIN_READ: u8 = 1;
    const HELPER: u8 = 2;

    /// Nothing cached.
    pub(crate) const fn new() -> Self {
        TextCache {
            bits: core::sync::atomic::AtomicU8::new(0),
        }
    }

    /// Looks `p` up for the batch that starts.
    pub(crate) fn begin(&self, p: &dyn Platform) {
        let t = TextWriter::new(p);
        let bits = if t.plain_read { Self::PLAIN_READ } else { 0 }
            | if t.helper { Self::HELPER } else { 0 };
        self.bits.store(bits, core::sync::atomic::Ordering::Relaxed);
    }

    /// The accessors of `p`, the batch's platform, as looked up: a write
    /// that is not the crate's helper goes through the trait object.
    #[inline(always)]
    pub(crate) fn writer<'a>(&self, p: &'a dyn Platform) -> TextWriter<'a> {
        let bits = self.bits.load(core::sync::atomic::Ordering::Relaxed);
        TextWriter {
            p,
            plain_read: bits & Self::PLAIN_READ != 0,
            direct: None,
            helper: bits & Self::HELPER != 0,
        }
    }
}

/// One [`Platform::text_write`] through a [`TextWriter`].
///
/// # Safety
///
/// As for [`Platform::text_write`].
#[inline]
pub(crate) unsafe fn text_write(
    p: &dyn Platform,
    addr: usize,
    bytes: &[u8],
) -> Result<(), TextFault> {
    // SAFETY: the caller upholds `text_write`'s contract.
    unsafe { TextWriter::new(p).write(addr, bytes) }
}

/// A platform as the tracing hot path holds it: the trait object, and its
/// function pointers when it has them ([`Platform::as_fn_platform`]), so
/// that the CPU id, context, clock and interrupt state are one direct
/// indirect call each (static dispatch through the kernel's functions).
/// Everything else forwards to the trait object.
///
/// It also makes in line the reads the platform allows
/// ([`Platform::cpu_sources`]: the clock and interrupt state) and, in a
/// kernel that described its per-CPU area to the engine
/// ([`crate::Ftrace::use_cpu_local`]), the CPU id and context, as the
/// trampolines' fast path does.
#[derive(Clone, Copy)]
pub struct HotPlatform {
    fns: Option<&'static FnPlatform>,
    dyn_platform: &'static dyn Platform,
    irq_flag: bool,
    clock: ClockSource,
}

impl HotPlatform {
    /// Wraps `p`, taking its function pointers and its
    /// [`CpuSources`] once.
    pub fn new(p: &'static dyn Platform) -> Self {
        let sources = if crate::arch::cpu::SUPPORTED {
            p.cpu_sources()
        } else {
            CpuSources::NONE
        };
        HotPlatform {
            fns: p.as_fn_platform(),
            dyn_platform: p,
            irq_flag: sources.irq_flag,
            clock: sources.clock,
        }
    }

    /// The CPU id or context index from the per-CPU area the kernel
    /// described with `use_cpu_local`, when it did (`offset` is one of
    /// [`crate::ops::FTRACE_FAST_CPU_OFF`] / `FTRACE_FAST_CTX_OFF`).
    #[inline(always)]
    pub(crate) fn per_cpu(offset: &core::sync::atomic::AtomicUsize) -> Option<usize> {
        // Relaxed: `use_cpu_local` publishes the offsets before the words
        // and refuses while any callback is registered; a CPU gets here
        // only through a site enabled afterwards, and enabling a site
        // synchronises every CPU (`sync_cores`).
        if crate::ops::FTRACE_FAST_WORDS.load(core::sync::atomic::Ordering::Relaxed) != 0 {
            // SAFETY: the words are published (loaded non-zero above).
            return unsafe { Self::per_cpu_published(offset) };
        }
        None
    }

    /// [`per_cpu`](Self::per_cpu) for a caller that has seen the words
    /// published; `None` only where the arch has no per-CPU reads.
    ///
    /// # Safety
    ///
    /// The caller loaded a non-zero [`crate::ops::FTRACE_FAST_WORDS`].
    #[inline(always)]
    pub(crate) unsafe fn per_cpu_published(
        offset: &core::sync::atomic::AtomicUsize,
    ) -> Option<usize> {
        #[cfg(all(
            target_os = "none",
            any(target_arch = "x86_64", target_arch = "x86", target_arch = "powerpc64")
        ))]
        {
            let offset = offset.load(core::sync::atomic::Ordering::Relaxed);
            // SAFETY: the words are published only by `use_cpu_local`,
            // whose caller described the per-CPU area at these offsets,
            // and the caller saw them published.
            let v = unsafe { crate::arch::cpu::per_cpu_u32(offset) };
            return Some(v as usize);
        }
        #[allow(unreachable_code)]
        {
            let _ = offset;
            None
        }
    }

    /// [`Platform::clock_ns`] read in line, when the platform declared
    /// its clock a plain counter read ([`CpuSources::clock`]); `None`
    /// when it must be called. Lets a hot path keep the call out of its
    /// fast path altogether.
    #[inline(always)]
    pub fn inline_clock_ns(&self) -> Option<u64> {
        match self.clock {
            ClockSource::Platform => None,
            ClockSource::Counter => Some(crate::arch::cpu::counter()),
            ClockSource::Scaled(mult) => {
                let mult = mult.load(core::sync::atomic::Ordering::Relaxed);
                Some(((u128::from(crate::arch::cpu::counter()) * u128::from(mult)) >> 32) as u64)
            }
        }
    }

    /// [`Platform::irqs_disabled`] read in line, when the platform
    /// declared it the CPU's flag ([`CpuSources::irq_flag`]); `None` when
    /// it must be called.
    #[inline(always)]
    pub fn inline_irqs_disabled(&self) -> Option<bool> {
        self.irq_flag.then(crate::arch::cpu::irqs_masked)
    }

    // The calls into the platform, out of line so that the in-line reads
    // above stay small where they are inlined.
    #[inline(never)]
    fn call_cpu_id(&self) -> usize {
        match self.fns {
            Some(f) => (f.cpu_id)(),
            None => self.dyn_platform.cpu_id(),
        }
    }
    #[inline(never)]
    fn call_clock_ns(&self) -> u64 {
        match self.fns {
            Some(f) => (f.clock_ns)(),
            None => self.dyn_platform.clock_ns(),
        }
    }
    #[inline(never)]
    fn call_context(&self) -> Context {
        match self.fns {
            Some(f) => (f.context)(),
            None => self.dyn_platform.context(),
        }
    }
    #[inline(never)]
    fn call_irqs_disabled(&self) -> bool {
        match self.fns {
            Some(f) => (f.irqs_disabled)(),
            None => self.dyn_platform.irqs_disabled(),
        }
    }
}

impl fmt::Debug for HotPlatform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HotPlatform")
            .field("direct", &self.fns.is_some())
            .finish()
    }
}

// SAFETY: forwards every method to the wrapped platform, or to the function
// pointers that platform handed out as its own implementation; its
// guarantees carry over unchanged.
unsafe impl Platform for HotPlatform {
    #[inline(always)]
    fn cpu_id(&self) -> usize {
        if let Some(cpu) = Self::per_cpu(&crate::ops::FTRACE_FAST_CPU_OFF) {
            return cpu;
        }
        self.call_cpu_id()
    }
    fn nr_cpus(&self) -> usize {
        self.dyn_platform.nr_cpus()
    }
    #[inline(always)]
    fn clock_ns(&self) -> u64 {
        match self.inline_clock_ns() {
            Some(t) => t,
            None => self.call_clock_ns(),
        }
    }
    #[inline(always)]
    fn context(&self) -> Context {
        // A word above the last context is not one (the kernel is
        // between states): ask the platform, like the trampolines do.
        if let Some(c) = Self::per_cpu(&crate::ops::FTRACE_FAST_CTX_OFF)
            && c < Context::COUNT
        {
            return Context::from_index(c);
        }
        self.call_context()
    }
    #[inline(always)]
    fn irqs_disabled(&self) -> bool {
        match self.inline_irqs_disabled() {
            Some(off) => off,
            None => self.call_irqs_disabled(),
        }
    }
    unsafe fn text_read(&self, addr: usize, buf: &mut [u8]) -> Result<(), TextFault> {
        // SAFETY: the caller upholds `text_read`'s contract.
        unsafe { self.dyn_platform.text_read(addr, buf) }
    }
    unsafe fn text_write(&self, addr: usize, bytes: &[u8]) -> Result<(), TextFault> {
        // SAFETY: the caller upholds `text_write`'s contract.
        unsafe { self.dyn_platform.text_write(addr, bytes) }
    }
    fn sync_cores(&self) {
        self.dyn_platform.sync_cores()
    }
    #[inline]
    fn shadow_stack(&self) -> Option<&ShadowStack> {
        match self.fns {
            Some(f) => (f.shadow_stack)(),
            None => self.dyn_platform.shadow_stack(),
        }
    }
    fn cpu_sources(&self) -> CpuSources {
        CpuSources {
            irq_flag: self.irq_flag,
            clock: self.clock,
        }
    }
}

/// [`Platform::cpu_id`] of a kernel running on one CPU: always 0 (never
/// traced: this crate is not instrumented).
pub fn uniprocessor_cpu_id() -> usize {
    0
}

/// [`Platform::nr_cpus`] of a kernel running on one CPU: 1.
pub fn uniprocessor_nr_cpus() -> usize {
    1
}

/// A [`Platform`] made of plain function pointers.
///
/// Its methods live in this crate, which is built without patchable
/// entries, so they are never traced themselves. That matters on the hot
/// path: the recursion guard calls [`Platform::cpu_id`] and
/// [`Platform::context`] *before* it can refuse a nested call, so a traced
/// implementation of them would recurse without end. A kernel whose
/// compiler cannot exempt trait methods from instrumentation (rustc's
/// `patchable_function_entry` attribute is refused on them) fills this
/// struct with functions it has marked untraced instead of implementing the
/// trait itself.
#[derive(Debug, Clone, Copy)]
pub struct FnPlatform {
    /// [`Platform::cpu_id`].
    pub cpu_id: fn() -> usize,
    /// [`Platform::nr_cpus`].
    pub nr_cpus: fn() -> usize,
    /// [`Platform::clock_ns`].
    pub clock_ns: fn() -> u64,
    /// [`Platform::context`].
    pub context: fn() -> Context,
    /// [`Platform::irqs_disabled`] (`|| false` when unknown).
    pub irqs_disabled: fn() -> bool,
    /// [`Platform::text_write`], with the same contract.
    pub text_write: unsafe fn(usize, &[u8]) -> Result<(), TextFault>,
    /// [`Platform::sync_cores`].
    pub sync_cores: fn(),
    /// [`Platform::shadow_stack`] (`|| None` when graph tracing is not
    /// wanted).
    pub shadow_stack: fn() -> Option<&'static ShadowStack>,
    /// [`Platform::cpu_sources`] ([`CpuSources::NONE`] when unsure).
    pub sources: CpuSources,
}

// SAFETY: every method forwards to the function the kernel supplied; the
// guarantees listed on `Platform` are the kernel's to keep for each of
// them, as documented on the fields.
unsafe impl Platform for FnPlatform {
    fn cpu_id(&self) -> usize {
        (self.cpu_id)()
    }
    fn nr_cpus(&self) -> usize {
        (self.nr_cpus)()
    }
    fn clock_ns(&self) -> u64 {
        (self.clock_ns)()
    }
    fn context(&self) -> Context {
        (self.context)()
    }
    fn irqs_disabled(&self) -> bool {
        (self.irqs_disabled)()
    }
    unsafe fn text_write(&self, addr: usize, bytes: &[u8]) -> Result<(), TextFault> {
        // SAFETY: the caller upholds `text_write`'s contract, which the
        // supplied function shares.
        unsafe { (self.text_write)(addr, bytes) }
    }
    fn sync_cores(&self) {
        (self.sync_cores)()
    }
    fn shadow_stack(&self) -> Option<&ShadowStack> {
        (self.shadow_stack)()
    }
    fn as_fn_platform(&self) -> Option<&FnPlatform> {
        Some(self)
    }
    fn cpu_sources(&self) -> CpuSources {
        self.sources
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use core::sync::atomic::{AtomicU64, Ordering};

    /// A platform whose clock and interrupt state are fixed, recognisable
    /// values, with the given sources.
    fn fixed(sources: CpuSources) -> &'static FnPlatform {
        std::boxed::Box::leak(std::boxed::Box::new(FnPlatform {
            cpu_id: || 0,
            nr_cpus: || 1,
            clock_ns: || 7,
            context: || Context::Normal,
            irqs_disabled: || true,
            // Never called by these tests.
            text_write: |_, _| Err(TextFault),
            sync_cores: || {},
            shadow_stack: || None,
            sources,
        }))
    }

    /// The host's time-stamp counter, read apart from `crate::arch::cpu`.
    fn tsc() -> u64 {
        // SAFETY: `_rdtsc` only reads the counter (user mode may on Linux).
        unsafe { core::arch::x86_64::_rdtsc() }
    }

    /// Text the tests below read and write: a leaked buffer.
    fn text() -> usize {
        std::boxed::Box::leak(std::boxed::Box::new([
            0x0fu8, 0x1f, 0x44, 0, 0, 0xcc, 0xcc, 0xcc,
        ]))
        .as_ptr() as usize
    }

    static WRITES: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);

    #[test]
    fn text_reads_in_line_and_writes_through_the_platforms_function() {
        let mut p = *fixed(CpuSources::NONE);
        p.text_write = |addr, bytes| {
            WRITES.fetch_add(1, Ordering::SeqCst);
            // SAFETY: `addr` is the test's buffer, 8 bytes long.
            unsafe { core::ptr::copy(bytes.as_ptr(), addr as *mut u8, bytes.len()) };
            Ok(())
        };
        let p: &'static FnPlatform = std::boxed::Box::leak(std::boxed::Box::new(p));
        let (t, addr) = (TextWriter::new(p), text());
        assert!(
            !t.helper,
            "a kernel's own function is not the crate's helper"
        );
        let mut buf = [0u8; 5];
        // SAFETY: `addr` is the test's 8-byte buffer.
        unsafe { t.read(addr, &mut buf) }.unwrap();
        assert_eq!(buf, [0x0f, 0x1f, 0x44, 0, 0]);
        let before = WRITES.load(Ordering::SeqCst);
        // SAFETY: as above.
        unsafe { t.write(addr + 1, &[1, 2, 3, 4]) }.unwrap();
        assert_eq!(WRITES.load(Ordering::SeqCst), before + 1);
        // SAFETY: as above.
        unsafe { t.read(addr, &mut buf) }.unwrap();
        assert_eq!(buf, [0x0f, 1, 2, 3, 4]);
    }

    #[test]
    fn the_x86_helper_stores_every_size_the_protocol_writes() {
        let addr = text();
        // SAFETY: `addr` is the test's 8-byte buffer, writable.
        unsafe {
            crate::arch::x86::helpers::text_write(addr, &[0xcc]).unwrap();
            crate::arch::x86::helpers::text_write(addr + 1, &[1, 2, 3, 4]).unwrap();
            crate::arch::x86::helpers::text_write(addr + 5, &[9, 8, 7]).unwrap();
        }
        // SAFETY: as above.
        let got = unsafe { core::ptr::read(addr as *const [u8; 8]) };
        assert_eq!(got, [0xcc, 1, 2, 3, 4, 9, 8, 7]);
        // SAFETY: as above.
        unsafe { crate::arch::x86::helpers::text_write(addr, &[0xe8, 0, 0, 0, 0]).unwrap() };
        // SAFETY: as above.
        let got = unsafe { core::ptr::read(addr as *const [u8; 8]) };
        assert_eq!(got, [0xe8, 0, 0, 0, 0, 9, 8, 7]);
    }

    #[test]
    fn without_sources_the_platform_is_called() {
        let hot = HotPlatform::new(fixed(CpuSources::NONE));
        assert_eq!(hot.clock_ns(), 7);
        assert!(hot.irqs_disabled());
    }

    #[test]
    fn declared_sources_are_read_from_the_cpu() {
        let hot = HotPlatform::new(fixed(CpuSources {
            irq_flag: true,
            clock: ClockSource::Counter,
        }));
        // A user-mode process runs with EFLAGS.IF set: not masked, whatever
        // the platform's own function says.
        assert!(!hot.irqs_disabled());
        let (before, now, after) = (tsc(), hot.clock_ns(), tsc());
        assert!(
            before <= now && now <= after,
            "{before} <= {now} <= {after}"
        );
    }

    #[test]
    fn a_scaled_counter_applies_the_current_factor() {
        static MULT: AtomicU64 = AtomicU64::new(3 << 32);
        let hot = HotPlatform::new(fixed(CpuSources {
            irq_flag: false,
            clock: ClockSource::Scaled(&MULT),
        }));
        assert!(
            hot.irqs_disabled(),
            "no irq flag declared: the platform's answer"
        );
        let (before, now, after) = (tsc(), hot.clock_ns(), tsc());
        assert!(
            3 * before <= now && now <= 3 * after,
            "{before} {now} {after}"
        );
        // Half a nanosecond per tick, set after construction (a kernel
        // learns its counter's rate at boot).
        MULT.store(1 << 31, Ordering::Relaxed);
        let (before, now, after) = (tsc(), hot.clock_ns(), tsc());
        assert!(
            before / 2 <= now && now <= after / 2,
            "{before} {now} {after}"
        );
    }
}
