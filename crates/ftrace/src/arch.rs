//! The contract with architecture backends: the [`Arch`] trait.
//!
//! Every patch follows one protocol (Linux's `ftrace_make_nop` /
//! `ftrace_make_call` / `ftrace_modify_call`): **read** the site, **compare**
//! it with the bytes the record's state says must be there, and **only then
//! write**. A site holding anything else is never written; the error says what
//! was expected and what was found.
//!
//! A simple backend supplies only the encoders ([`Arch::nop_insn`],
//! [`Arch::call_insn`]), [`Arch::trampoline_addr`] and the constants; every
//! other hook has a default built on the read-compare-write step ([`replace_text`]) and the [`Platform`]
//! text accessors. Backends needing more (x86's `int3` protocol, ppc64's
//! out-of-line stubs) override the hooks they need.
//!
//! # Porting checklist
//!
//! Use the same names in every port so they can be compared:
//!
//! 1. `SITE_LEN`, `ARG_REGS` (and the `gpr` order in the backend's docs).
//! 2. Encoders `nop_insn` / `call_insn`, with host tests of their round trip.
//! 3. `init_site` if the compiler's pattern differs from the canonical nop
//!    (i686 `mcount` calls, ppc64 TOC setup and stubs from `Arch::site_word`).
//! 4. Two trampolines, `ftrace_caller` and `ftrace_regs_caller`, in `.S`
//!    files: build a [`FtraceRegs`](crate::regs::FtraceRegs) using the
//!    `regs::OFF_*` constants, load `FTRACE_TRACE_OP`, call the patchable
//!    inner call (label `ftrace_call` / `ftrace_regs_call`) whose target
//!    `update_ftrace_func` rewrites (or call through `FTRACE_TRACE_FUNC`),
//!    restore, and resume (the regs trampoline at `FtraceRegs::ip`).
//! 5. On SMP with multi-byte sites, override the batch hooks to make every
//!    write safe against concurrent execution.
//! 6. If sites of code added after boot need per-region resources (ppc64
//!    stubs), override `init_region_site` and `release_site`.

use crate::ops::Ops;
use crate::platform::Platform;
use crate::record::Record;
use crate::region::CodeRegion;

pub use crate::insn::{INSN_MAX, Insn, PatchError, SiteError};

/// The shared trampolines every backend provides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Trampoline {
    /// Saves the argument registers only (`ftrace_caller`).
    Caller,
    /// Saves the full register frame and resumes at [`FtraceRegs::ip`]
    /// (`ftrace_regs_caller`).
    ///
    /// [`FtraceRegs::ip`]: crate::regs::FtraceRegs::ip
    RegsCaller,
}

/// The generic read-compare-write step: reads `old.len()` bytes at `ip`,
/// fails with [`PatchError::Mismatch`] unless they equal `old`, then writes
/// `new`. Writes nothing when `old == new`.
///
/// Does not synchronise cores; the batch does that once ([`Arch::finish_batch`]).
///
/// Crate-internal: backends call it with record sites and their own
/// stubs. Code outside the crate uses [`replace_text`].
#[inline(always)]
pub(crate) fn replace_insn(
    p: &dyn Platform,
    ip: usize,
    old: &Insn,
    new: &Insn,
) -> Result<(), PatchError> {
    let text = crate::platform::TextWriter::new(p);
    let found = read_insn_with(&text, ip, old.len())?;
    if found != *old {
        return Err(PatchError::Mismatch {
            expected: *old,
            found,
        });
    }
    if old == new {
        return Ok(());
    }
    // SAFETY: `ip` is a patch site that currently holds `old` (checked just
    // above), and the backend calling us encoded `new` as a valid
    // replacement for it (the `Arch` safety contract).
    unsafe { text.write(ip, new.as_bytes()) }.map_err(|_| PatchError::WriteFault)
}

/// Reads `len` (at most [`INSN_MAX`]) bytes at `ip` through the platform.
/// Crate-internal (record sites and backend stubs); outside the crate use
/// [`read_text`].
#[inline]
pub(crate) fn read_insn(p: &dyn Platform, ip: usize, len: usize) -> Result<Insn, PatchError> {
    read_insn_with(&crate::platform::TextWriter::new(p), ip, len)
}

/// [`read_insn`] through a platform's text accessors looked up already.
#[inline(always)]
fn read_insn_with(
    text: &crate::platform::TextWriter<'_>,
    ip: usize,
    len: usize,
) -> Result<Insn, PatchError> {
    let mut buf = [0u8; INSN_MAX];
    let len = len.min(INSN_MAX);
    // SAFETY: `ip` comes from the site table (or a backend) and designates
    // kernel text of at least `len` bytes (the `Arch` safety contract).
    unsafe { text.read(ip, &mut buf[..len]) }.map_err(|_| PatchError::ReadFault)?;
    Ok(Insn::new(&buf[..len]))
}

/// For code outside the crate: reads `len` (at most
/// [`INSN_MAX`]) bytes of text at `ip` through the platform.
///
/// # Safety
///
/// `ip..ip + len` must be kernel text the platform can read (a site, a stub
/// or other code of the kernel), per [`Platform::text_read`]'s contract.
pub unsafe fn read_text(p: &dyn Platform, ip: usize, len: usize) -> Result<Insn, PatchError> {
    read_insn(p, ip, len)
}

/// For code outside the crate: the read-compare-write step
/// at an address the caller chooses.
///
/// # Safety
///
/// `ip` must be kernel text holding a complete instruction sequence of
/// `old.len()` bytes that `new` may replace while other CPUs execute it
/// (per [`Platform::text_write`]'s contract), and nothing else may be
/// patching it.
pub unsafe fn replace_text(
    p: &dyn Platform,
    ip: usize,
    old: &Insn,
    new: &Insn,
) -> Result<(), PatchError> {
    replace_insn(p, ip, old, new)
}

/// One implementation per architecture (Linux's `arch/*/kernel/ftrace.c`).
///
/// The arch-neutral engine decides *what* every site should call; the
/// backend knows *how* to encode and patch it. Methods with default bodies are
/// optional hooks (Linux's `__weak` functions).
///
/// All patching methods follow the protocol described in the
/// [module docs](self): read, compare with the expected bytes, only then
/// write; on [`PatchError::Mismatch`] nothing is written.
///
/// # Safety
///
/// Implementations must guarantee:
///
/// 1. [`nop_insn`](Self::nop_insn) and [`call_insn`](Self::call_insn) encode
///    instructions that are valid at a site of [`SITE_LEN`](Self::SITE_LEN)
///    bytes, and a site swapped between them stays executable by every CPU
///    at every intermediate step of the backend's write sequence.
/// 2. The patching hooks write only inside the site (and backend-owned
///    memory such as stubs), and only after verifying the old bytes.
/// 3. [`trampoline_addr`](Self::trampoline_addr) returns trampolines that
///    save the state documented in [`crate::regs::FtraceRegs`], call the
///    function set with [`update_ftrace_func`](Self::update_ftrace_func) (or
///    [`crate::ops::FTRACE_TRACE_FUNC`]) passing the site's record `ip`,
///    the parent ip, [`crate::ops::FTRACE_TRACE_OP`] and the frame, and
///    resume the traced function correctly.
/// 4. [`ARG_REGS`](Self::ARG_REGS) entries index [`FtraceRegs::gpr`] slots the
///    trampolines fill.
///
/// [`FtraceRegs::gpr`]: crate::regs::FtraceRegs::gpr
pub unsafe trait Arch: Send + Sync {
    /// Bytes of one patch site.
    const SITE_LEN: usize;

    /// Indices into [`FtraceRegs::gpr`](crate::regs::FtraceRegs::gpr) of the
    /// integer argument registers, in argument order.
    const ARG_REGS: &'static [usize];

    /// True when the backend's per-callback trampolines have the fast path
    /// [`Ftrace::use_cpu_local`](crate::Ftrace::use_cpu_local) turns on
    /// (they take the recursion guard themselves, test the ops' enabled
    /// bit and call its `extern "C"` callback directly: see
    /// [`OPS_OFF_FUNC`](crate::ops::OPS_OFF_FUNC)).
    const CPU_LOCAL: bool = false;

    /// The canonical nop a disabled site holds.
    fn nop_insn(&self) -> Insn;

    /// The call instruction placed at `site` to call `target`.
    fn call_insn(&self, site: usize, target: usize) -> Result<Insn, PatchError>;

    /// What the site of `rec` must hold when it calls `target` (`None`: the
    /// nop). The default is [`nop_insn`](Self::nop_insn) /
    /// [`call_insn`](Self::call_insn) at `rec.ip`; a backend whose site calls
    /// through a stub (ppc64) returns the branch to the stub.
    ///
    /// The engine uses this for the default patch hooks, for
    /// [`crate::Ftrace::check_all_nops`] and to re-read sites after a failed
    /// batch.
    fn expected_insn(&self, rec: &Record, target: Option<usize>) -> Result<Insn, PatchError> {
        match target {
            None => Ok(self.nop_insn()),
            Some(t) => self.call_insn(rec.ip, t),
        }
    }

    /// True when the backend needs a word per site
    /// ([`site_word`](Self::site_word)): the engine then computes it for
    /// every record it passes to a hook.
    const SITE_WORD: bool = false;

    /// The arch word of the site ranked `rank` (from 0, in address order)
    /// among the sites of its table: the boot table when `stubs` is `None`,
    /// else a region's, whose [`CodeRegion::stubs`] it is. The engine
    /// stores no per-site arch data; it puts this in
    /// [`Record::arch_word`] of every record it hands to a hook (only when
    /// [`SITE_WORD`](Self::SITE_WORD) is true), so it must depend on
    /// nothing else. A site keeps its rank for as long as it exists.
    ///
    /// The default is 0. ppc64 returns the address of the site's stub,
    /// slot `rank` of the stub area (0 when the area is too small).
    fn site_word(&self, stubs: Option<&core::ops::Range<usize>>, rank: usize) -> usize {
        let _ = (stubs, rank);
        0
    }

    /// Prepares a freshly recorded site (Linux's `ftrace_init_nop`): checks
    /// the compiler's pattern and rewrites it to the canonical nop where they
    /// differ; may move `rec.ip` (ppc64: to the nop after the TOC setup) and
    /// use `rec.arch_word()`, which holds [`site_word`](Self::site_word).
    /// Must keep records sorted (move `ip` only within its function).
    ///
    /// The default accepts only a site already holding
    /// [`nop_insn`](Self::nop_insn).
    fn init_site(&self, p: &dyn Platform, rec: &mut Record) -> Result<(), PatchError> {
        let nop = self.nop_insn();
        let found = read_insn(p, rec.ip, nop.len())?;
        if found == nop {
            Ok(())
        } else {
            Err(PatchError::Mismatch {
                expected: nop,
                found,
            })
        }
    }

    /// Prepares a site of a [`CodeRegion`] added after boot
    /// ([`crate::Ftrace::add_region`], Linux's `ftrace_module_init`), with
    /// the same duties as [`init_site`](Self::init_site). `index` is the
    /// site's rank among the region's sites (sorted); `rec.arch_word()`
    /// holds [`site_word`](Self::site_word)`(Some(&region.stubs), index)`.
    ///
    /// The default calls [`init_site`](Self::init_site): right for backends
    /// that need nothing per region (x86).
    fn init_region_site(
        &self,
        p: &dyn Platform,
        rec: &mut Record,
        region: &CodeRegion,
        index: usize,
    ) -> Result<(), PatchError> {
        let _ = (region, index);
        self.init_site(p, rec)
    }

    /// Gives back what [`init_region_site`](Self::init_region_site) set up
    /// for `rec`, whose region is being removed
    /// ([`crate::Ftrace::remove_region`], Linux's module unload). The engine
    /// calls it after the site was turned back into the nop, once per
    /// record that [`init_region_site`](Self::init_region_site) accepted
    /// (also when it FAILED later: it may own resources), and
    /// synchronises cores once after all of them. Follows the protocol:
    /// check first, write only what was verified.
    ///
    /// The default does nothing. ppc64 writes `trap` back over the site's
    /// stub, so the stub is visibly unused and a stray jump into it traps.
    fn release_site(&self, p: &dyn Platform, rec: &Record) -> Result<(), PatchError> {
        let _ = (p, rec);
        Ok(())
    }

    /// Turns the call to `old_target` at `rec` into the nop.
    fn make_nop(
        &self,
        p: &dyn Platform,
        rec: &Record,
        old_target: usize,
    ) -> Result<(), PatchError> {
        let old = self.expected_insn(rec, Some(old_target))?;
        let new = self.expected_insn(rec, None)?;
        replace_insn(p, rec.ip, &old, &new)
    }

    /// Turns the nop at `rec` into a call to `target`.
    fn make_call(&self, p: &dyn Platform, rec: &Record, target: usize) -> Result<(), PatchError> {
        let old = self.expected_insn(rec, None)?;
        let new = self.expected_insn(rec, Some(target))?;
        replace_insn(p, rec.ip, &old, &new)
    }

    /// Turns the call to `old_target` at `rec` into a call to `new_target`.
    fn modify_call(
        &self,
        p: &dyn Platform,
        rec: &Record,
        old_target: usize,
        new_target: usize,
    ) -> Result<(), PatchError> {
        let old = self.expected_insn(rec, Some(old_target))?;
        let new = self.expected_insn(rec, Some(new_target))?;
        replace_insn(p, rec.ip, &old, &new)
    }

    /// Called before the patch hooks of one update. Backends that queue
    /// writes (x86) start a queue here.
    fn begin_batch(&self, _p: &dyn Platform) {}

    /// True when the backend wants [`batch_size_hint`](Self::batch_size_hint)
    /// (it queues a batch's changes): the engine then counts them first,
    /// a pass over every site it skips otherwise. Default: false.
    const WANTS_BATCH_SIZE: bool = false;

    /// Said after [`begin_batch`](Self::begin_batch), when
    /// [`WANTS_BATCH_SIZE`](Self::WANTS_BATCH_SIZE): at most `changes`
    /// sites will change in this batch (a queueing backend can make room
    /// once instead of growing its queue). The count is exact in large
    /// tables; in tables of up to 256 sites the engine says how many
    /// sites there are instead of counting. The default ignores it.
    fn batch_size_hint(&self, changes: usize) {
        let _ = changes;
    }

    /// Commits the batch. The default, for backends writing immediately,
    /// synchronises cores once. Backends that queue writes apply them here
    /// (with one core synchronisation per phase) and, on failure, leave every
    /// site holding its old or new instruction.
    fn finish_batch(&self, p: &dyn Platform) -> Result<(), SiteError> {
        p.sync_cores();
        Ok(())
    }

    /// Abandons the batch after a hook failed: queued writes are dropped;
    /// sites already written stay written. The default synchronises cores.
    fn abort_batch(&self, p: &dyn Platform) {
        p.sync_cores();
    }

    /// Repoints the patchable call inside trampoline `which` (Linux's
    /// `ftrace_call` label) to the C-ABI function `func`
    /// ([`crate::ops::ftrace_ops_list_func`] or
    /// [`crate::ops::ftrace_ops_assist_func`]).
    ///
    /// The engine also stores `func` in [`crate::ops::FTRACE_TRACE_FUNC`]
    /// before calling this; the default does nothing, which suits
    /// trampolines that call indirectly through that symbol.
    fn update_ftrace_func(
        &self,
        _p: &dyn Platform,
        _which: Trampoline,
        _func: usize,
    ) -> Result<(), PatchError> {
        Ok(())
    }

    /// Points both shared trampolines' inner call at `func`
    /// ([`update_ftrace_func`](Self::update_ftrace_func) for
    /// [`Trampoline::Caller`], then [`Trampoline::RegsCaller`]); on
    /// failure, says which one failed. The engine calls this, then
    /// [`Platform::sync_cores`]. The default calls `update_ftrace_func`
    /// twice; a backend whose patching protocol costs per batch (x86's
    /// `int3` protocol, three core synchronisations) changes both in one.
    fn update_ftrace_funcs(
        &self,
        p: &dyn Platform,
        func: usize,
    ) -> Result<(), (Trampoline, PatchError)> {
        for which in [Trampoline::Caller, Trampoline::RegsCaller] {
            self.update_ftrace_func(p, which, func)
                .map_err(|e| (which, e))?;
        }
        Ok(())
    }

    /// Address of trampoline `which`.
    fn trampoline_addr(&self, which: Trampoline) -> usize;

    /// A trampoline dedicated to `ops` (Linux's
    /// `arch_ftrace_update_trampoline`): when `Some` and a site is wanted by
    /// that one ops only, the site calls it directly. It must build the
    /// frame `ops` needs (the full one when [`Ops::needs_regs`]) and call
    /// [`crate::ops::ftrace_ops_assist_func`] with `ops`. The engine asks
    /// only for callbacks that are alone on some site, and may ask again at
    /// every update: the answer must not change while sites call it.
    /// Backends with a static pool return
    /// [`OpsTrampPool::trampoline`](crate::tramp::OpsTrampPool::trampoline).
    /// Default: none.
    fn ops_trampoline(&self, _ops: &Ops) -> Option<usize> {
        None
    }

    /// True when functions without a record may call the trampolines too
    /// (i686's non-dynamic mode: every instrumented function calls `mcount`
    /// all the time, whether or not the engine kept a record for it). The
    /// list dispatcher then calls callbacks only for recorded sites, so that
    /// code the engine excluded ([`crate::update::NEVER_TRACED_CRATES`]) is
    /// never traced. Default: false (only enabled sites call).
    fn calls_unrecorded(&self) -> bool {
        false
    }

    /// Address of the backend's `return_to_handler` (Linux's name), the
    /// return hook of [`crate::fgraph`]; `None` (the default) when the
    /// backend cannot hook returns.
    ///
    /// `return_to_handler` is entered by the `ret`/`blr` of a function whose
    /// return address [`crate::fgraph`] replaced. It must keep the
    /// return-value registers, call
    /// [`ftrace_return_to_handler`](crate::fgraph::ftrace_return_to_handler)
    /// with the range the function's entry stack pointer must lie in and the
    /// two return-value registers, restore those registers and return to the
    /// address it got back (on ppc64 with `blr`, so the link stack stays
    /// balanced). For this the trampolines must fill
    /// [`FtraceRegs::sp`](crate::regs::FtraceRegs::sp) and
    /// [`FtraceRegs::ret_slot`](crate::regs::FtraceRegs::ret_slot), and a
    /// value written to `*ret_slot` must become the function's return
    /// address.
    fn return_hook(&self) -> Option<usize> {
        None
    }
}

impl<A: Arch> crate::regs::ArgRegs for A {
    const ARG_REGS: &'static [usize] = <A as Arch>::ARG_REGS;
}

/// The 64-bit PowerPC backend (ELFv2): stubs, encoders and trampolines. Its
/// encoders and patch logic build everywhere for host tests; only the
/// trampolines are gated on powerpc64 inside it.
#[path = "arch/ppc64/mod.rs"]
pub mod ppc64;

/// Inline reads of the CPU's counter, interrupt flag and per-CPU area
/// for the tracing hot path.
#[path = "arch/cpu.rs"]
pub mod cpu;

/// The x86_64 and i686 backends (shared encoders, the `int3` batch and the
/// `#BP` helper are plain logic, tested on the host).
#[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
#[path = "arch/x86/mod.rs"]
pub mod x86;
