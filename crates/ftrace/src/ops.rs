//! Callbacks (Linux's `struct ftrace_ops`) and the lock-free dispatch path.
//!
//! # What the trampolines call
//!
//! A trampoline loads [`FTRACE_TRACE_OP`] and calls the C-ABI function its
//! inner call points at (patched with
//! [`Arch::update_ftrace_func`](crate::arch::Arch::update_ftrace_func) and
//! mirrored in [`FTRACE_TRACE_FUNC`]) with
//! `(ip, parent_ip, op, regs)`:
//!
//! * [`ftrace_ops_assist_func`] when exactly one callback is registered: it
//!   calls that callback directly (no list walk, no filter check: only the
//!   sites it wants are enabled), under the recursion guard;
//! * [`ftrace_ops_list_func`] otherwise: it walks the published list and
//!   calls each callback whose filter accepts `ip`.
//!
//! Either function copes with being passed the "wrong" op while an update
//! switches between the two, so the trampoline may read the pair without
//! synchronisation.
//!
//! A site wanted by exactly one callback may instead call that callback's
//! own trampoline ([`Arch::ops_trampoline`](crate::arch::Arch::ops_trampoline),
//! [`crate::tramp`]), which passes that callback itself to
//! [`ftrace_ops_assist_func`] whatever else is registered.
//!
//! # Lock-free publication
//!
//! The registered list and each callback's filter sets are immutable
//! snapshots published through `AtomicPtr`. Every dispatcher reads them
//! while holding the per-CPU recursion guard ([`crate::recursion`]), which
//! doubles as the readers' marker: the update engine retires a replaced
//! snapshot and frees it after a grace period
//! ([`RecursionState::synchronize`]): once every CPU that was inside a
//! dispatcher when the replacement was published has left it. Each update
//! waits for that before returning, so the backlog never outlives one
//! update, and [`Ftrace::unregister`](crate::Ftrace::unregister) returns only
//! when no CPU can still be running the callback.

use alloc::boxed::Box;
use core::ptr;
use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicUsize, Ordering};

use crate::platform::{Context, HotPlatform};
use crate::recursion::{RecursionGuard, RecursionState};
use crate::regs::FtraceRegs;

/// A tracing callback: `ip` is the traced function's site (the record's
/// `ip`), `parent_ip` its return address, `ops` the registered [`Ops`]
/// (giving access to [`Ops::private`]), `regs` the frame the trampoline built
/// (complete only with [`OpsFlags::SAVE_REGS`]).
///
/// Runs in any context with the recursion guard held: traced functions it
/// calls are not traced again.
///
/// The type is `extern "C"` so that the per-callback trampolines call the
/// callback themselves, with the arguments in the registers (or stack
/// slots) the C ABI gives them, without a Rust function between
/// ([`Ops`]'s layout is fixed for them: [`OPS_OFF_FUNC`],
/// [`OPS_OFF_STATE`]). Declare callbacks `extern "C" fn`; a panic in one
/// aborts, as in any `extern "C"` function.
pub type FtraceFunc = extern "C" fn(ip: usize, parent_ip: usize, ops: &Ops, regs: &mut FtraceRegs);

bitflags::bitflags! {
    /// Properties of an [`Ops`].
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct OpsFlags: u32 {
        /// The callback needs the full register frame: its sites call the
        /// regs trampoline.
        const SAVE_REGS = 1 << 0;
        /// The callback may change [`FtraceRegs::ip`]. At most one such
        /// callback may want any function; implies the full frame.
        const IPMODIFY = 1 << 1;
        /// The callback takes the recursion guard itself, with
        /// [`Ops::guard`], before it does anything that matters (Linux's
        /// `FTRACE_OPS_FL_RECURSION`). Its own trampoline then calls it
        /// without taking one, so a callback that returns at once (a
        /// tracer switched off) costs the call alone. What the callback
        /// does before [`Ops::guard`] is unprotected: it must not call
        /// traced code there, and it may run after
        /// [`Ftrace::unregister`](crate::Ftrace::unregister) returned, on
        /// a CPU that found the callback enabled just before;
        /// [`Ops::guard`] refuses both a recursion and that late call.
        /// Applies only while the engine has the trampolines' fast path
        /// ([`Ftrace::use_cpu_local`](crate::Ftrace::use_cpu_local)) and
        /// without [`SAVE_REGS`](Self::SAVE_REGS) or
        /// [`IPMODIFY`](Self::IPMODIFY); otherwise the dispatcher takes
        /// the guard as for any callback and [`Ops::guard`] finds it held.
        const RECURSION = 1 << 2;
        /// State, not set by users: the ops is registered.
        const ENABLED = 1 << 16;
    }
}

/// Internal state bit: this ops is an engine's list ops.
const STATE_LIST: u32 = 1 << 31;
/// Internal state bit, set with `ENABLED` ([`Ops::set_enabled`]): the
/// ops has [`OpsFlags::RECURSION`], does not need the regs trampoline,
/// and its engine has the trampolines' fast path
/// ([`Ftrace::use_cpu_local`](crate::Ftrace::use_cpu_local)), so its
/// state word equals [`OPS_STATE_SELF_GUARDED`] while it is enabled.
const STATE_SELF: u32 = 1 << 17;

/// A sorted set of site addresses: a resolved filter.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IpSet {
    ips: Box<[usize]>,
}

impl IpSet {
    /// A set from sorted, deduplicated addresses.
    pub fn from_sorted(ips: Box<[usize]>) -> Self {
        debug_assert!(ips.windows(2).all(|w| w[0] < w[1]));
        IpSet { ips }
    }

    /// Membership test, O(log n).
    pub fn contains(&self, ip: usize) -> bool {
        self.ips.binary_search(&ip).is_ok()
    }

    /// Number of addresses.
    pub fn len(&self) -> usize {
        self.ips.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.ips.is_empty()
    }

    /// The sorted addresses.
    pub fn as_slice(&self) -> &[usize] {
        &self.ips
    }
}

/// A registered callback. Usually a `static`:
///
/// ```
/// use ftrace::ops::{Ops, OpsFlags};
/// use ftrace::regs::FtraceRegs;
///
/// extern "C" fn count(_ip: usize, _parent: usize, ops: &Ops, _regs: &mut FtraceRegs) {
///     let _ = ops.private();
/// }
/// static COUNTER: Ops = Ops::new(count, OpsFlags::empty());
/// assert!(!COUNTER.is_enabled());
/// ```
///
/// `#[repr(C)]`: the trampolines' fast path reads the callback and the
/// state at [`OPS_OFF_FUNC`] and [`OPS_OFF_STATE`].
#[repr(C)]
pub struct Ops {
    func: FtraceFunc,
    flags: OpsFlags,
    private: usize,
    /// `OpsFlags::ENABLED`, `STATE_LIST` and `STATE_SELF`.
    state: AtomicU32,
    /// Published filter (`null`: every function).
    filter: AtomicPtr<IpSet>,
    /// Published notrace set (`null`: none).
    notrace: AtomicPtr<IpSet>,
    /// The engine this ops is registered with (set at registration, kept
    /// afterwards so late callers still find their recursion state).
    owner: AtomicPtr<Dispatch>,
}

impl core::fmt::Debug for Ops {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Ops")
            .field("func", &(self.func as usize as *const ()))
            .field("flags", &self.flags())
            .field("private", &self.private)
            .finish_non_exhaustive()
    }
}

impl Ops {
    /// A callback calling `func`, with `flags` (the `ENABLED` state bit is
    /// ignored) and no private data.
    pub const fn new(func: FtraceFunc, flags: OpsFlags) -> Self {
        Self::with_private(func, flags, 0)
    }

    /// Like [`new`](Self::new) with a private word for the callback.
    pub const fn with_private(func: FtraceFunc, flags: OpsFlags, private: usize) -> Self {
        Ops {
            func,
            flags: OpsFlags::from_bits_truncate(flags.bits() & !OpsFlags::ENABLED.bits()),
            private,
            state: AtomicU32::new(0),
            filter: AtomicPtr::new(ptr::null_mut()),
            notrace: AtomicPtr::new(ptr::null_mut()),
            owner: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// The callback function.
    pub fn func(&self) -> FtraceFunc {
        self.func
    }

    /// The flags, including the `ENABLED` state.
    pub fn flags(&self) -> OpsFlags {
        let mut f = self.flags;
        f.set(OpsFlags::ENABLED, self.is_enabled());
        f
    }

    /// The private word given at construction.
    pub fn private(&self) -> usize {
        self.private
    }

    /// True while registered.
    pub fn is_enabled(&self) -> bool {
        self.state.load(Ordering::Acquire) & OpsFlags::ENABLED.bits() != 0
    }

    /// Takes the recursion guard for a [`OpsFlags::RECURSION`] callback,
    /// which its trampoline did not (call it with the callback's own
    /// `regs`): `None` when the CPU is already inside a callback in this
    /// context (a recursion, counted as the dispatchers count theirs), when
    /// the ops is no longer enabled (a CPU that found it enabled before
    /// [`Ftrace::unregister`](crate::Ftrace::unregister): unregistering
    /// waits for every CPU holding the guard, so once this returned `Some`
    /// the ops stays registered until it is dropped), or when the ops was
    /// never registered. When a dispatcher holding the guard called the
    /// callback (the list dispatcher, the regs trampoline's), it returns
    /// what that dispatcher found ([`FREGS_GUARDED`](crate::regs::FREGS_GUARDED)).
    ///
    /// ```
    /// use ftrace::ops::{Ops, OpsFlags};
    /// use ftrace::regs::FtraceRegs;
    ///
    /// extern "C" fn cb(_ip: usize, _parent: usize, ops: &Ops, regs: &mut FtraceRegs) {
    ///     // A cheap test of its own may come first (is it on at all?).
    ///     let Some(guard) = ops.guard(regs) else { return };
    ///     let _ = (guard.cpu(), guard.context());
    ///     // ... record, under the guard ...
    /// }
    /// static SELF_GUARDED: Ops = Ops::new(cb, OpsFlags::RECURSION);
    /// # assert!(!SELF_GUARDED.is_enabled());
    /// ```
    #[inline(always)]
    pub fn guard(&self, regs: &FtraceRegs) -> Option<CallbackGuard<'static>> {
        if regs.is_guarded() {
            return Some(CallbackGuard {
                _own: None,
                cpu: regs.cpu(),
                context: regs.context(),
            });
        }
        let own = self.own_guard()?;
        Some(CallbackGuard {
            cpu: own.cpu(),
            context: own.context(),
            _own: Some(own),
        })
    }

    /// [`guard`](Self::guard) for a callback whose dispatcher did not
    /// take the guard (`regs` not [`FREGS_GUARDED`](crate::regs::FREGS_GUARDED)):
    /// takes the owner's guard and checks that the ops is still enabled.
    /// In line, as the trampolines do, when the ops is the fast path's to
    /// call unguarded (its state word, read after the guard's fence, is
    /// [`OPS_STATE_SELF_GUARDED`]: enabled, and registered with the engine
    /// whose words the fast path uses); anything else out of line.
    #[inline(always)]
    pub(crate) fn own_guard(&self) -> Option<RecursionGuard<'static>> {
        if let Some(own) = RecursionState::try_enter_published() {
            // After the guard's full fence, which orders this load: an
            // unregistration either sees this CPU inside and waits, or
            // cleared the word before this load.
            if self.state.load(Ordering::Relaxed) == OPS_STATE_SELF_GUARDED {
                return Some(own);
            }
            drop(own);
        }
        self.own_guard_cold()
    }

    /// [`own_guard`](Self::own_guard) through the ops' owner.
    #[cold]
    #[inline(never)]
    fn own_guard_cold(&self) -> Option<RecursionGuard<'static>> {
        let d = self.owner()?;
        let own = d.recursion.try_enter_hot_cold(&d.platform)?;
        // After the guard's full fence, as above.
        if !self.is_enabled() {
            return None;
        }
        Some(own)
    }

    /// True when the sites this ops wants must call the regs trampoline.
    pub fn needs_regs(&self) -> bool {
        self.flags
            .intersects(OpsFlags::SAVE_REGS | OpsFlags::IPMODIFY)
    }

    /// True when the published filter and notrace sets select `ip`: the
    /// filter is empty or contains `ip`, and notrace does not (notrace wins).
    /// Crate-private: only safe for the engine and counted dispatchers (see
    /// [`Ftrace::ops_wants`](crate::Ftrace::ops_wants) for the public form).
    pub(crate) fn wants(&self, ip: usize) -> bool {
        // SAFETY: published sets are only freed after a quiescent period of
        // the owner's reader counter (module docs); the engine (the only
        // writer) and the dispatcher (which counts itself) are the callers.
        unsafe {
            Self::selects(
                self.filter.load(Ordering::Acquire),
                self.notrace.load(Ordering::Acquire),
                ip,
            )
        }
    }

    /// # Safety
    /// Both pointers are null or point to live sets.
    pub(crate) unsafe fn selects(filter: *const IpSet, notrace: *const IpSet, ip: usize) -> bool {
        // SAFETY: guaranteed by the caller.
        let (filter, notrace) = unsafe { (filter.as_ref(), notrace.as_ref()) };
        filter.is_none_or(|f| f.is_empty() || f.contains(ip))
            && !notrace.is_some_and(|n| n.contains(ip))
    }

    /// True when `filter` and `notrace` select every site (each absent or
    /// empty): [`selects`](Self::selects) is then true for any ip.
    ///
    /// # Safety
    /// As for [`selects`](Self::selects).
    pub(crate) unsafe fn selects_every(filter: *const IpSet, notrace: *const IpSet) -> bool {
        // SAFETY: guaranteed by the caller.
        let (filter, notrace) = unsafe { (filter.as_ref(), notrace.as_ref()) };
        filter.is_none_or(IpSet::is_empty) && notrace.is_none_or(IpSet::is_empty)
    }

    /// True when the published filter selects every function (none, or
    /// empty). Same contract as [`wants`](Self::wants).
    fn filters_nothing(&self) -> bool {
        // SAFETY: as in `wants`: published sets outlive counted readers.
        unsafe { self.filter.load(Ordering::Acquire).as_ref() }.is_none_or(IpSet::is_empty)
    }

    pub(crate) fn filter_ptr(&self) -> *mut IpSet {
        self.filter.load(Ordering::Acquire)
    }

    pub(crate) fn notrace_ptr(&self) -> *mut IpSet {
        self.notrace.load(Ordering::Acquire)
    }

    /// Publishes a new filter (or notrace) set, returning the old pointer for
    /// retirement.
    pub(crate) fn swap_set(&self, notrace: bool, new: *mut IpSet) -> *mut IpSet {
        let slot = if notrace { &self.notrace } else { &self.filter };
        slot.swap(new, Ordering::SeqCst)
    }

    /// Sets or clears `ENABLED`, with `STATE_SELF` when the trampolines
    /// may call the callback without the guard: only with the fast path
    /// on, where [`Ops::guard`] takes the guard without calling the
    /// platform (which an mcount build instruments). Call after
    /// [`set_owner`](Self::set_owner).
    pub(crate) fn set_enabled(&self, on: bool) {
        if on {
            let fast = self.owner().is_some_and(|d| {
                FTRACE_FAST_WORDS.load(Ordering::Acquire) == d.recursion.words_addr()
            });
            let self_guarded =
                fast && self.flags.contains(OpsFlags::RECURSION) && !self.needs_regs();
            let bits = OpsFlags::ENABLED.bits() | if self_guarded { STATE_SELF } else { 0 };
            self.state.fetch_or(bits, Ordering::Release);
        } else {
            self.state
                .fetch_and(!(OpsFlags::ENABLED.bits() | STATE_SELF), Ordering::Release);
        }
    }

    pub(crate) fn set_owner(&self, d: &'static Dispatch) {
        self.owner
            .store(d as *const Dispatch as *mut Dispatch, Ordering::Release);
    }

    pub(crate) fn owner(&self) -> Option<&'static Dispatch> {
        // SAFETY: `owner` is null or was set from a `&'static Dispatch`
        // (`set_owner`), which is never freed.
        unsafe { self.owner.load(Ordering::Acquire).as_ref() }
    }

    fn is_list(&self) -> bool {
        self.state.load(Ordering::Relaxed) & STATE_LIST != 0
    }

    /// The list ops of an engine: its function is [`ops_list_func`].
    pub(crate) fn new_list(owner: &'static Dispatch) -> Self {
        let ops = Ops::new(ops_list_func, OpsFlags::empty());
        ops.state
            .store(STATE_LIST | OpsFlags::ENABLED.bits(), Ordering::Relaxed);
        ops.set_owner(owner);
        ops
    }
}

/// The recursion guard a [`OpsFlags::RECURSION`] callback holds
/// ([`Ops::guard`]): the CPU and context it was taken in, and the guard
/// itself when the callback took it (the region ends when this is
/// dropped).
#[derive(Debug)]
#[must_use = "the protected region ends when the guard is dropped"]
pub struct CallbackGuard<'a> {
    _own: Option<RecursionGuard<'a>>,
    cpu: usize,
    context: Context,
}

impl CallbackGuard<'_> {
    /// The CPU the callback runs on.
    pub fn cpu(&self) -> usize {
        self.cpu
    }

    /// The context the callback runs in.
    pub fn context(&self) -> Context {
        self.context
    }
}

/// Hot-path state shared by an engine and its dispatchers. Allocated once per
/// [`Ftrace`](crate::Ftrace) and never freed.
pub(crate) struct Dispatch {
    pub(crate) platform: HotPlatform,
    /// Published list of registered callbacks (never null).
    pub(crate) list: AtomicPtr<OpsList>,
    /// Every recorded site, when the backend lets unrecorded functions call
    /// the dispatcher ([`Arch::calls_unrecorded`](crate::Arch::calls_unrecorded));
    /// null otherwise. Set once at init, never freed.
    pub(crate) known: AtomicPtr<IpSet>,
    /// Recursion bits of the dispatchers; also what grace periods wait on
    /// (every reader of published snapshots holds the guard).
    pub(crate) recursion: RecursionState,
}

/// A published snapshot of registered callbacks.
pub(crate) type OpsList = Box<[&'static Ops]>;

impl Dispatch {
    /// Calls every listed callback selecting `ip`. The caller holds the
    /// recursion guard.
    fn walk(&self, ip: usize, parent_ip: usize, regs: &mut FtraceRegs) {
        // SAFETY: `list` always points to a live snapshot: replaced ones are
        // freed only after a grace period of `recursion` (module docs), and
        // our caller holds the recursion guard.
        let list = unsafe { &*self.list.load(Ordering::Acquire) };
        // SAFETY: `known` is null or a leaked, never-freed set.
        let known = unsafe { self.known.load(Ordering::Acquire).as_ref() };
        for &op in list.iter() {
            if !op.is_enabled() || !op.wants(ip) {
                continue;
            }
            // A callback without a filter wants "every function": only the
            // recorded ones (a filter holds recorded sites only).
            if let Some(k) = known
                && op.filters_nothing()
                && !k.contains(ip)
            {
                continue;
            }
            (op.func)(ip, parent_ip, op, regs);
        }
    }
}

/// The list dispatcher (Linux's `ftrace_ops_list_func`) as an
/// [`FtraceFunc`]: calls every registered callback of `ops`' engine whose
/// filter accepts `ip`, under the recursion guard. `ops` may be any ops
/// registered with the engine (normally its list ops). Lock-free.
pub extern "C" fn ops_list_func(ip: usize, parent_ip: usize, ops: &Ops, regs: &mut FtraceRegs) {
    let Some(d) = ops.owner() else { return };
    let Some(guard) = d.recursion.try_enter(&d.platform) else {
        return;
    };
    regs.set_cpu_context(guard.cpu(), guard.context());
    d.walk(ip, parent_ip, regs);
}

/// C-ABI entry of [`ops_list_func`] for trampolines.
///
/// # Safety
///
/// `ops` is null or points to a `'static` [`Ops`] (what
/// [`FTRACE_TRACE_OP`] holds); `regs` points to a frame valid for writes
/// that nothing else accesses during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftrace_ops_list_func(
    ip: usize,
    parent_ip: usize,
    ops: *const Ops,
    regs: *mut FtraceRegs,
) {
    // SAFETY: guaranteed by the caller (the trampoline passes
    // FTRACE_TRACE_OP and its own frame).
    let (Some(ops), Some(regs)) = (unsafe { ops.as_ref() }, unsafe { regs.as_mut() }) else {
        return;
    };
    ops_list_func(ip, parent_ip, ops, regs);
}

/// C-ABI entry trampolines call when a single callback is registered: calls
/// `ops`' function directly under the recursion guard (a list ops passed
/// during a switch is walked instead).
///
/// # Safety
///
/// As for [`ftrace_ops_list_func`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftrace_ops_assist_func(
    ip: usize,
    parent_ip: usize,
    ops: *const Ops,
    regs: *mut FtraceRegs,
) {
    // SAFETY: guaranteed by the caller (the trampoline passes
    // FTRACE_TRACE_OP and its own frame).
    let (Some(ops), Some(regs)) = (unsafe { ops.as_ref() }, unsafe { regs.as_mut() }) else {
        return;
    };
    let Some(d) = ops.owner() else { return };
    let Some(guard) = d.recursion.try_enter(&d.platform) else {
        return;
    };
    regs.set_cpu_context(guard.cpu(), guard.context());
    if ops.is_list() {
        d.walk(ip, parent_ip, regs);
    } else if ops.is_enabled() && (!ops.needs_regs() || ops.wants(ip)) {
        // A CPU still in a shared trampoline across a switch may pass the
        // sole callback a function it does not want; for a callback that
        // may redirect the call (IPMODIFY) or rewrite registers, that must
        // never reach it. (Others at worst see one extra call.)
        (ops.func)(ip, parent_ip, ops, regs);
    }
}

/// Offset of an [`Ops`]' callback ([`FtraceFunc`], one pointer): the
/// per-callback trampolines' fast path calls it there, once they took the
/// recursion guard themselves ([`CpuLocal`]) and found
/// [`OPS_ENABLED_BIT`] set in the word at [`OPS_OFF_STATE`].
pub const OPS_OFF_FUNC: usize = core::mem::offset_of!(Ops, func);
/// Offset of an [`Ops`]' state word (a `u32` holding
/// [`OpsFlags::ENABLED`] while registered), which the fast path tests
/// before calling the callback, as [`Ops::is_enabled`] does: a CPU still
/// in a trampoline while its ops is unregistered does not call it.
pub const OPS_OFF_STATE: usize = core::mem::offset_of!(Ops, state);
/// [`OpsFlags::ENABLED`]'s bit in the state word. The state word of an
/// enabled ops whose trampoline takes the guard equals it: the fast path
/// calls such an ops only then.
pub const OPS_ENABLED_BIT: u32 = OpsFlags::ENABLED.bits();
/// The state word of an enabled [`OpsFlags::RECURSION`] ops (without
/// `SAVE_REGS`/`IPMODIFY`): the fast path calls it without taking the
/// guard when the word equals this, and never calls it otherwise.
pub const OPS_STATE_SELF_GUARDED: u32 = OpsFlags::ENABLED.bits() | STATE_SELF;

/// Where the trampolines read the running CPU's index and context
/// without calling the platform: offsets from the CPU's per-CPU base
/// (x86_64: the `%gs` segment base). Given to the engine with
/// [`Ftrace::use_cpu_local`](crate::Ftrace::use_cpu_local).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuLocal {
    /// Offset of a `u32` holding [`Platform::cpu_id`](crate::Platform::cpu_id).
    pub cpu_offset: usize,
    /// Offset of a `u32` holding [`Platform::context`](crate::Platform::context)
    /// as its index (`Context as u32`: 0 normal, 1 softirq, 2 irq, 3 NMI).
    pub context_offset: usize,
}

/// Symbol `FTRACE_FAST_WORDS`: address of CPU 0's recursion word of the
/// engine that enabled the fast path ([`CpuLocal`]), 0 while the
/// trampolines must take the assist function's path. Written last (after
/// the offsets) when the fast path is turned on.
#[unsafe(no_mangle)]
pub static FTRACE_FAST_WORDS: AtomicUsize = AtomicUsize::new(0);
/// Symbol `FTRACE_FAST_CPU_OFF`: [`CpuLocal::cpu_offset`].
#[unsafe(no_mangle)]
pub static FTRACE_FAST_CPU_OFF: AtomicUsize = AtomicUsize::new(0);
/// Symbol `FTRACE_FAST_CTX_OFF`: [`CpuLocal::context_offset`].
#[unsafe(no_mangle)]
pub static FTRACE_FAST_CTX_OFF: AtomicUsize = AtomicUsize::new(0);

/// Address of [`ftrace_ops_list_func`].
pub fn list_func_addr() -> usize {
    ftrace_ops_list_func as *const () as usize
}

/// Address of [`ftrace_ops_assist_func`].
pub fn assist_func_addr() -> usize {
    ftrace_ops_assist_func as *const () as usize
}

/// Symbol `FTRACE_TRACE_OP` (Linux's `function_trace_op`): the ops pointer
/// trampolines pass as third argument. Set by the engine before any site is
/// enabled; null before.
#[unsafe(no_mangle)]
pub static FTRACE_TRACE_OP: AtomicPtr<Ops> = AtomicPtr::new(ptr::null_mut());

/// Symbol `FTRACE_TRACE_FUNC` (Linux's `ftrace_trace_function`): address of
/// the C-ABI function trampolines call, for backends that call through it
/// instead of patching their inner call. Zero before the first update.
#[unsafe(no_mangle)]
pub static FTRACE_TRACE_FUNC: AtomicUsize = AtomicUsize::new(0);
