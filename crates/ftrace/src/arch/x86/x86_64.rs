//! The x86_64 backend: [`X86_64`].
//!
//! # Register frame
//!
//! [`FtraceRegs::gpr`](crate::regs::FtraceRegs::gpr) uses the hardware
//! register numbers ([`gpr`]): `rax rcx rdx rbx rsp rbp rsi rdi r8..r15`,
//! then `rflags` at 16. The caller trampoline saves `rax rcx rdx rsi rdi
//! r8 r9` (the argument registers and `rax`, a variadic call's vector
//! count) and restores them, so a callback may change arguments (the
//! callee-saved registers survive the callback by the ABI, and `r10`/`r11`
//! carry nothing into a function entry); the regs trampoline saves all sixteen
//! (the `rsp` slot holds the stack pointer at function entry, i.e. the
//! address of the return address) and `rflags`, restores all but `rsp` and
//! `rflags`, and resumes at `FtraceRegs::ip`. `ARG_REGS` is the System V
//! order `rdi rsi rdx rcx r8 r9`.
//!
//! # Trampolines (`ftrace_64.S`)
//!
//! `ftrace_caller` and `ftrace_regs_caller` are entered by the site's
//! `call`: `(%rsp)` is `site + 5`, `8(%rsp)` the traced function's return
//! address. Each one's inner `call` (labels `ftrace_call` and
//! `ftrace_regs_call`) is rewritten by
//! [`update_ftrace_func`](crate::Arch::update_ftrace_func) with the `int3`
//! protocol, starting as a call to `ftrace_stub`.
//!
//! # Per-callback trampolines
//!
//! The same macro assembles a pool of [`OPS_TRAMP_SLOTS`](crate::tramp::OPS_TRAMP_SLOTS) slots
//! ([`crate::tramp`]), each with a copy of `ftrace_caller`
//! (`ftrace_ops_tramp_<i>`) and one of `ftrace_regs_caller`
//! (`ftrace_ops_regs_tramp_<i>`) that pass the callback of slot `i`
//! (`ftrace_tramp_ops[i]`) to `ftrace_ops_assist_func` with a plain `call`.
//! [`ops_trampoline`](crate::Arch::ops_trampoline) hands them out; a site
//! wanted by one callback calls that callback's entry with the same
//! `call rel32` (and the same `int3` protocol) as any other target.

use core::sync::atomic::{AtomicUsize, Ordering};

use super::{
    Batch, NOP3_I686_COMPILER, NOP5, NOP5_X86_64_COMPILER, SITE_LEN, call_word, decode_call,
    encode_call, pack5, poke_one,
};
use crate::arch::{Arch, Insn, PatchError, SiteError, Trampoline, read_insn, replace_insn};
use crate::ops::Ops;
use crate::platform::Platform;
use crate::record::Record;
#[cfg(all(target_arch = "x86_64", target_os = "none"))]
use crate::tramp::OPS_TRAMP_SLOTS;
use crate::tramp::OpsTrampPool;

/// Indices into [`FtraceRegs::gpr`](crate::regs::FtraceRegs::gpr) on x86_64.
pub mod gpr {
    #![allow(missing_docs, reason = "register names")]
    pub const RAX: usize = 0;
    pub const RCX: usize = 1;
    pub const RDX: usize = 2;
    pub const RBX: usize = 3;
    pub const RSP: usize = 4;
    pub const RBP: usize = 5;
    pub const RSI: usize = 6;
    pub const RDI: usize = 7;
    pub const R8: usize = 8;
    pub const R9: usize = 9;
    pub const R10: usize = 10;
    pub const R11: usize = 11;
    pub const R12: usize = 12;
    pub const R13: usize = 13;
    pub const R14: usize = 14;
    pub const R15: usize = 15;
    pub const RFLAGS: usize = 16;
}

/// Addresses of the trampolines and of their patchable inner calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trampolines {
    /// `ftrace_caller`.
    pub caller: usize,
    /// `ftrace_regs_caller`.
    pub regs_caller: usize,
    /// The inner call of `ftrace_caller` (`ftrace_call`).
    pub caller_call: usize,
    /// The inner call of `ftrace_regs_caller` (`ftrace_regs_call`).
    pub regs_call: usize,
    /// `ftrace_stub`: the inner calls' initial target.
    pub stub: usize,
}

/// Logic shared by [`X86_64`] and [`super::I686`]: the batch and the
/// trampolines' current inner-call targets.
#[derive(Debug)]
pub(super) struct Common {
    pub(super) tramps: Trampolines,
    pub(super) batch: Batch,
    /// Current targets of `caller_call` and `regs_call`.
    inner: [AtomicUsize; 2],
    /// The per-callback trampolines, when the backend has them.
    pub(super) pool: Option<OpsTrampPool>,
    /// What the batch's platform lets us read (and write) in line.
    text: crate::platform::TextCache,
}

impl Common {
    pub(super) fn new(tramps: Trampolines) -> Self {
        Common {
            tramps,
            batch: Batch::new(),
            inner: [AtomicUsize::new(tramps.stub), AtomicUsize::new(tramps.stub)],
            pool: None,
            text: crate::platform::TextCache::new(),
        }
    }

    /// Starts a batch for `p`.
    pub(super) fn begin(&self, p: &dyn Platform) {
        self.batch.clear();
        self.text.begin(p);
    }

    pub(super) fn trampoline_addr(&self, which: Trampoline) -> usize {
        match which {
            Trampoline::Caller => self.tramps.caller,
            Trampoline::RegsCaller => self.tramps.regs_caller,
        }
    }

    /// Queues the record site `ip`'s change from calling `old` to calling
    /// `new` (0: the nop), checking the old bytes.
    #[inline(always)]
    pub(super) fn queue_site(
        &self,
        p: &dyn Platform,
        ip: usize,
        old: usize,
        new: usize,
    ) -> Result<(), PatchError> {
        let word = |t| {
            if t == 0 {
                Ok(pack5(NOP5))
            } else {
                call_word(ip, t)
            }
        };
        let mut found = [0u8; SITE_LEN];
        // SAFETY: `ip` is a record site: 5 bytes of mapped kernel text; `p`
        // is the batch's platform.
        unsafe { self.text.writer(p).read(ip, &mut found) }.map_err(|_| PatchError::ReadFault)?;
        self.batch
            .queue_found(ip, pack5(found), word(old)?, word(new)?)
    }

    pub(super) fn finish(&self, p: &dyn Platform) -> Result<(), SiteError> {
        // SAFETY: only record sites (5-byte nops or calls, checked when
        // queued) are in the batch, and the embedding kernel's #BP handler
        // calls `poke_int3_handler` (documented requirement of the backend).
        unsafe { self.batch.commit(p) }
    }

    pub(super) fn update_ftrace_func(
        &self,
        p: &dyn Platform,
        which: Trampoline,
        func: usize,
    ) -> Result<(), PatchError> {
        let (site, slot) = match which {
            Trampoline::Caller => (self.tramps.caller_call, &self.inner[0]),
            Trampoline::RegsCaller => (self.tramps.regs_call, &self.inner[1]),
        };
        let cur = slot.load(Ordering::SeqCst);
        if cur == func {
            return Ok(());
        }
        let old = encode_call(site, cur)?;
        let new = encode_call(site, func)?;
        // SAFETY: `site` is the trampoline's 5-byte inner call (an exported
        // label of the .S file, or the test's simulated text), the #BP
        // handler requirement holds as for site batches, and the engine
        // never calls this inside a batch.
        unsafe { poke_one(p, site, &old, &new) }?;
        slot.store(func, Ordering::SeqCst);
        Ok(())
    }

    /// Both inner calls at once: one batch of the `int3` protocol.
    pub(super) fn update_ftrace_funcs(
        &self,
        p: &dyn Platform,
        func: usize,
    ) -> Result<(), (Trampoline, PatchError)> {
        let both = [
            (Trampoline::Caller, self.tramps.caller_call, &self.inner[0]),
            (
                Trampoline::RegsCaller,
                self.tramps.regs_call,
                &self.inner[1],
            ),
        ];
        // The engine never calls this inside a batch: the site queue is
        // free.
        let b = &self.batch;
        b.clear();
        for &(which, site, slot) in &both {
            let cur = slot.load(Ordering::SeqCst);
            if cur == func {
                continue;
            }
            let queued = encode_call(site, cur).and_then(|old| {
                let new = encode_call(site, func)?;
                // SAFETY: as in `update_ftrace_func`.
                unsafe { b.queue(p, site, &old, &new) }
            });
            if let Err(e) = queued {
                b.clear();
                return Err((which, e));
            }
        }
        // SAFETY: as in `update_ftrace_func`.
        if let Err(e) = unsafe { b.commit(p) } {
            // Whatever each call holds now is what it calls.
            for &(which, _, slot) in &both {
                if let Some(t) = self.inner_target(p, which) {
                    slot.store(t, Ordering::SeqCst);
                }
            }
            let which = if e.ip == self.tramps.regs_call {
                Trampoline::RegsCaller
            } else {
                Trampoline::Caller
            };
            return Err((which, e.error));
        }
        for &(_, _, slot) in &both {
            slot.store(func, Ordering::SeqCst);
        }
        Ok(())
    }

    /// The inner call's current target (for tests and diagnostics).
    pub(super) fn inner_target(&self, p: &dyn Platform, which: Trampoline) -> Option<usize> {
        let site = match which {
            Trampoline::Caller => self.tramps.caller_call,
            Trampoline::RegsCaller => self.tramps.regs_call,
        };
        let insn = read_insn(p, site, SITE_LEN).ok()?;
        decode_call(site, insn.as_bytes())
    }
}

/// The x86_64 backend (module docs).
#[derive(Debug)]
pub struct X86_64 {
    c: Common,
}

impl X86_64 {
    /// A backend for trampolines at the given addresses (host tests use
    /// simulated text; the kernel uses `X86_64::new`).
    pub fn with_trampolines(tramps: Trampolines) -> Self {
        X86_64 {
            c: Common::new(tramps),
        }
    }

    /// The backend over the assembled trampolines of `ftrace_64.S`,
    /// including the pool of per-callback trampolines.
    #[cfg(all(target_arch = "x86_64", target_os = "none"))]
    pub fn new() -> Self {
        Self::with_trampolines(asm::trampolines()).with_ops_pool(asm::ops_pool())
    }

    /// The same backend handing out per-callback trampolines from `pool`
    /// ([`Arch::ops_trampoline`]); without one every site uses the shared
    /// trampolines.
    pub fn with_ops_pool(mut self, pool: OpsTrampPool) -> Self {
        self.c.pool = Some(pool);
        self
    }

    /// Target of trampoline `which`'s inner call, read from the text.
    pub fn inner_target(&self, p: &dyn Platform, which: Trampoline) -> Option<usize> {
        self.c.inner_target(p, which)
    }
}

#[cfg(all(target_arch = "x86_64", target_os = "none"))]
impl Default for X86_64 {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY:
// 1. Sites hold the 5-byte nop or `call rel32`; every change goes through the
//    int3 protocol (`Batch::commit`), so each intermediate state is the old
//    instruction, an int3 the #BP helper emulates, or the new instruction.
// 2. `Batch::queue` reads and compares before queuing; only the 5 bytes of
//    the site (or of a trampoline's inner call) are written.
// 3. ftrace_64.S builds the documented frame and calls the patched inner
//    call with (ip, parent_ip, FTRACE_TRACE_OP, regs).
// 4. ARG_REGS indexes slots both trampolines save.
unsafe impl Arch for X86_64 {
    const SITE_LEN: usize = SITE_LEN;
    const ARG_REGS: &'static [usize] = &[gpr::RDI, gpr::RSI, gpr::RDX, gpr::RCX, gpr::R8, gpr::R9];
    const CPU_LOCAL: bool = true;

    fn nop_insn(&self) -> Insn {
        Insn::new(&NOP5)
    }

    fn call_insn(&self, site: usize, target: usize) -> Result<Insn, PatchError> {
        encode_call(site, target)
    }

    /// Accepts the canonical nop and rewrites the compiler's `0f 1f 44 00
    /// 08` (and, harmlessly, i686's three nops) to it. Runs at boot before
    /// anything executes the site concurrently, so it writes directly.
    fn init_site(&self, p: &dyn Platform, rec: &mut Record) -> Result<(), PatchError> {
        let found = read_insn(p, rec.ip, SITE_LEN)?;
        let nop = self.nop_insn();
        if found == nop {
            Ok(())
        } else if found.as_bytes() == NOP5_X86_64_COMPILER || found.as_bytes() == NOP3_I686_COMPILER
        {
            replace_insn(p, rec.ip, &found, &nop)
        } else {
            Err(PatchError::Mismatch {
                expected: nop,
                found,
            })
        }
    }

    #[inline]
    fn make_nop(
        &self,
        p: &dyn Platform,
        rec: &Record,
        old_target: usize,
    ) -> Result<(), PatchError> {
        self.c.queue_site(p, rec.ip, old_target, 0)
    }

    #[inline]
    fn make_call(&self, p: &dyn Platform, rec: &Record, target: usize) -> Result<(), PatchError> {
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
        self.c.queue_site(p, rec.ip, old, new)
    }

    fn begin_batch(&self, p: &dyn Platform) {
        self.c.begin(p);
    }

    const WANTS_BATCH_SIZE: bool = true;

    fn batch_size_hint(&self, changes: usize) {
        self.c.batch.reserve(changes);
    }

    fn finish_batch(&self, p: &dyn Platform) -> Result<(), SiteError> {
        self.c.finish(p)
    }

    fn abort_batch(&self, p: &dyn Platform) {
        // Nothing was written yet: queued changes are simply dropped.
        self.c.batch.clear();
        p.sync_cores();
    }

    fn update_ftrace_func(
        &self,
        p: &dyn Platform,
        which: Trampoline,
        func: usize,
    ) -> Result<(), PatchError> {
        self.c.update_ftrace_func(p, which, func)
    }

    fn update_ftrace_funcs(
        &self,
        p: &dyn Platform,
        func: usize,
    ) -> Result<(), (Trampoline, PatchError)> {
        self.c.update_ftrace_funcs(p, func)
    }

    fn trampoline_addr(&self, which: Trampoline) -> usize {
        self.c.trampoline_addr(which)
    }

    /// The pool trampoline of `ops`' slot (assigned on first request), the
    /// full-frame one when `ops` needs registers; `None` without a pool or
    /// when it is exhausted. Any entry is reachable by `call rel32`: the
    /// pool is in the kernel's text like the shared trampolines.
    fn ops_trampoline(&self, ops: &Ops) -> Option<usize> {
        self.c.pool.as_ref()?.trampoline(ops)
    }

    /// `return_to_handler` of `ftrace_64.S` (kernel builds; none on the
    /// host).
    fn return_hook(&self) -> Option<usize> {
        #[cfg(all(target_arch = "x86_64", target_os = "none"))]
        return Some(asm::return_hook());
        #[cfg(not(all(target_arch = "x86_64", target_os = "none")))]
        None
    }
}

/// The assembled trampolines (kernel builds only).
#[cfg(all(target_arch = "x86_64", target_os = "none"))]
mod asm {
    use core::mem::size_of;

    use super::{OPS_TRAMP_SLOTS, Trampolines, gpr};
    use crate::regs::{
        FREGS_FULL, FREGS_SIZE, OFF_FLAGS, OFF_GPR, OFF_IP, OFF_PARENT_IP, OFF_RET_SLOT, OFF_SP,
        OFF_SPARE,
    };
    use crate::tramp::{OpsSlots, OpsTrampPool};

    /// Bytes the trampolines reserve for the frame: a multiple of 16 so that
    /// the stack stays aligned for the callback call (it is 16-aligned on
    /// trampoline entry: the traced function's entry alignment of 8 plus the
    /// site's return address).
    ///
    /// Two words past the `FtraceRegs` belong to the fast path
    /// (`FAST_GUARDED_CALL`: the recursion word's address and the
    /// context), where a callback writing its frame cannot reach them.
    const FRAME: usize = (FREGS_SIZE + 16).next_multiple_of(16);
    const _: () = assert!(FRAME % 16 == 0 && FRAME >= FREGS_SIZE + 16);

    const fn g(i: usize) -> usize {
        OFF_GPR + i * size_of::<usize>()
    }

    core::arch::global_asm!(
        include_str!("ftrace_64.S"),
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
        fregs_full = const FREGS_FULL,
        fregs_guarded = const crate::regs::FREGS_GUARDED,
        rax = const g(gpr::RAX),
        rcx = const g(gpr::RCX),
        rdx = const g(gpr::RDX),
        rbx = const g(gpr::RBX),
        rsp = const g(gpr::RSP),
        rbp = const g(gpr::RBP),
        rsi = const g(gpr::RSI),
        rdi = const g(gpr::RDI),
        r8 = const g(gpr::R8),
        r9 = const g(gpr::R9),
        r10 = const g(gpr::R10),
        r11 = const g(gpr::R11),
        r12 = const g(gpr::R12),
        r13 = const g(gpr::R13),
        r14 = const g(gpr::R14),
        r15 = const g(gpr::R15),
        rflags = const g(gpr::RFLAGS),
        nslots = const OPS_TRAMP_SLOTS,
        off_spare = const OFF_SPARE,
        priv0 = const FREGS_SIZE,
        priv1 = const FREGS_SIZE + 8,
        max_cpus = const crate::recursion::MAX_CPUS,
        max_ctx = const crate::platform::Context::COUNT - 1,
        word_stride = const crate::recursion::layout::WORD_STRIDE,
        off_bits = const crate::recursion::layout::OFF_BITS,
        off_epoch = const crate::recursion::layout::OFF_EPOCH,
        off_quiet = const crate::recursion::layout::OFF_QUIET,
        options(att_syntax)
    );

    unsafe extern "C" {
        fn ftrace_caller();
        fn ftrace_regs_caller();
        fn ftrace_stub();
        fn return_to_handler();
        static ftrace_call: u8;
        static ftrace_regs_call: u8;
        /// The pool's entries: every `ftrace_ops_tramp_<i>`, then every
        /// `ftrace_ops_regs_tramp_<i>` (the .S checks the count).
        static ftrace_ops_tramps: [usize; 2 * OPS_TRAMP_SLOTS];
    }

    /// The pool over [`OpsSlots::global`] (`ftrace_tramp_ops`, which the
    /// pool trampolines read).
    pub(super) fn ops_pool() -> OpsTrampPool {
        // SAFETY: `ftrace_ops_tramps` is an initialised, read-only table of
        // 2 * OPS_TRAMP_SLOTS addresses in ftrace_64.S (size checked there).
        let t: [usize; 2 * OPS_TRAMP_SLOTS] = unsafe { ftrace_ops_tramps };
        OpsTrampPool::new(
            OpsSlots::global(),
            core::array::from_fn(|i| t[i]),
            core::array::from_fn(|i| t[OPS_TRAMP_SLOTS + i]),
        )
    }

    pub(super) fn return_hook() -> usize {
        return_to_handler as *const () as usize
    }

    pub(super) fn trampolines() -> Trampolines {
        Trampolines {
            caller: ftrace_caller as *const () as usize,
            regs_caller: ftrace_regs_caller as *const () as usize,
            caller_call: core::ptr::addr_of!(ftrace_call) as usize,
            regs_call: core::ptr::addr_of!(ftrace_regs_call) as usize,
            stub: ftrace_stub as *const () as usize,
        }
    }
}
