//! Return hooking (Linux's `fgraph`): entry *and* exit callbacks for traced
//! functions, through a shadow return stack.
//!
//! # How a call is hooked
//!
//! A [`GraphOps`] is registered like any callback
//! ([`Ftrace::register_graph`](crate::Ftrace::register_graph)); its filters
//! are those of its [`Ops`] ([`GraphOps::ops`]). When a function it wants is
//! entered, the trampoline's frame tells where the function's return address
//! lives ([`FtraceRegs::ret_slot`]: a stack slot on x86, the saved link
//! register on ppc64). The entry path:
//!
//! 1. reserves a [`Frame`] on the running task's [`ShadowStack`] (the
//!    [`Platform`] hands it out; a full stack is not an error: the call is
//!    not hooked and [`ShadowStack::overruns`] goes up);
//! 2. calls the user's entry handler with the arguments ([`FtraceRegs`]);
//!    a handler returning `false` does not want the return, and the frame
//!    is given back;
//! 3. saves the original return address, the function, the stack pointer
//!    at entry and the entry time in the frame, and replaces the return
//!    address with the arch's `return_to_handler`
//!    ([`Arch::return_hook`](crate::Arch::return_hook)).
//!
//! When the function returns, `return_to_handler` (assembly, keeping the
//! return-value registers intact) calls [`ftrace_return_to_handler`], which
//! checks the top frame against the stack pointer the function returned
//! with, pops it, calls the exit handlers with the return value and hands
//! back the original return address, to which `return_to_handler` returns.
//!
//! # Several users, one hook per call
//!
//! Up to [`MAX_GRAPH_USERS`] graph users may be registered at once (Linux
//! 6.9's multiple fgraph users). When several want the same call, the first
//! one pushes the frame and hooks the return; the others see the hook already
//! in place for this very call (same function, same stack pointer, the slot
//! holding `return_to_handler`) and only add their bit to the frame: one
//! frame, one hook, every user's exit handler called on return.
//!
//! # A return that does not match
//!
//! Each frame records the stack pointer the function was entered with. A
//! return whose stack pointer does not match the top frame means a hooked
//! return was skipped (a return slot overwritten after hooking, a
//! `longjmp`-style exit). The first such mismatch is recorded
//! ([`mismatch`]), graph tracing stops for good ([`is_stopped`]: no new
//! call is hooked), and the handler drops the abandoned frames down to the
//! one that does match, so control still returns where the caller expects.
//! Only when no frame matches at all (the shadow stack itself was
//! destroyed) is there no right place to go: that is a kernel panic, never a
//! jump to a guessed address.
//!
//! # Unwinders
//!
//! A backtrace taken while calls are hooked sees `return_to_handler` where
//! return addresses should be; [`ret_addr`] maps each back to the original
//! (Linux's `ftrace_graph_ret_addr`).

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering, compiler_fence};

use crate::ops::{Dispatch, Ops, OpsFlags};
use crate::platform::{Context, Platform};
use crate::regs::FtraceRegs;

/// How many graph users may be registered at the same time.
pub const MAX_GRAPH_USERS: usize = 8;

/// One hooked call on a [`ShadowStack`].
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Frame {
    /// The original return address (where the function must return).
    pub ret: usize,
    /// The traced function: its record `ip` (what callbacks get as `ip`).
    pub func: usize,
    /// Stack pointer at the function's entry ([`FtraceRegs::sp`]), checked
    /// again when it returns.
    pub sp: usize,
    /// Address of the slot the return address was taken from
    /// ([`FtraceRegs::ret_slot`]); on x86 the stack slot an unwinder reads.
    pub retp: usize,
    /// [`Platform::clock_ns`] at entry.
    pub calltime: u64,
    /// Bit `i` set: graph user `i` wants this call's return.
    pub users: u32,
}

/// A [`Frame`] cell of a shadow stack's storage.
#[derive(Debug, Default)]
pub struct FrameSlot(UnsafeCell<Frame>);

impl FrameSlot {
    /// An empty slot.
    pub const fn new() -> Self {
        FrameSlot(UnsafeCell::new(Frame {
            ret: 0,
            func: 0,
            sp: 0,
            retp: 0,
            calltime: 0,
            users: 0,
        }))
    }
}

// SAFETY: a slot is read and written only by the task owning its shadow
// stack and by interrupts nesting on that task's CPU; the push/pop protocol
// (see `ShadowStack`) keeps an interrupt from touching a slot the task
// it interrupted is still using.
unsafe impl Sync for FrameSlot {}

/// A task's shadow return stack: the calls whose return is hooked, innermost
/// last (Linux's `current->ret_stack`).
///
/// The storage is fixed when the stack is built: a kernel declares
/// `ShadowStack<[FrameSlot; N]>` (e.g. one per task, or one per CPU for a
/// kernel without tasks) and hands it out as `&ShadowStack` (the unsized
/// form) from [`Platform::shadow_stack`].
///
/// ```
/// use ftrace::fgraph::{FrameSlot, ShadowStack};
/// static STACK: ShadowStack<[FrameSlot; 32]> = ShadowStack::new();
/// let s: &ShadowStack = &STACK;
/// assert_eq!((s.depth(), s.capacity(), s.overruns()), (0, 32, 0));
/// ```
///
/// # Concurrency
///
/// Only the owning task uses it, and interrupts that nest on the task's CPU.
/// Those leave it as they found it: every call they hook returns before the
/// interrupt does. So pushes reserve the slot (raise the depth) *before*
/// writing it, and pops read the slot *before* lowering the depth: an
/// interrupt arriving in between only ever uses slots above.
#[derive(Debug)]
pub struct ShadowStack<S: ?Sized = [FrameSlot]> {
    depth: AtomicUsize,
    overruns: AtomicUsize,
    vars: [AtomicUsize; MAX_GRAPH_USERS],
    frames: S,
}

impl<const N: usize> ShadowStack<[FrameSlot; N]> {
    /// An empty stack of `N` frames.
    pub const fn new() -> Self {
        ShadowStack {
            depth: AtomicUsize::new(0),
            overruns: AtomicUsize::new(0),
            vars: [const { AtomicUsize::new(0) }; MAX_GRAPH_USERS],
            frames: [const { FrameSlot::new() }; N],
        }
    }
}

impl<const N: usize> core::ops::Deref for ShadowStack<[FrameSlot; N]> {
    type Target = ShadowStack;
    fn deref(&self) -> &ShadowStack {
        self
    }
}

impl<const N: usize> Default for ShadowStack<[FrameSlot; N]> {
    fn default() -> Self {
        Self::new()
    }
}

impl ShadowStack {
    /// Frames in use.
    pub fn depth(&self) -> usize {
        self.depth.load(Ordering::Relaxed)
    }

    /// Frames the stack holds at most.
    pub fn capacity(&self) -> usize {
        self.frames.len()
    }

    /// Calls not hooked because the stack was full.
    pub fn overruns(&self) -> usize {
        self.overruns.load(Ordering::Relaxed)
    }

    /// Frame `i` (0 = outermost), if in use.
    pub fn frame(&self, i: usize) -> Option<Frame> {
        (i < self.depth()).then(|| self.read(i))
    }

    /// The per-task word of graph user `slot` (Linux's
    /// `fgraph_get_task_var`): free for the user's own bookkeeping, e.g.
    /// "inside a filtered subtree".
    fn var(&self, slot: usize) -> &AtomicUsize {
        &self.vars[slot]
    }

    fn read(&self, i: usize) -> Frame {
        // SAFETY: `i` is below the depth the caller observed, so the slot
        // belongs to the current task (or to an interrupt that will have
        // restored it before we run again); no one writes it concurrently.
        unsafe { *self.frames[i].0.get() }
    }

    /// The entry stack pointer of frame `i` (as [`read`](Self::read)).
    fn sp_at(&self, i: usize) -> usize {
        // SAFETY: as for `read`.
        unsafe { (*self.frames[i].0.get()).sp }
    }

    fn write(&self, i: usize, f: Frame) {
        // SAFETY: the caller reserved slot `i` (raised the depth above it),
        // so nothing else on this CPU uses it until it is popped.
        unsafe { *self.frames[i].0.get() = f }
    }

    fn set_users(&self, i: usize, users: u32) {
        // SAFETY: as for `write`: slot `i` is the current task's top frame.
        unsafe { (*self.frames[i].0.get()).users = users }
    }

    fn set_depth(&self, d: usize) {
        compiler_fence(Ordering::SeqCst);
        self.depth.store(d, Ordering::Relaxed);
        compiler_fence(Ordering::SeqCst);
    }

    /// Forgets every frame and counter (for a task that starts afresh).
    /// Only valid while none of its calls are hooked.
    pub fn reset(&self) {
        self.set_depth(0);
        self.overruns.store(0, Ordering::Relaxed);
        for v in &self.vars {
            v.store(0, Ordering::Relaxed);
        }
    }
}

/// What an entry handler learns about the call.
#[derive(Debug)]
pub struct GraphEntry<'a> {
    /// The traced function (its record `ip`).
    pub func: usize,
    /// Its depth on the shadow stack (0: outermost hooked call).
    pub depth: usize,
    /// [`Platform::clock_ns`] at entry.
    pub calltime: u64,
    /// This user's per-task word (see [`ShadowStack`]).
    pub var: &'a AtomicUsize,
}

/// What an exit handler learns about the return.
#[derive(Debug)]
pub struct GraphReturn<'a> {
    /// The traced function (its record `ip`).
    pub func: usize,
    /// Its depth on the shadow stack.
    pub depth: usize,
    /// Entry time.
    pub calltime: u64,
    /// Return time.
    pub rettime: u64,
    /// The first return-value register (x86_64 `rax`, i686 `eax`, ppc64
    /// `r3`).
    pub retval: usize,
    /// The second one (`rdx`, `edx`, `r4`): the high half of a two-word
    /// result.
    pub retval2: usize,
    /// This user's per-task word.
    pub var: &'a AtomicUsize,
    /// The CPU the return happens on.
    pub cpu: usize,
    /// The context it happens in.
    pub context: Context,
}

/// Entry handler: sees the arguments; returns whether it wants the return.
pub type GraphEntryFn = fn(g: &GraphOps, ent: &GraphEntry<'_>, regs: &mut FtraceRegs) -> bool;
/// Exit handler: sees the return value.
pub type GraphReturnFn = fn(g: &GraphOps, ret: &GraphReturn<'_>);

/// A graph user: an entry and an exit handler (Linux's `fgraph_ops`, or an
/// `fprobe` pair), usually a `static`.
///
/// ```
/// use ftrace::fgraph::{GraphEntry, GraphOps, GraphReturn};
/// use ftrace::regs::FtraceRegs;
///
/// fn on_entry(_g: &GraphOps, _e: &GraphEntry<'_>, _r: &mut FtraceRegs) -> bool { true }
/// fn on_return(_g: &GraphOps, r: &GraphReturn<'_>) { let _ = r.retval; }
/// static PROBE: GraphOps = GraphOps::new(on_entry, on_return, 0);
/// assert!(!PROBE.ops().is_enabled());
/// ```
///
/// Set its filters on [`ops`](Self::ops) with the engine's
/// `set_filter`/`set_notrace`, then
/// [`Ftrace::register_graph`](crate::Ftrace::register_graph).
#[repr(C)]
pub struct GraphOps {
    /// First field: `fgraph_entry` finds the `GraphOps` from its `Ops`.
    ops: Ops,
    entry: GraphEntryFn,
    ret: GraphReturnFn,
    private: usize,
    /// User slot while registered, `NO_SLOT` otherwise.
    slot: AtomicUsize,
}

const NO_SLOT: usize = usize::MAX;

impl core::fmt::Debug for GraphOps {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("GraphOps")
            .field("private", &self.private)
            .field("slot", &self.slot.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl GraphOps {
    /// A graph user with these handlers and a private word.
    pub const fn new(entry: GraphEntryFn, ret: GraphReturnFn, private: usize) -> Self {
        GraphOps {
            ops: Ops::new(fgraph_entry, OpsFlags::empty()),
            entry,
            ret,
            private,
            slot: AtomicUsize::new(NO_SLOT),
        }
    }

    /// The callback object that selects the functions this user hooks: set
    /// its filters with the engine.
    pub fn ops(&self) -> &Ops {
        &self.ops
    }

    /// The private word given at construction.
    pub fn private(&self) -> usize {
        self.private
    }

    /// The user slot while registered.
    pub fn slot(&self) -> Option<usize> {
        let s = self.slot.load(Ordering::Relaxed);
        (s < MAX_GRAPH_USERS).then_some(s)
    }
}

/// The registered graph users, by slot.
static USERS: [AtomicPtr<GraphOps>; MAX_GRAPH_USERS] =
    [const { AtomicPtr::new(core::ptr::null_mut()) }; MAX_GRAPH_USERS];

/// What both paths need, set by the first graph registration.
struct Core {
    platform: crate::platform::HotPlatform,
    dispatch: &'static Dispatch,
    /// Address of the arch's `return_to_handler`.
    hook: usize,
}

static CORE: spin::Once<Core> = spin::Once::new();
static STOPPED: AtomicBool = AtomicBool::new(false);
static MISMATCH: spin::Once<Mismatch> = spin::Once::new();

/// The first return that did not match its frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mismatch {
    /// The function of the top frame, whose hooked return was skipped.
    pub func: usize,
    /// The stack pointer that frame recorded at entry.
    pub expected_sp: usize,
    /// The stack pointer of the return actually seen (range: low end).
    pub found_sp: usize,
    /// Frames dropped to find the matching one.
    pub dropped: usize,
}

/// The first return mismatch, if any happened.
pub fn mismatch() -> Option<Mismatch> {
    MISMATCH.get().copied()
}

/// True once graph tracing stopped after a mismatch: no call is hooked any
/// more (hooked calls still return through their frames).
pub fn is_stopped() -> bool {
    STOPPED.load(Ordering::Relaxed)
}

/// Address of the arch's `return_to_handler`, once a graph user was
/// registered.
pub fn return_hook() -> Option<usize> {
    CORE.get().map(|c| c.hook)
}

/// Sets up the core (first registration) and claims a user slot for `g`.
pub(crate) fn attach(
    platform: &'static dyn Platform,
    dispatch: &'static Dispatch,
    hook: usize,
    g: &'static GraphOps,
) -> Option<usize> {
    CORE.call_once(|| Core {
        platform: crate::platform::HotPlatform::new(platform),
        dispatch,
        hook,
    });
    let me = g as *const GraphOps as *mut GraphOps;
    for (i, u) in USERS.iter().enumerate() {
        if u.compare_exchange(
            core::ptr::null_mut(),
            me,
            Ordering::AcqRel,
            Ordering::Relaxed,
        )
        .is_ok()
        {
            g.slot.store(i, Ordering::Release);
            return Some(i);
        }
    }
    None
}

/// Gives `g`'s slot back. Frames still carrying its bit are returned
/// without calling it (or call a later user of the slot, whose exit handler
/// must tolerate a return without a matching entry).
pub(crate) fn detach(g: &'static GraphOps) {
    if let Some(i) = g.slot() {
        USERS[i].store(core::ptr::null_mut(), Ordering::Release);
        g.slot.store(NO_SLOT, Ordering::Release);
    }
}

/// The [`FtraceFunc`](crate::ops::FtraceFunc) of every [`GraphOps::ops`]:
/// the entry half of return hooking (module docs).
extern "C" fn fgraph_entry(ip: usize, _parent_ip: usize, ops: &Ops, regs: &mut FtraceRegs) {
    // SAFETY: this function is private and only `GraphOps::new` builds an
    // `Ops` with it, as the first field of a `#[repr(C)]` `GraphOps`; the
    // `Ops` reference therefore points at the start of a live `GraphOps`.
    let g = unsafe { &*(ops as *const Ops).cast::<GraphOps>() };
    let Some(core) = CORE.get() else { return };
    let slot = g.slot.load(Ordering::Relaxed);
    if slot >= MAX_GRAPH_USERS || STOPPED.load(Ordering::Relaxed) || regs.ret_slot == 0 {
        return;
    }
    let Some(stack) = core.platform.shadow_stack() else {
        return;
    };
    let bit = 1u32 << slot;
    let retp = regs.ret_slot as *mut usize;
    // SAFETY: the trampoline set `ret_slot` to the word holding the traced
    // function's return address (its stack slot, or the saved link
    // register the stub restores), live and ours for this call.
    let cur = unsafe { retp.read_volatile() };
    let depth = stack.depth();
    if cur == core.hook && depth > 0 {
        // Another user hooked this very call already: same function, same
        // entry stack pointer, and not yet carrying our bit.
        let top = stack.read(depth - 1);
        if top.func == ip && top.sp == regs.sp && top.users & bit == 0 {
            let ent = GraphEntry {
                func: ip,
                depth: depth - 1,
                calltime: top.calltime,
                var: stack.var(slot),
            };
            if (g.entry)(g, &ent, regs) {
                stack.set_users(depth - 1, top.users | bit);
            }
            return;
        }
    }
    if depth >= stack.capacity() {
        stack.overruns.fetch_add(1, Ordering::Relaxed);
        return;
    }
    // Reserve the slot first: an interrupt arriving from here on pushes
    // above it.
    stack.set_depth(depth + 1);
    let calltime = crate::tracer::clock::now(&core.platform);
    let ent = GraphEntry {
        func: ip,
        depth,
        calltime,
        var: stack.var(slot),
    };
    if !(g.entry)(g, &ent, regs) {
        stack.set_depth(depth);
        return;
    }
    stack.write(
        depth,
        Frame {
            ret: cur,
            func: ip,
            sp: regs.sp,
            retp: regs.ret_slot,
            calltime,
            users: bit,
        },
    );
    compiler_fence(Ordering::SeqCst);
    // SAFETY: as for the read above; the frame now holds the original, so
    // the return can be undone by `ftrace_return_to_handler`.
    unsafe { retp.write_volatile(core.hook) };
}

/// The exit half, called by the arch's `return_to_handler` once a hooked
/// function returned: `sp_lo..=sp_hi` is the range the function's entry
/// stack pointer must lie in given the stack pointer it returned with
/// (x86_64 and ppc64: one value; i686 also allows a callee that popped a
/// hidden struct-return pointer), `ret0`/`ret1` the return-value registers.
/// Returns the original return address.
///
/// # Safety
///
/// Only `return_to_handler` may call it, on the task whose hooked function
/// just returned, with interrupts in any state.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftrace_return_to_handler(
    sp_lo: usize,
    sp_hi: usize,
    ret0: usize,
    ret1: usize,
) -> usize {
    let Some(core) = CORE.get() else {
        panic!("ftrace: return_to_handler reached before any graph user");
    };
    let Some(stack) = core.platform.shadow_stack() else {
        panic!("ftrace: return_to_handler reached without a shadow stack");
    };
    // The common case: the top frame is this return's.
    let top = match stack.depth().checked_sub(1) {
        Some(t) if (sp_lo..=sp_hi).contains(&stack.sp_at(t)) => t,
        _ => skipped_returns(stack, sp_lo, sp_hi),
    };
    let frame = stack.read(top);
    let depth = top + 1;
    // Read before lowering the depth (see `ShadowStack`).
    stack.set_depth(top);
    if frame.users != 0
        && let Some(guard) = core.dispatch.recursion.try_enter(&core.platform)
    {
        let rettime = crate::tracer::clock::now(&core.platform);
        let mut users = frame.users;
        while users != 0 {
            let i = users.trailing_zeros() as usize;
            users &= users - 1;
            // SAFETY: a registered user is a `&'static GraphOps` (attach).
            if let Some(g) = unsafe { USERS[i].load(Ordering::Acquire).as_ref() } {
                let r = GraphReturn {
                    func: frame.func,
                    depth: depth - 1,
                    calltime: frame.calltime,
                    rettime,
                    retval: ret0,
                    retval2: ret1,
                    var: stack.var(i),
                    cpu: guard.cpu(),
                    context: guard.context(),
                };
                (g.ret)(g, &r);
            }
        }
    }
    frame.ret
}

/// The top frame is not this return's: the hooked returns of the frames
/// above it were skipped (a `longjmp`-like unwind, or a frame put back
/// behind the tracer). Reports the first once, stops hooking, and returns
/// the index of the frame whose stack pointer matches; panics when none
/// does (the original return address is lost: never a guessed jump).
#[cold]
#[inline(never)]
fn skipped_returns(stack: &ShadowStack, sp_lo: usize, sp_hi: usize) -> usize {
    let mut depth = stack.depth();
    let mut dropped = 0;
    loop {
        if depth == 0 {
            panic!(
                "ftrace: hooked return at sp {sp_lo:#x} matches no shadow-stack frame; \
                 the original return address is lost"
            );
        }
        let f = stack.read(depth - 1);
        if (sp_lo..=sp_hi).contains(&f.sp) {
            return depth - 1;
        }
        // The hooked return of this frame was skipped: report once, stop
        // hooking, and look further down for the frame we are in.
        STOPPED.store(true, Ordering::Relaxed);
        if dropped == 0 {
            MISMATCH.call_once(|| Mismatch {
                func: f.func,
                expected_sp: f.sp,
                found_sp: sp_lo,
                dropped: 0,
            });
        }
        dropped += 1;
        depth -= 1;
    }
}

/// Maps a return address found by an unwinder back to the original when it
/// is `return_to_handler` (Linux's `ftrace_graph_ret_addr`); any other
/// address is returned unchanged.
///
/// Walk the stack innermost first and pass the same `idx` (starting at 0)
/// for every frame: each hooked return found consumes the next shadow frame
/// from the top. With `retp` (the address the unwinder read `addr` from) the
/// frame whose slot it was is used instead, which also skips hooked frames
/// the unwinder missed.
pub fn ret_addr(addr: usize, idx: &mut usize, retp: Option<usize>) -> usize {
    let Some(core) = CORE.get() else { return addr };
    if addr != core.hook {
        return addr;
    }
    let Some(stack) = core.platform.shadow_stack() else {
        return addr;
    };
    let depth = stack.depth();
    while *idx < depth {
        let f = stack.read(depth - 1 - *idx);
        *idx += 1;
        if retp.is_none_or(|p| p == f.retp) {
            return f.ret;
        }
    }
    addr
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::{MockArch, MockPlatform, RETURN_HOOK, TEXT_BASE, call_site};
    use crate::update::Ftrace;
    use alloc::vec::Vec;

    /// One thing a test user saw: (user, entry?, func, depth, retval).
    type Seen = (usize, bool, usize, usize, usize);

    /// What the two test users saw.
    static LOG: spin::Mutex<Vec<Seen>> = spin::Mutex::new(Vec::new());
    static DECLINE: AtomicBool = AtomicBool::new(false);

    fn on_entry(g: &GraphOps, e: &GraphEntry<'_>, _r: &mut FtraceRegs) -> bool {
        if DECLINE.load(Ordering::Relaxed) {
            return false;
        }
        LOG.lock().push((g.private(), true, e.func, e.depth, 0));
        true
    }
    fn on_return(g: &GraphOps, r: &GraphReturn<'_>) {
        LOG.lock()
            .push((g.private(), false, r.func, r.depth, r.retval));
    }
    static A: GraphOps = GraphOps::new(on_entry, on_return, 0);
    static B: GraphOps = GraphOps::new(on_entry, on_return, 1);

    type Ft = Ftrace<MockArch, MockPlatform>;

    /// `set_graph_notrace`, `funcgraph-irqs` off, `max_graph_depth` and
    /// `set_graph_function` in the tracer's entry handler: what is
    /// recorded, and which calls are hooked at all.
    fn graph_tracer_filters(ft: &mut Ft, p: &'static MockPlatform, sites: &[usize]) {
        use crate::ops::IpSet;
        use crate::platform::Context;
        use crate::tracer::graph::{self as tg, GraphFilters, GraphKind};
        let set = |ips: &[usize]| Some(IpSet::from_sorted(ips.into()));
        let (f0, f1, f2, f3) = (sites[0], sites[1], sites[2], sites[3]);
        let got = || -> Vec<(GraphKind, usize, u32)> {
            tg::events()
                .iter()
                .map(|e| (e.kind, e.func, e.depth))
                .collect()
        };
        let configure = |ft: &mut Ft, f: GraphFilters| {
            let _ = ft.unregister_graph(tg::ops());
            tg::configure(f).unwrap();
            tg::reset();
            ft.register_graph(tg::ops()).unwrap();
        };
        tg::init(p, 64, TEXT_BASE);
        configure(
            ft,
            GraphFilters {
                notrace: set(&[f2]),
                skip_irqs: true,
                ..GraphFilters::default()
            },
        );
        let mut s = [0x9000usize, 0x9001, 0x9002, 0x9003];
        enter(ft, f0, 1000, &mut s[0]);
        p.set_context(Context::Irq);
        enter(ft, f1, 900, &mut s[1]);
        p.set_context(Context::Normal);
        assert_eq!(
            s[1], 0x9001,
            "hardirq call not hooked with funcgraph-irqs off"
        );
        enter(ft, f2, 800, &mut s[2]);
        assert_eq!(
            s[2], RETURN_HOOK,
            "a notrace root is hooked to find its end"
        );
        enter(ft, f3, 700, &mut s[3]);
        assert_eq!(s[3], 0x9003, "nothing under a notrace root is hooked");
        assert_eq!(leave(800, 0), 0x9002);
        assert_eq!(leave(1000, 0), 0x9000);
        assert_eq!(
            got(),
            [(GraphKind::Entry, f0, 0), (GraphKind::Return, f0, 0)]
        );

        configure(
            ft,
            GraphFilters {
                max_depth: 1,
                ..GraphFilters::default()
            },
        );
        let mut s = [0x9000usize, 0x9001];
        enter(ft, f0, 1000, &mut s[0]);
        enter(ft, f1, 900, &mut s[1]);
        assert_eq!(s[1], 0x9001, "beyond max depth: not hooked");
        assert_eq!(leave(1000, 0), 0x9000);
        assert_eq!(
            got(),
            [(GraphKind::Entry, f0, 0), (GraphKind::Return, f0, 0)]
        );

        configure(
            ft,
            GraphFilters {
                functions: set(&[f1]),
                ..GraphFilters::default()
            },
        );
        let mut s = [0x9000usize, 0x9001, 0x9002];
        enter(ft, f0, 1000, &mut s[0]);
        assert_eq!(s[0], 0x9000, "outside set_graph_function: not hooked");
        enter(ft, f1, 900, &mut s[1]);
        enter(ft, f2, 800, &mut s[2]);
        assert_eq!(leave(800, 0), 0x9002);
        assert_eq!(leave(900, 0), 0x9001);
        s[2] = 0x9002;
        enter(ft, f2, 800, &mut s[2]);
        assert_eq!(s[2], 0x9002, "after the subtree: not hooked");
        assert_eq!(
            got(),
            [
                (GraphKind::Entry, f1, 0),
                (GraphKind::Entry, f2, 1),
                (GraphKind::Return, f2, 1),
                (GraphKind::Return, f1, 0)
            ]
        );
        ft.unregister_graph(tg::ops()).unwrap();
    }

    /// Enters the function of `site` with the given entry stack pointer and
    /// return slot; true when the site called the tracer.
    fn enter(ft: &Ft, site: usize, sp: usize, slot: &mut usize) -> bool {
        let mut regs = FtraceRegs::zeroed();
        regs.sp = sp;
        regs.ret_slot = slot as *mut usize as usize;
        let parent = *slot;
        call_site(ft, site, parent, &mut regs)
    }

    /// The hooked function at entry stack pointer `sp` returns `v`.
    fn leave(sp: usize, v: usize) -> usize {
        // SAFETY: simulates return_to_handler for a call hooked above.
        unsafe { ftrace_return_to_handler(sp, sp, v, 0) }
    }

    fn take_log() -> Vec<Seen> {
        core::mem::take(&mut *LOG.lock())
    }

    /// Every property of the shadow stack in one test (the graph core is
    /// global state): push/pop, one frame shared by two users, a declining
    /// handler, overruns, the unwinder helper, and last a mismatch that
    /// stops graph tracing for good.
    #[test]
    fn shadow_stack_push_pop_share_overrun_mismatch() {
        let (p, sites) = MockPlatform::with_sites(12);
        let mut ft = Ftrace::new(MockArch::new(), p, sites.iter().copied(), None).unwrap();
        assert_eq!(ft.init().failed.len(), 0);
        let (f0, f1) = (sites[0], sites[1]);
        ft.register_graph(&A).unwrap();
        assert_eq!(
            ft.register_graph(&A),
            Err(crate::update::Error::AlreadyRegistered)
        );

        // Push, pop, original return addresses back in order.
        let (mut s0, mut s1) = (0x7000usize, 0x7100usize);
        assert!(enter(&ft, f0, 1000, &mut s0));
        assert!(enter(&ft, f1, 900, &mut s1));
        assert_eq!((s0, s1), (RETURN_HOOK, RETURN_HOOK));
        assert_eq!(p.shadow.depth(), 2);
        let mut idx = 0;
        assert_eq!(ret_addr(RETURN_HOOK, &mut idx, None), 0x7100);
        assert_eq!(ret_addr(RETURN_HOOK, &mut idx, None), 0x7000);
        assert_eq!(ret_addr(0x1234, &mut idx, None), 0x1234);
        let mut idx = 0;
        assert_eq!(
            ret_addr(RETURN_HOOK, &mut idx, Some(&s0 as *const usize as usize)),
            0x7000
        );
        assert_eq!(leave(900, 7), 0x7100);
        assert_eq!(leave(1000, 8), 0x7000);
        assert_eq!(p.shadow.depth(), 0);
        assert_eq!(
            take_log(),
            [
                (0, true, f0, 0, 0),
                (0, true, f1, 1, 0),
                (0, false, f1, 1, 7),
                (0, false, f0, 0, 8)
            ]
        );

        // B too: one frame per call, both users called on return.
        ft.register_graph(&B).unwrap();
        let (mut s0, mut s1) = (0x7000usize, 0x7100usize);
        enter(&ft, f0, 1000, &mut s0);
        enter(&ft, f1, 900, &mut s1);
        assert_eq!(
            p.shadow.depth(),
            2,
            "one frame per call, whatever the users"
        );
        assert_eq!(p.shadow.frame(1).unwrap().users, 0b11);
        assert_eq!(leave(900, 3), 0x7100);
        assert_eq!(leave(1000, 4), 0x7000);
        assert_eq!(
            take_log(),
            [
                (0, true, f0, 0, 0),
                (1, true, f0, 0, 0),
                (0, true, f1, 1, 0),
                (1, true, f1, 1, 0),
                (0, false, f1, 1, 3),
                (1, false, f1, 1, 3),
                (0, false, f0, 0, 4),
                (1, false, f0, 0, 4),
            ]
        );
        ft.unregister_graph(&B).unwrap();

        // A declining handler: nothing pushed, nothing hooked.
        DECLINE.store(true, Ordering::Relaxed);
        let mut s0 = 0x7000usize;
        enter(&ft, f0, 1000, &mut s0);
        assert_eq!((s0, p.shadow.depth()), (0x7000, 0));
        DECLINE.store(false, Ordering::Relaxed);

        // Deeper than the stack: the excess calls run unhooked, counted.
        let mut slots = [0usize; 10];
        for (i, s) in slots.iter_mut().enumerate() {
            *s = 0x8000 + i;
            enter(&ft, sites[i], 2000 - 16 * i, s);
        }
        let cap = crate::mock::MOCK_STACK_DEPTH;
        assert_eq!((p.shadow.depth(), p.shadow.overruns()), (cap, 10 - cap));
        assert!(slots[..cap].iter().all(|&s| s == RETURN_HOOK));
        assert_eq!(slots[cap..], [0x8000 + cap, 0x8000 + cap + 1]);
        for i in (0..cap).rev() {
            assert_eq!(leave(2000 - 16 * i, 0), 0x8000 + i);
        }
        take_log();

        // The function_graph tracer's own filters, on the same core.
        ft.unregister_graph(&A).unwrap();
        graph_tracer_filters(&mut ft, p, &sites);
        ft.register_graph(&A).unwrap();

        // A skipped hooked return: f1's frame is abandoned, f0's return
        // still goes home; reported once; nothing is hooked afterwards.
        let (mut s0, mut s1) = (0x7000usize, 0x7100usize);
        enter(&ft, f0, 1000, &mut s0);
        enter(&ft, f1, 900, &mut s1);
        assert!(!is_stopped());
        assert_eq!(leave(1000, 0), 0x7000);
        assert_eq!(p.shadow.depth(), 0);
        assert!(is_stopped());
        assert_eq!(
            mismatch(),
            Some(Mismatch {
                func: f1,
                expected_sp: 900,
                found_sp: 1000,
                dropped: 0
            })
        );
        let mut s0 = 0x7000usize;
        enter(&ft, f0, 1000, &mut s0);
        assert_eq!((s0, p.shadow.depth()), (0x7000, 0));
        ft.unregister_graph(&A).unwrap();
        assert_eq!(ft.check_all_nops(), 0);
    }
}
