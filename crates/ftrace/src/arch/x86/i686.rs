//! The i686 backend: [`I686`], in three build modes ([`I686Mode`]).
//!
//! # Register frame
//!
//! [`FtraceRegs::gpr`](crate::regs::FtraceRegs::gpr) uses the hardware
//! register numbers ([`gpr`]): `eax ecx edx ebx esp ebp esi edi`, then
//! `eflags` at 8. The caller trampolines save and restore `eax ecx edx`
//! (the caller-saved registers; `ebp` is recorded too); the regs
//! trampolines save all eight and `eflags`, restore all but `esp`, `ebp`
//! and `eflags`, and resume at `FtraceRegs::ip`. Arguments are passed on the
//! stack (cdecl and Rust's ABI on i686), so `ARG_REGS` is empty; they are
//! found from `FtraceRegs::sp`.
//!
//! # Modes
//!
//! * [`I686Mode::Fentry`]: `-Zpatchable-function-entry=5`, as on x86_64:
//!   the site is the function's first instruction. The compiler's three
//!   nops are rewritten to the 5-byte nop at boot.
//! * [`I686Mode::Mcount`]: `-Zinstrument-mcount`: the site is the
//!   `call mcount` the compiler placed after `push %ebp; mov %esp,%ebp`
//!   (and possibly more of the prologue). `init_site` checks that it calls
//!   `mcount` and rewrites it to the nop; from then on it is patched exactly
//!   like an fentry site. The trampolines (`ftrace_mcount_caller`,
//!   `ftrace_mcount_regs_caller`) read the parent through the traced
//!   function's frame pointer (`4(%ebp)`).
//! * [`I686Mode::NoDynamic`]: the `call mcount` stays forever and `mcount`
//!   is `ftrace_nodyn_mcount`, which returns at once while the function
//!   pointer `ftrace_trace_function` is `ftrace_stub`, and otherwise builds
//!   a full frame and calls it. Sites are never written: the patch hooks
//!   only check the site and count enabled sites; `finish_batch` points
//!   `ftrace_trace_function` at [`crate::ops::ftrace_ops_list_func`] (which
//!   applies every filter, since every function calls it) while any site is
//!   enabled, back at the stub when none is. A site's "nop" state is its
//!   `call mcount` ([`expected_insn`](crate::Arch::expected_insn)).
//!
//! In both mcount modes the trampolines also keep a busy flag per CPU
//! (`ftrace_mcount_busy`, an array of
//! [`MAX_CPUS`](crate::recursion::MAX_CPUS) words): `-Zinstrument-mcount`
//! ignores the notrace attribute, so the platform functions the dispatcher
//! itself calls are instrumented; a call arriving while the running CPU's
//! flag is set returns at once instead of recursing, while other CPUs trace
//! on. `return_to_handler` sets the flag while it runs and restores it.
//!
//! # What the kernel provides (i686, every mode)
//!
//! * `ftrace_cpu_index`: a global function, reachable with `call`, that
//!   returns the running CPU's index (the same as `Platform::cpu_id`) in
//!   `%eax` and clobbers no other register; it must be asm, never
//!   instrumented, need nothing but its return address on the stack, and
//!   work in any context from the moment a site can be enabled (the test
//!   kernel: `mov %gs:0, %eax; ret`, its per-CPU segment). An index at or
//!   above `MAX_CPUS` makes every mcount entry return untraced.
//! * Interrupt and exception entries that may run traced code should save
//!   the running CPU's flag (`ftrace_mcount_busy_ptr` returns its address
//!   in `%eax`, clobbering only the flags), clear it, and restore it before
//!   returning, so that an interrupt inside a callback is still traced (in
//!   its own context of the recursion guard); the test kernel's entries do
//!   (`kernel/src/arch/x86/trap_32.S`). Without that, such calls are
//!   dropped silently, never recursed into.
//!
//! # Per-callback trampolines
//!
//! `ftrace_32.S` assembles the pool of [`crate::tramp`] for both entry
//! conventions: per slot, copies of `ftrace_caller` / `ftrace_regs_caller`
//! for fentry sites and of the two mcount callers (busy flag, parent through
//! `%ebp`, prologue unwinding on a redirect) for mcount sites, each passing
//! its slot's callback to `ftrace_ops_assist_func` with a plain call.
//! `I686::new` hands out the set matching the build: an mcount site is
//! patched nop/call exactly like an fentry site, so only the entry
//! convention has to match. NoDynamic builds have none: their sites always
//! call `mcount`, which can only dispatch through the list, so
//! [`ops_trampoline`](crate::Arch::ops_trampoline) returns `None`.
//!
//! A redirect (`FtraceRegs::ip` changed) from an mcount site must undo the
//! part of the prologue that ran before the site: the regs trampoline calls
//! `ftrace_i686_mcount_unwind`, which restores `ebx`/`esi`/`edi` pushed
//! after `mov %esp,%ebp` and `ebp`, and resumes at the new ip with the
//! stack pointer the traced function had at entry.

use core::sync::atomic::{AtomicUsize, Ordering};

use super::x86_64::{Common, Trampolines};
use super::{NOP3_I686_COMPILER, NOP5, SITE_LEN, encode_call};
use crate::arch::{Arch, Insn, PatchError, SiteError, Trampoline, read_insn, replace_insn};
use crate::ops::Ops;
use crate::platform::Platform;
use crate::record::Record;
use crate::tramp::OpsTrampPool;

/// Indices into [`FtraceRegs::gpr`](crate::regs::FtraceRegs::gpr) on i686.
pub mod gpr {
    #![allow(missing_docs, reason = "register names")]
    pub const EAX: usize = 0;
    pub const ECX: usize = 1;
    pub const EDX: usize = 2;
    pub const EBX: usize = 3;
    pub const ESP: usize = 4;
    pub const EBP: usize = 5;
    pub const ESI: usize = 6;
    pub const EDI: usize = 7;
    pub const EFLAGS: usize = 8;
}

/// How the kernel was instrumented (a build configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum I686Mode {
    /// 5-byte patchable entry before the prologue.
    Fentry,
    /// `call mcount` after the prologue, patched nop/call; `mcount` is the
    /// address of the `mcount` symbol the compiler calls.
    Mcount {
        /// Address of `mcount`.
        mcount: usize,
    },
    /// `call mcount` left in place; `mcount` tests a function pointer.
    NoDynamic {
        /// Address of `mcount`.
        mcount: usize,
    },
}

/// The i686 backend (module docs).
#[derive(Debug)]
pub struct I686 {
    c: Common,
    mode: I686Mode,
    /// NoDynamic: enabled sites after the last committed batch.
    enabled: AtomicUsize,
    /// NoDynamic: enabled sites including the batch being built.
    pending: AtomicUsize,
    /// NoDynamic: where the count is published (`ftrace_trace_function`'s
    /// address and the values it takes), none on the host.
    nodyn: Option<NoDynPointer>,
}

/// The function pointer `ftrace_nodyn_mcount` tests.
#[derive(Debug, Clone, Copy)]
pub struct NoDynPointer {
    /// Address of the pointer variable.
    pub slot: &'static AtomicUsize,
    /// Its value while no site is enabled (`ftrace_stub`).
    pub stub: usize,
    /// Its value while some site is enabled (`ftrace_ops_list_func`).
    pub func: usize,
}

impl I686 {
    /// A backend for `mode` with trampolines at the given addresses (host
    /// tests; the kernel uses `I686::new`).
    pub fn with_trampolines(
        mode: I686Mode,
        tramps: Trampolines,
        nodyn: Option<NoDynPointer>,
    ) -> Self {
        I686 {
            c: Common::new(tramps),
            mode,
            enabled: AtomicUsize::new(0),
            pending: AtomicUsize::new(0),
            nodyn,
        }
    }

    /// The backend over the assembled trampolines of `ftrace_32.S`,
    /// including the per-callback trampolines of `mode`'s entry convention
    /// (none for NoDynamic).
    #[cfg(all(target_arch = "x86", target_os = "none"))]
    pub fn new(mode: I686Mode) -> Self {
        let (tramps, nodyn) = asm::trampolines(mode);
        let this = Self::with_trampolines(mode, tramps, nodyn);
        match asm::ops_pool(mode) {
            Some(pool) => this.with_ops_pool(pool),
            None => this,
        }
    }

    /// The same backend handing out per-callback trampolines from `pool`
    /// ([`Arch::ops_trampoline`]); their entry convention must match the
    /// mode's sites. Ignored in NoDynamic mode.
    pub fn with_ops_pool(mut self, pool: OpsTrampPool) -> Self {
        self.c.pool = Some(pool);
        self
    }

    /// The build mode.
    pub fn mode(&self) -> I686Mode {
        self.mode
    }

    /// NoDynamic: number of enabled sites.
    pub fn nodyn_enabled(&self) -> usize {
        self.enabled.load(Ordering::SeqCst)
    }

    fn mcount(&self) -> Option<usize> {
        match self.mode {
            I686Mode::Fentry => None,
            I686Mode::Mcount { mcount } | I686Mode::NoDynamic { mcount } => Some(mcount),
        }
    }

    fn is_nodyn(&self) -> bool {
        matches!(self.mode, I686Mode::NoDynamic { .. })
    }

    /// NoDynamic patch hooks: check that the site still calls `mcount` and
    /// account for the change.
    fn nodyn_change(&self, p: &dyn Platform, rec: &Record, delta: isize) -> Result<(), PatchError> {
        let want = self.expected_insn(rec, None)?;
        let found = read_insn(p, rec.ip, SITE_LEN)?;
        if found != want {
            return Err(PatchError::Mismatch {
                expected: want,
                found,
            });
        }
        if delta > 0 {
            self.pending.fetch_add(1, Ordering::SeqCst);
        } else if delta < 0 {
            self.pending.fetch_sub(1, Ordering::SeqCst);
        }
        Ok(())
    }
}

// SAFETY:
// 1. As on x86_64: 5-byte nop / `call rel32` sites changed only through the
//    int3 protocol; NoDynamic never writes a site.
// 2. Sites are read and compared before anything is queued or written.
// 3. ftrace_32.S builds the documented frame and calls the patched inner
//    call (or, NoDynamic, `ftrace_trace_function`) with
//    (ip, parent_ip, FTRACE_TRACE_OP, regs) on the stack (cdecl).
// 4. ARG_REGS is empty.
unsafe impl Arch for I686 {
    const SITE_LEN: usize = SITE_LEN;
    const ARG_REGS: &'static [usize] = &[];
    const CPU_LOCAL: bool = true;

    fn nop_insn(&self) -> Insn {
        Insn::new(&NOP5)
    }

    fn call_insn(&self, site: usize, target: usize) -> Result<Insn, PatchError> {
        encode_call(site, target)
    }

    fn expected_insn(&self, rec: &Record, target: Option<usize>) -> Result<Insn, PatchError> {
        match (self.mode, target) {
            // The call stays whatever the state.
            (I686Mode::NoDynamic { mcount }, _) => encode_call(rec.ip, mcount),
            (_, None) => Ok(self.nop_insn()),
            (_, Some(t)) => encode_call(rec.ip, t),
        }
    }

    /// Fentry: rewrites the compiler's three nops to the 5-byte nop. Mcount:
    /// checks the site calls `mcount` and rewrites it to the nop. NoDynamic:
    /// only checks. Runs at boot before anything executes the sites
    /// concurrently, so it writes directly.
    fn init_site(&self, p: &dyn Platform, rec: &mut Record) -> Result<(), PatchError> {
        let found = read_insn(p, rec.ip, SITE_LEN)?;
        let nop = self.nop_insn();
        match self.mcount() {
            None if found == nop => Ok(()),
            None if found.as_bytes() == NOP3_I686_COMPILER => replace_insn(p, rec.ip, &found, &nop),
            None => Err(PatchError::Mismatch {
                expected: nop,
                found,
            }),
            Some(m) => {
                let call = encode_call(rec.ip, m)?;
                if found != call {
                    Err(PatchError::Mismatch {
                        expected: call,
                        found,
                    })
                } else if self.is_nodyn() {
                    Ok(())
                } else {
                    replace_insn(p, rec.ip, &found, &nop)
                }
            }
        }
    }

    #[inline]
    fn make_nop(
        &self,
        p: &dyn Platform,
        rec: &Record,
        old_target: usize,
    ) -> Result<(), PatchError> {
        if self.is_nodyn() {
            return self.nodyn_change(p, rec, -1);
        }
        self.c.queue_site(p, rec.ip, old_target, 0)
    }

    #[inline]
    fn make_call(&self, p: &dyn Platform, rec: &Record, target: usize) -> Result<(), PatchError> {
        if self.is_nodyn() {
            return self.nodyn_change(p, rec, 1);
        }
        self.c.queue_site(p, rec.ip, 0, target)
    }

    #[inline]
    fn modify_call(
        &self,
        p: &dyn Platform,
        rec: &Record,
        old: usize,
        new: usize,
    ) -> Result<(), PatchError> {
        if self.is_nodyn() {
            return self.nodyn_change(p, rec, 0);
        }
        self.c.queue_site(p, rec.ip, old, new)
    }

    fn begin_batch(&self, p: &dyn Platform) {
        self.c.begin(p);
        self.pending
            .store(self.enabled.load(Ordering::SeqCst), Ordering::SeqCst);
    }

    const WANTS_BATCH_SIZE: bool = true;

    fn batch_size_hint(&self, changes: usize) {
        if !self.is_nodyn() {
            self.c.batch.reserve(changes);
        }
    }

    fn finish_batch(&self, p: &dyn Platform) -> Result<(), SiteError> {
        if self.is_nodyn() {
            let n = self.pending.load(Ordering::SeqCst);
            self.enabled.store(n, Ordering::SeqCst);
            if let Some(ptr) = self.nodyn {
                ptr.slot
                    .store(if n > 0 { ptr.func } else { ptr.stub }, Ordering::SeqCst);
            }
            p.sync_cores();
            return Ok(());
        }
        self.c.finish(p)
    }

    fn abort_batch(&self, p: &dyn Platform) {
        self.c.batch.clear();
        self.pending
            .store(self.enabled.load(Ordering::SeqCst), Ordering::SeqCst);
        p.sync_cores();
    }

    fn update_ftrace_func(
        &self,
        p: &dyn Platform,
        which: Trampoline,
        func: usize,
    ) -> Result<(), PatchError> {
        if self.is_nodyn() {
            // ftrace_nodyn_mcount always calls the list dispatcher.
            return Ok(());
        }
        self.c.update_ftrace_func(p, which, func)
    }

    fn update_ftrace_funcs(
        &self,
        p: &dyn Platform,
        func: usize,
    ) -> Result<(), (Trampoline, PatchError)> {
        if self.is_nodyn() {
            // ftrace_nodyn_mcount always calls the list dispatcher.
            return Ok(());
        }
        self.c.update_ftrace_funcs(p, func)
    }

    fn trampoline_addr(&self, which: Trampoline) -> usize {
        self.c.trampoline_addr(which)
    }

    /// The pool trampoline of `ops`' slot (assigned on first request; the
    /// full-frame one when `ops` needs registers); `None` without a pool,
    /// when it is exhausted, and always in NoDynamic mode, whose sites are
    /// never patched. Every target fits a `call rel32` on i686.
    fn ops_trampoline(&self, ops: &Ops) -> Option<usize> {
        if self.is_nodyn() {
            return None;
        }
        self.c.pool.as_ref()?.trampoline(ops)
    }

    /// NoDynamic: every instrumented function calls `mcount`, recorded or
    /// not.
    fn calls_unrecorded(&self) -> bool {
        self.is_nodyn()
    }

    /// `return_to_handler` of `ftrace_32.S`, the same in every mode: fentry
    /// and mcount trampolines alike set `ret_slot` and `sp` (kernel builds;
    /// none on the host).
    fn return_hook(&self) -> Option<usize> {
        #[cfg(all(target_arch = "x86", target_os = "none"))]
        return Some(asm::return_hook());
        #[cfg(not(all(target_arch = "x86", target_os = "none")))]
        None
    }
}

/// Callee-saved registers a frame-pointer prologue pushed right after
/// `push %ebp; mov %esp,%ebp`, in push order (so the `k`-th is saved at
/// `-4 * (k + 1)(%ebp)`), as [`gpr`] indices.
///
/// `before_site` holds the bytes preceding an mcount site (at most
/// [`PROLOGUE_WINDOW`]); the prologue is the last `55 89 e5` in it. `None`
/// when there is none.
pub fn prologue_pushes(before_site: &[u8]) -> Option<([usize; 3], usize)> {
    let start = before_site
        .windows(3)
        .rposition(|w| w == [0x55, 0x89, 0xe5])?;
    let mut regs = [0; 3];
    let mut n = 0;
    for &b in &before_site[start + 3..] {
        let r = match b {
            0x53 => gpr::EBX,
            0x56 => gpr::ESI,
            0x57 => gpr::EDI,
            _ => break,
        };
        if n == regs.len() {
            break;
        }
        regs[n] = r;
        n += 1;
    }
    Some((regs, n))
}

/// How far before an mcount site its function's prologue is searched.
pub const PROLOGUE_WINDOW: usize = 64;

/// Called by the mcount regs trampolines when a callback changed
/// `FtraceRegs::ip`: rewrites `regs` to the traced function's state at
/// entry (callee-saved registers its prologue pushed, its caller's `%ebp`,
/// `sp` = the address of its return address), so that the trampoline can
/// enter the new ip as if the caller had called it.
///
/// # Safety
/// `regs` is the trampoline's full frame, whose `gpr[EBP]` is the traced
/// function's frame pointer, and `ret` (= site + 5) lies in kernel text
/// with [`PROLOGUE_WINDOW`] readable bytes before the site.
#[cfg(all(target_arch = "x86", target_os = "none"))]
#[unsafe(no_mangle)]
unsafe extern "C" fn ftrace_i686_mcount_unwind(regs: *mut crate::regs::FtraceRegs, ret: usize) {
    // SAFETY: the trampoline passes its own frame, used by nobody else now.
    let regs = unsafe { &mut *regs };
    let site = ret - SITE_LEN;
    // SAFETY: text before the site is mapped (caller's contract).
    let before = unsafe {
        core::slice::from_raw_parts((site - PROLOGUE_WINDOW) as *const u8, PROLOGUE_WINDOW)
    };
    let ebp = regs.gpr[gpr::EBP];
    if let Some((pushed, n)) = prologue_pushes(before) {
        for (k, &r) in pushed[..n].iter().enumerate() {
            // SAFETY: the prologue saved these words below the frame
            // pointer; the frame is live (we were called from inside it).
            regs.gpr[r] = unsafe { core::ptr::read((ebp - 4 * (k + 1)) as *const usize) };
        }
    }
    // SAFETY: `push %ebp` saved the caller's frame pointer at 0(%ebp).
    regs.gpr[gpr::EBP] = unsafe { core::ptr::read(ebp as *const usize) };
    regs.sp = ebp + 4;
    regs.gpr[gpr::ESP] = ebp + 4;
}

/// The assembled trampolines (kernel builds only).
#[cfg(all(target_arch = "x86", target_os = "none"))]
mod asm {
    use core::mem::size_of;
    use core::sync::atomic::AtomicUsize;

    use super::{I686Mode, NoDynPointer, Trampolines, gpr};
    use crate::regs::{
        FREGS_FULL, FREGS_SIZE, FtraceRegs, OFF_FLAGS, OFF_GPR, OFF_IP, OFF_PARENT_IP,
        OFF_RET_SLOT, OFF_SP,
    };
    use crate::tramp::{OPS_TRAMP_SLOTS, OpsSlots, OpsTrampPool};

    /// Bytes reserved below the trampoline's `%ebp` besides the 16 bytes
    /// of outgoing arguments: the `FtraceRegs`, two words of the fast
    /// path (`FAST_GUARDED_CALL_32`) and the mcount entries' busy-flag
    /// address, rounded to 16 (the trampolines also align `%esp` down to
    /// 16 for the call).
    const FRAME: usize = (FREGS_SIZE + 12).next_multiple_of(16);

    const fn g(i: usize) -> usize {
        OFF_GPR + i * size_of::<usize>()
    }

    core::arch::global_asm!(
        include_str!("ftrace_32.S"),
        frame = const FRAME,
        ops_func = const crate::ops::OPS_OFF_FUNC,
        ops_state = const crate::ops::OPS_OFF_STATE,
        ops_enabled = const crate::ops::OPS_ENABLED_BIT,
        ops_self = const crate::ops::OPS_STATE_SELF_GUARDED,
        off_ip = const OFF_IP,
        off_parent = const OFF_PARENT_IP,
        off_sp = const OFF_SP,
        off_ret_slot = const OFF_RET_SLOT,
        off_flags = const OFF_FLAGS,
        off_spare = const core::mem::offset_of!(FtraceRegs, spare),
        fregs_full = const FREGS_FULL,
        fregs_guarded = const crate::regs::FREGS_GUARDED,
        eax = const g(gpr::EAX),
        ecx = const g(gpr::ECX),
        edx = const g(gpr::EDX),
        ebx = const g(gpr::EBX),
        esp = const g(gpr::ESP),
        ebp = const g(gpr::EBP),
        esi = const g(gpr::ESI),
        edi = const g(gpr::EDI),
        eflags = const g(gpr::EFLAGS),
        nslots = const OPS_TRAMP_SLOTS,
        max_cpus = const crate::recursion::MAX_CPUS,
        max_ctx = const crate::platform::Context::COUNT - 1,
        priv0 = const 16 + FREGS_SIZE,
        priv1 = const 16 + FREGS_SIZE + 4,
        priv2 = const 16 + FREGS_SIZE + 8,
        word_stride = const crate::recursion::layout::WORD_STRIDE,
        off_bits = const crate::recursion::layout::OFF_BITS,
        off_epoch = const crate::recursion::layout::OFF_EPOCH,
        off_quiet = const crate::recursion::layout::OFF_QUIET,
        options(att_syntax)
    );

    unsafe extern "C" {
        fn ftrace_caller();
        fn ftrace_regs_caller();
        fn ftrace_mcount_caller();
        fn ftrace_mcount_regs_caller();
        fn ftrace_stub();
        fn return_to_handler();
        static ftrace_call: u8;
        static ftrace_regs_call: u8;
        static ftrace_mcount_call: u8;
        static ftrace_mcount_regs_call: u8;
        static ftrace_trace_function: AtomicUsize;
        /// The pool's entries, four groups of one per slot: fentry, fentry
        /// full frame, mcount, mcount full frame.
        static ftrace_ops_tramps: [usize; 4 * OPS_TRAMP_SLOTS];
    }

    /// The pool for `mode`'s sites over [`OpsSlots::global`]
    /// (`ftrace_tramp_ops`); none for NoDynamic.
    pub(super) fn ops_pool(mode: I686Mode) -> Option<OpsTrampPool> {
        let group = match mode {
            I686Mode::Fentry => 0,
            I686Mode::Mcount { .. } => 2,
            I686Mode::NoDynamic { .. } => return None,
        };
        // SAFETY: `ftrace_ops_tramps` is an initialised, read-only table of
        // 4 * OPS_TRAMP_SLOTS addresses in ftrace_32.S.
        let t: [usize; 4 * OPS_TRAMP_SLOTS] = unsafe { ftrace_ops_tramps };
        let at = |g: usize| -> [usize; OPS_TRAMP_SLOTS] {
            core::array::from_fn(|i| t[g * OPS_TRAMP_SLOTS + i])
        };
        Some(OpsTrampPool::new(
            OpsSlots::global(),
            at(group),
            at(group + 1),
        ))
    }

    pub(super) fn return_hook() -> usize {
        return_to_handler as *const () as usize
    }

    pub(super) fn trampolines(mode: I686Mode) -> (Trampolines, Option<NoDynPointer>) {
        let stub = ftrace_stub as *const () as usize;
        let fentry = Trampolines {
            caller: ftrace_caller as *const () as usize,
            regs_caller: ftrace_regs_caller as *const () as usize,
            caller_call: core::ptr::addr_of!(ftrace_call) as usize,
            regs_call: core::ptr::addr_of!(ftrace_regs_call) as usize,
            stub,
        };
        let mcount = Trampolines {
            caller: ftrace_mcount_caller as *const () as usize,
            regs_caller: ftrace_mcount_regs_caller as *const () as usize,
            caller_call: core::ptr::addr_of!(ftrace_mcount_call) as usize,
            regs_call: core::ptr::addr_of!(ftrace_mcount_regs_call) as usize,
            stub,
        };
        match mode {
            I686Mode::Fentry => (fentry, None),
            I686Mode::Mcount { .. } => (mcount, None),
            I686Mode::NoDynamic { .. } => {
                // SAFETY: `ftrace_trace_function` is a word-sized, aligned
                // variable of ftrace_32.S's data, only accessed atomically.
                let slot: &'static AtomicUsize =
                    unsafe { &*core::ptr::addr_of!(ftrace_trace_function) };
                let func = crate::ops::list_func_addr();
                (mcount, Some(NoDynPointer { slot, stub, func }))
            }
        }
    }
}
