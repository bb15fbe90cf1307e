//! The 64-bit PowerPC backend (big-endian ELFv2, e.g. QEMU `pseries`).
//!
//! # Sites and stubs
//!
//! Every traced function carries one `nop` (`-Zpatchable-function-entry=1`)
//! at its local entry: after the TOC set-up pair when the function has one,
//! first otherwise. The site table points at the global entry;
//! [`Ppc64Arch::init_site`](crate::Arch::init_site) moves `Record::ip` to the
//! nop, checks that it holds `0x60000000`, and writes the function's own
//! 16-byte stub into the area the linker reserved (one per site-table
//! entry). The stub of a site is slot `rank` of the area, `rank` being the
//! site's index in the engine's sorted table
//! ([`site_word`](crate::Arch::site_word)): nothing per site is stored, the
//! stub does not depend on the order sites are prepared in, and preparing a
//! site twice writes the same words to the same place:
//!
//! ```text
//! site:    nop                 enabled: b stub
//!
//! stub+0:  mflr r0             r0 = return address of the traced function
//! stub+4:  bl   ftrace_caller  (or ftrace_regs_caller) LR = stub+8
//! stub+8:  mtlr r0             LR = return address again
//! stub+12: b    site+4         continue the traced function
//! ```
//!
//! A site is a single word, so enabling and disabling are one aligned store
//! each (`nop` <-> `b stub`). Switching a site between the two trampolines
//! rewrites only the stub's `bl` (one aligned store); the site keeps its
//! `b stub`. Enabling writes the stub's `bl` first, then the site, so a CPU
//! entering the function sees either the old nop or the complete new path.
//!
//! Sites of code added later ([`CodeRegion`], Linux's modules) get their
//! stubs from the region's own area, by rank among the region's sites
//! ([`Ppc64Arch::init_region_site`](crate::Arch::init_region_site));
//! when the region is removed, [`release_site`](crate::Arch::release_site)
//! writes `trap` back over each stub once its site is a nop again.
//!
//! `b` and `bl` reach +-32 MiB. A stub or trampoline beyond that is reported
//! as [`PatchError::OutOfRange`] for the record concerned; nothing is
//! written.
//!
//! # Per-callback trampolines
//!
//! A site wanted by a single callback has its stub's `bl` point at that
//! callback's trampoline from the pool of [`crate::tramp`]
//! (`ftrace_ops_tramp_<i>` / `ftrace_ops_regs_tramp_<i>` in `ftrace_64.S`,
//! copies of the two shared trampolines that pass slot `i`'s callback to
//! `ftrace_ops_assist_func`). Switching a site between them and the shared
//! trampolines is the same one-word retarget of the stub's `bl`. The pool
//! is used only when every entry is within `bl` reach of the whole boot
//! stub area ([`Ppc64Arch::with_ops_pool`]), and a site is prepared only
//! when its stub reaches the pool too (region stubs), so switching a site
//! to its callback's trampoline never fails on reach.
//!
//! # Trampolines
//!
//! `ftrace_caller` and `ftrace_regs_caller` (`ftrace_64.S`) find the site by
//! decoding the stub's final branch (at LR+4), build an
//! [`FtraceRegs`](crate::regs::FtraceRegs) (`gpr[n]` is register `rn`;
//! `gpr[0]` holds the return address, which the stub's `mtlr r0` restores,
//! so [`FtraceRegs::ret_slot`](crate::regs::FtraceRegs::ret_slot) points at
//! it), call the dispatcher through the patchable `bl` at the labels
//! `ftrace_call` / `ftrace_regs_call`, restore everything the ELFv2 ABI
//! lets a callee clobber (r0, r2-r12, CR, CTR, XER, LR) and return with
//! `blr` into the stub.
//!
//! # Floating point: callbacks run with MSR.FP clear
//!
//! The kernel is hard-float (the ELFv2 targets of current rustc refuse
//! soft-float), so f1-f13 may hold the traced function's arguments and
//! f1-f8 a hooked function's result. Instead of saving and restoring them
//! (32 instructions per call), the trampolines and `return_to_handler`
//! clear MSR.FP around the dispatcher and put the entry MSR back after it
//! (5 instructions in, 3 out). No code of this crate uses floating point,
//! and a callback that does (or anything it calls) takes a
//! floating-point-unavailable interrupt (0x800) instead of silently
//! corrupting the traced function's registers: the kernel must install a
//! handler there that reports it (the test kernel panics, naming the
//! address; `test=fp-callback` checks it). Interrupts taken meanwhile
//! enter with MSR.FP clear anyway; a handler that enables it saves and
//! restores the floating-point state itself, as the test kernel's does.
//!
//! # Redirect
//!
//! When a callback of the regs trampoline changes
//! [`FtraceRegs::ip`](crate::regs::FtraceRegs::ip), the trampoline cannot
//! return into the stub (its last word always branches to `site+4`). It
//! instead jumps to the new address with `bctr`, with LR = the traced
//! function's return address (as if its caller had called the new address)
//! and r12 = CTR = the new address (what an ELFv2 global entry expects). The
//! cost: the link-stack entry pushed by the stub's `bl` is never popped, so
//! one later `blr` is mispredicted. Only redirected calls pay it; the common
//! path returns with `blr`.
//!
//! The encoders and this backend's logic build on every host (see the tests,
//! which use `crate::mock::MockPlatform`); only the trampolines themselves
//! need a powerpc64 target.

#[cfg(target_arch = "powerpc64")]
pub mod helpers;
pub mod insn;

use crate::arch::{Arch, Insn, PatchError, Trampoline, read_insn, replace_insn};
use crate::platform::{Platform, TextWriter};
use crate::record::Record;
use crate::region::CodeRegion;
use crate::tramp::OpsTrampPool;

use insn::{
    MFLR_R0, MTLR_R0, NOP, STUB_BL, STUB_RESUME, STUB_SIZE, TRAP, branch, decode_branch, from_insn,
    to_insn,
};

/// Addresses the backend works with: the stub area and the trampolines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// First byte of the stub area (16-byte aligned).
    pub stubs_start: usize,
    /// One past the last byte of the stub area.
    pub stubs_end: usize,
    /// `ftrace_caller`.
    pub caller: usize,
    /// `ftrace_regs_caller`.
    pub regs_caller: usize,
    /// The patchable `bl` inside `ftrace_caller` (label `ftrace_call`).
    pub caller_call: usize,
    /// The patchable `bl` inside `ftrace_regs_caller` (label `ftrace_regs_call`).
    pub regs_caller_call: usize,
}

/// The ppc64 [`Arch`] implementation: sites branch to per-site stubs that
/// call the trampolines (see the [module docs](self)).
#[derive(Debug)]
pub struct Ppc64Arch {
    layout: Layout,
    /// The per-callback trampolines, when every stub reaches them.
    pool: Option<OpsTrampPool>,
    /// The lowest and highest entry of `pool`.
    pool_span: Option<(usize, usize)>,
    /// What the batch's platform lets us read and write in line.
    text: crate::platform::TextCache,
    /// Stub slots of the boot stub area ([`Self::stub_in`]'s bound,
    /// computed once: the engine asks for a boot site's stub per change).
    boot_slots: usize,
}

/// What a stub word should be and what it is, for [`Ppc64Arch::check_stub`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StubMismatch {
    /// Address of the differing word.
    pub addr: usize,
    /// The expected word.
    pub expected: u32,
    /// The word found.
    pub found: u32,
}

impl Ppc64Arch {
    /// A backend for the given addresses (host tests, or kernels whose
    /// trampolines live elsewhere).
    pub fn with_layout(layout: Layout) -> Self {
        let boot = layout.stubs_start..layout.stubs_end;
        Ppc64Arch {
            boot_slots: Self::slots_in(&boot),
            layout,
            pool: None,
            pool_span: None,
            text: crate::platform::TextCache::new(),
        }
    }

    /// The same backend handing out per-callback trampolines from `pool`
    /// ([`Arch::ops_trampoline`]), provided a `bl` in the first and in the
    /// last stub of the boot stub area reaches every entry of the pool;
    /// otherwise the pool is not used and every site calls the shared
    /// trampolines. Call it before [`init_site`](Arch::init_site): sites
    /// are then prepared only if their stub reaches the pool as well.
    pub fn with_ops_pool(mut self, pool: OpsTrampPool) -> Self {
        let (start, end) = (self.layout.stubs_start, self.layout.stubs_end);
        let bls = [start, end.saturating_sub(STUB_SIZE).max(start)].map(|stub| stub + 4 * STUB_BL);
        if pool
            .entries()
            .all(|t| bls.iter().all(|&bl| branch(bl, t, true).is_ok()))
        {
            let lo = pool.entries().min();
            let hi = pool.entries().max();
            self.pool_span = lo.zip(hi);
            self.pool = Some(pool);
        }
        self
    }

    /// True when the backend hands out per-callback trampolines.
    pub fn has_ops_pool(&self) -> bool {
        self.pool.is_some()
    }

    /// The backend with this crate's trampolines, the stub area `stubs`
    /// (the linker script's `__ftrace_stubs_start..__ftrace_stubs_stop`)
    /// (sized for the site table).
    #[cfg(target_arch = "powerpc64")]
    pub fn new(stubs: core::ops::Range<usize>) -> Self {
        Self::with_layout(Layout {
            stubs_start: stubs.start,
            stubs_end: stubs.end,
            caller: tramp::caller(),
            regs_caller: tramp::regs_caller(),
            caller_call: tramp::caller_call(),
            regs_caller_call: tramp::regs_caller_call(),
        })
        .with_ops_pool(tramp::ops_pool())
    }

    /// The addresses in use.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Stub slot `rank` of `area`: `None` when the area is too small.
    pub fn stub_in(area: &core::ops::Range<usize>, rank: usize) -> Option<usize> {
        // `rank` below the slot count: the stub ends within the area (and
        // nothing overflows).
        (rank < Self::slots_in(area)).then(|| area.start + rank * STUB_SIZE)
    }

    /// The stub slots of `area`; none when it is misaligned.
    fn slots_in(area: &core::ops::Range<usize>) -> usize {
        match area.start % 4 {
            0 => area.end.saturating_sub(area.start) / STUB_SIZE,
            _ => 0,
        }
    }

    /// The stub of `rec` ([`Arch::site_word`]); an error for a record
    /// whose table's stub area has no slot for it.
    pub fn stub_of(rec: &Record) -> Result<usize, PatchError> {
        match rec.arch {
            0 => Err(PatchError::Other("ppc64: stub area too small")),
            s => Ok(s),
        }
    }

    /// The four words `rec`'s stub must hold while it calls `tramp`.
    pub fn expected_stub(rec: &Record, tramp: usize) -> Result<[u32; 4], PatchError> {
        insn::stub_words(Self::stub_of(rec)?, rec.ip, tramp)
    }

    /// Compares `rec`'s stub with the encoding for `tramp`, word by word;
    /// returns the first difference.
    pub fn check_stub(
        &self,
        p: &dyn Platform,
        rec: &Record,
        tramp: usize,
    ) -> Result<Option<StubMismatch>, PatchError> {
        let stub = Self::stub_of(rec)?;
        let want = Self::expected_stub(rec, tramp)?;
        for (i, &w) in want.iter().enumerate() {
            let found = read_word(p, stub + 4 * i)?;
            if found != w {
                return Ok(Some(StubMismatch {
                    addr: stub + 4 * i,
                    expected: w,
                    found,
                }));
            }
        }
        Ok(None)
    }

    /// Reads the stub of `rec` and returns the trampoline its `bl` calls
    /// after checking the three fixed words (`Mismatch` on the first that
    /// differs).
    #[inline]
    fn stub_target(&self, p: &dyn Platform, rec: &Record) -> Result<usize, PatchError> {
        let stub = Self::stub_of(rec)?;
        let bl = self.stub_bl(self.text.writer(p), rec, stub)?;
        Ok(decode_branch(stub + 4 * STUB_BL, bl).map_or(0, |(t, _)| t))
    }

    /// Reads `rec`'s stub (at `stub`) in one access and checks its three
    /// fixed words and that its second is a relative `bl`; returns that
    /// `bl`. The resume branch is encoded without a range check:
    /// `prepare_site` checked that it reaches (the same two addresses)
    /// before it wrote the stub.
    #[inline(always)]
    fn stub_bl(&self, w: TextWriter<'_>, rec: &Record, stub: usize) -> Result<u32, PatchError> {
        let mut b = [0u8; STUB_SIZE];
        // SAFETY: the stub is text of the backend's stub area (the record's
        // arch word, within the area by `site_word`).
        unsafe { w.read(stub, &mut b) }.map_err(|_| PatchError::ReadFault)?;
        let words: [u32; 4] = words_of(&b);
        let resume = insn::branch_reaching(stub + 4 * STUB_RESUME, rec.ip + 4, false);
        for (i, want) in [(0, MFLR_R0), (2, MTLR_R0), (STUB_RESUME, resume)] {
            if words[i] != want {
                return Err(PatchError::Mismatch {
                    expected: to_insn(want),
                    found: to_insn(words[i]),
                });
            }
        }
        let bl = words[STUB_BL];
        match decode_branch(stub + 4 * STUB_BL, bl) {
            Some((_, true)) => Ok(bl),
            _ => Err(PatchError::Mismatch {
                expected: to_insn(branch(stub + 4, self.layout.caller, true)?),
                found: to_insn(bl),
            }),
        }
    }

    /// The work of `init_site` and `init_region_site`: moves `rec.ip` to the
    /// nop, checks it, and writes the stub `rec.arch_word()` (see
    /// `Arch::init_site` below); `no_stub` is the error when there is none.
    fn prepare_site(
        &self,
        p: &dyn Platform,
        rec: &mut Record,
        no_stub: &'static str,
    ) -> Result<(), PatchError> {
        // The first two words at once: the nop, or the TOC pair before it.
        let mut head = [0u8; 8];
        // SAFETY: `rec.ip` is a global entry of the site table: a function
        // of at least two instructions.
        unsafe { crate::platform::TextWriter::new(p).read(rec.ip, &mut head) }
            .map_err(|_| PatchError::ReadFault)?;
        let [w0, w1] = words_of(&head);
        if w0 != NOP {
            if !insn::is_toc_setup(w0, w1) {
                return Err(PatchError::Mismatch {
                    expected: to_insn(NOP),
                    found: to_insn(w0),
                });
            }
            rec.ip += 8;
            expect_word(p, rec.ip, NOP)?;
        }
        let stub = match rec.arch {
            0 => return Err(PatchError::Other(no_stub)),
            s => s,
        };
        // Every branch this site will ever need must reach: the site to its
        // stub, the stub to both trampolines (and to the pool's lowest and
        // highest entry, so to all of them) and back to the site.
        branch(rec.ip, stub, false)?;
        insn::stub_words(stub, rec.ip, self.layout.regs_caller)?;
        if let Some((lo, hi)) = self.pool_span {
            branch(stub + 4 * STUB_BL, lo, true)?;
            branch(stub + 4 * STUB_BL, hi, true)?;
        }
        let words = insn::stub_words(stub, rec.ip, self.layout.caller)?;
        // The stub in one read; every word must be the linker's `trap`
        // fill or already its final value (a repeated init), all checked
        // before one write of the whole stub.
        let mut cur = [0u8; STUB_SIZE];
        // SAFETY: the stub is in the backend's (or the region's) stub area.
        unsafe { crate::platform::TextWriter::new(p).read(stub, &mut cur) }
            .map_err(|_| PatchError::ReadFault)?;
        let cur: [u32; 4] = words_of(&cur);
        if cur == words {
            return Ok(());
        }
        for (&c, &w) in cur.iter().zip(&words) {
            if c != w && c != TRAP {
                return Err(PatchError::Mismatch {
                    expected: to_insn(TRAP),
                    found: to_insn(c),
                });
            }
        }
        let mut bytes = [0u8; STUB_SIZE];
        for (chunk, w) in bytes.as_chunks_mut::<4>().0.iter_mut().zip(words) {
            chunk.copy_from_slice(&w.to_be_bytes());
        }
        // SAFETY: every word was checked just above: `trap` (nothing
        // branches there: the site is still the nop) or the same value.
        unsafe { crate::platform::text_write(p, stub, &bytes) }.map_err(|_| PatchError::WriteFault)
    }
}

/// [`read_word`] through the batch's accessors (from its
/// [`TextCache`](crate::platform::TextCache)).
#[inline(always)]
fn read_word_w(w: TextWriter<'_>, addr: usize) -> Result<u32, PatchError> {
    let mut b = [0u8; 4];
    // SAFETY: `addr` is a site or stub word of this backend (callers).
    unsafe { w.read(addr, &mut b) }.map_err(|_| PatchError::ReadFault)?;
    Ok(u32::from_be_bytes(b))
}

/// Writes one word through the batch's accessors.
#[inline(always)]
fn write_word_w(w: TextWriter<'_>, addr: usize, word: u32) -> Result<(), PatchError> {
    // SAFETY: `addr` is a site or a stub word of this backend whose current
    // contents the caller verified, and `word` is the encoding it computed
    // for it (the `Arch` safety contract).
    unsafe { w.write(addr, &word.to_be_bytes()) }.map_err(|_| PatchError::WriteFault)
}

/// The big-endian words of `bytes`.
fn words_of<const N: usize, const B: usize>(bytes: &[u8; B]) -> [u32; N] {
    core::array::from_fn(|i| {
        u32::from_be_bytes([
            bytes[4 * i],
            bytes[4 * i + 1],
            bytes[4 * i + 2],
            bytes[4 * i + 3],
        ])
    })
}

/// Reads one aligned word.
fn read_word(p: &dyn Platform, addr: usize) -> Result<u32, PatchError> {
    from_insn(&read_insn(p, addr, 4)?).ok_or(PatchError::ReadFault)
}

/// Fails with `Mismatch` unless the word at `addr` is `want`.
fn expect_word(p: &dyn Platform, addr: usize, want: u32) -> Result<(), PatchError> {
    check_word(read_word(p, addr)?, want)
}

/// `Mismatch` unless the word `found` is `want`.
#[inline(always)]
fn check_word(found: u32, want: u32) -> Result<(), PatchError> {
    if found == want {
        Ok(())
    } else {
        Err(PatchError::Mismatch {
            expected: to_insn(want),
            found: to_insn(found),
        })
    }
}

// SAFETY:
// 1. The site is one aligned word swapped between `nop` and `b stub` with a
//    single store; the stub is complete (written at init, its `bl` updated
//    before the site points at it) whenever a site branches to it, and
//    retargeting it is one aligned store of a `bl`.
// 2. Writes go only to the site, its own stub (inside the boot stub area,
//    or the area of the site's region) and the trampolines' patchable `bl`,
//    each after reading and comparing; a region's stub is written back to
//    `trap` only while its site holds the nop.
// 3. The trampolines in ftrace_64.S follow the `FtraceRegs` contract and
//    resume at `site+4` (or `FtraceRegs::ip` in the regs trampoline).
// 4. `ARG_REGS` are r3-r10, which both trampolines save in `gpr[3..=10]`.
unsafe impl Arch for Ppc64Arch {
    const SITE_LEN: usize = 4;
    /// r3-r10 (`gpr[n]` is `rn`).
    const ARG_REGS: &'static [usize] = &[3, 4, 5, 6, 7, 8, 9, 10];
    const CPU_LOCAL: bool = true;

    const SITE_WORD: bool = true;

    /// The stub: slot `rank` of the boot stub area (`stubs` `None`) or of
    /// the region's; 0 when the area has no such slot.
    #[inline]
    fn site_word(&self, stubs: Option<&core::ops::Range<usize>>, rank: usize) -> usize {
        match stubs {
            Some(area) => Self::stub_in(area, rank).unwrap_or(0),
            // `stub_in` over the boot area, its bound computed once.
            None if rank < self.boot_slots => self.layout.stubs_start + rank * STUB_SIZE,
            None => 0,
        }
    }

    fn nop_insn(&self) -> Insn {
        to_insn(NOP)
    }

    /// The direct form (`bl target` at `site`), for callers that want it;
    /// enabled sites actually hold `b stub` (see
    /// [`expected_insn`](Self::expected_insn)).
    fn call_insn(&self, site: usize, target: usize) -> Result<Insn, PatchError> {
        branch(site, target, true).map(to_insn)
    }

    /// `nop` when disabled; `b stub` whatever the trampoline, which only the
    /// stub names.
    fn expected_insn(&self, rec: &Record, target: Option<usize>) -> Result<Insn, PatchError> {
        match target {
            None => Ok(self.nop_insn()),
            Some(_) => branch(rec.ip, Self::stub_of(rec)?, false).map(to_insn),
        }
    }

    /// Moves `rec.ip` from the global entry to the nop (after the TOC pair
    /// when present), checks it holds `nop`, and writes its stub
    /// (`rec.arch_word()`, calling `ftrace_caller`; a record without one
    /// is `Other("ppc64: no stub for this site-table entry")`) over the
    /// linker's `trap` fill, word by
    /// word; a word already holding its final value is left alone, so a
    /// repeated init is harmless. The site stays a nop.
    fn init_site(&self, p: &dyn Platform, rec: &mut Record) -> Result<(), PatchError> {
        self.prepare_site(p, rec, "ppc64: no stub for this site-table entry")
    }

    /// As [`init_site`](Self::init_site), with the stub taken from the
    /// region's own area: stub `index` of `region.stubs` (the site's rank
    /// among the region's sites). A stub beyond the area is
    /// `Other("ppc64: region stub area too small")`; a stub or trampoline
    /// beyond +-32 MiB of the site is `OutOfRange`, with nothing written.
    fn init_region_site(
        &self,
        p: &dyn Platform,
        rec: &mut Record,
        region: &CodeRegion,
        index: usize,
    ) -> Result<(), PatchError> {
        let _ = (region, index);
        self.prepare_site(p, rec, "ppc64: region stub area too small")
    }

    /// Writes `trap` back over the stub of `rec` (a site of a removed
    /// region), after checking that the site holds the nop (so nothing can
    /// reach the stub) and that the stub is `rec`'s complete stub. Words
    /// already holding `trap` are left alone.
    fn release_site(&self, p: &dyn Platform, rec: &Record) -> Result<(), PatchError> {
        let stub = match rec.arch {
            0 => return Ok(()),
            s => s,
        };
        expect_word(p, rec.ip, NOP)?;
        self.stub_target(p, rec)?;
        for i in 0..STUB_SIZE / 4 {
            let at = stub + 4 * i;
            let w = read_word(p, at)?;
            if w != TRAP {
                replace_insn(p, at, &to_insn(w), &to_insn(TRAP))?;
            }
        }
        Ok(())
    }

    fn begin_batch(&self, p: &dyn Platform) {
        self.text.begin(p);
    }

    /// Stub first (its `bl` to `target`), then the site `nop` -> `b stub`.
    /// In line: the engine's loop calls it for every site it enables.
    /// The branches between the site and its stub are encoded without a
    /// range check (`prepare_site` checked them); the stub's new `bl` is
    /// checked.
    #[inline]
    fn make_call(&self, p: &dyn Platform, rec: &Record, target: usize) -> Result<(), PatchError> {
        let stub = Self::stub_of(rec)?;
        let new = insn::branch_in_line(stub + 4 * STUB_BL, target, true)?;
        let w = self.text.writer(p);
        check_word(read_word_w(w, rec.ip)?, NOP)?;
        // The stub is checked whole, then its `bl` written only when it
        // changes (just read and checked: no second read).
        if self.stub_bl(w, rec, stub)? != new {
            write_word_w(w, stub + 4 * STUB_BL, new)?;
        }
        // The nop was checked above; only the engine writes sites.
        write_word_w(w, rec.ip, insn::branch_reaching(rec.ip, stub, false))
    }

    /// Site `b stub` -> `nop`; the stub is left as it is (unreachable).
    #[inline]
    fn make_nop(
        &self,
        p: &dyn Platform,
        rec: &Record,
        old_target: usize,
    ) -> Result<(), PatchError> {
        // The site branches to its stub whatever the stub calls.
        let _ = old_target;
        let b_stub = insn::branch_reaching(rec.ip, Self::stub_of(rec)?, false);
        let w = self.text.writer(p);
        check_word(read_word_w(w, rec.ip)?, b_stub)?;
        write_word_w(w, rec.ip, NOP)
    }

    /// Only the stub's `bl` changes (after checking the site branches to
    /// the stub and the stub calls `old_target`).
    fn modify_call(
        &self,
        p: &dyn Platform,
        rec: &Record,
        old_target: usize,
        new_target: usize,
    ) -> Result<(), PatchError> {
        let stub = Self::stub_of(rec)?;
        let b_stub = self.expected_insn(rec, Some(old_target))?;
        expect_word(p, rec.ip, from_insn(&b_stub).unwrap_or(NOP))?;
        let old = branch(stub + 4 * STUB_BL, old_target, true)?;
        let new = branch(stub + 4 * STUB_BL, new_target, true)?;
        replace_insn(p, stub + 4 * STUB_BL, &to_insn(old), &to_insn(new))
    }

    /// Rewrites the `bl` at `ftrace_call` / `ftrace_regs_call` to the local
    /// entry of `func` (the trampolines load the kernel TOC into r2, so the
    /// local entry is the right one and r12 need not hold `func`).
    fn update_ftrace_func(
        &self,
        p: &dyn Platform,
        which: Trampoline,
        func: usize,
    ) -> Result<(), PatchError> {
        let at = match which {
            Trampoline::Caller => self.layout.caller_call,
            Trampoline::RegsCaller => self.layout.regs_caller_call,
        };
        let entry = insn::local_entry(func, read_word(p, func)?, read_word(p, func + 4)?);
        let new = branch(at, entry, true)?;
        let cur = read_word(p, at)?;
        match decode_branch(at, cur) {
            Some((_, true)) => replace_insn(p, at, &to_insn(cur), &to_insn(new)),
            _ => Err(PatchError::Mismatch {
                expected: to_insn(new),
                found: to_insn(cur),
            }),
        }
    }

    fn trampoline_addr(&self, which: Trampoline) -> usize {
        match which {
            Trampoline::Caller => self.layout.caller,
            Trampoline::RegsCaller => self.layout.regs_caller,
        }
    }

    /// The pool trampoline of `ops`' slot (assigned on first request; the
    /// full-frame one when `ops` needs registers); `None` without a pool
    /// (none given, or out of reach of the stubs) or when it is exhausted.
    fn ops_trampoline(&self, ops: &crate::ops::Ops) -> Option<usize> {
        self.pool.as_ref()?.trampoline(ops)
    }

    /// `return_to_handler` of `ftrace_64.S` (kernel builds; none on the
    /// host). Both trampolines point `ret_slot` at the frame's `gpr[0]`,
    /// which the stub's `mtlr r0` turns into the function's return address.
    fn return_hook(&self) -> Option<usize> {
        #[cfg(target_arch = "powerpc64")]
        return Some(tramp::return_hook());
        #[cfg(not(target_arch = "powerpc64"))]
        None
    }
}

/// The trampolines (`ftrace_64.S`) and their addresses.
#[cfg(target_arch = "powerpc64")]
mod tramp {
    use crate::regs::{
        FREGS_FULL, FREGS_SIZE, OFF_FLAGS, OFF_GPR, OFF_IP, OFF_PARENT_IP, OFF_RET_SLOT, OFF_SP,
        OFF_SPARE,
    };
    use crate::tramp::{OPS_TRAMP_SLOTS, OpsSlots, OpsTrampPool};

    core::arch::global_asm!(
        include_str!("ftrace_64.S"),
        fregs_size = const FREGS_SIZE,
        ops_func = const crate::ops::OPS_OFF_FUNC,
        ops_state = const crate::ops::OPS_OFF_STATE,
        ops_enabled = const crate::ops::OPS_ENABLED_BIT,
        ops_self = const crate::ops::OPS_STATE_SELF_GUARDED,
        ops_state_hi = const crate::ops::OPS_OFF_STATE + if cfg!(target_endian = "big") { 0 } else { 2 },
        off_gpr = const OFF_GPR,
        off_ip = const OFF_IP,
        off_parent_ip = const OFF_PARENT_IP,
        off_sp = const OFF_SP,
        off_ret_slot = const OFF_RET_SLOT,
        off_flags = const OFF_FLAGS,
        fregs_full = const FREGS_FULL,
        fregs_guarded = const crate::regs::FREGS_GUARDED,
        nslots = const OPS_TRAMP_SLOTS,
        off_spare = const OFF_SPARE,
        max_cpus = const crate::recursion::MAX_CPUS,
        max_ctx = const crate::platform::Context::COUNT - 1,
        word_stride = const crate::recursion::layout::WORD_STRIDE,
        off_bits = const crate::recursion::layout::OFF_BITS,
        off_epoch = const crate::recursion::layout::OFF_EPOCH,
        off_quiet = const crate::recursion::layout::OFF_QUIET,
    );

    const _: () = assert!(FREGS_SIZE % 16 == 8 || FREGS_SIZE % 16 == 0);
    // The trampolines compare the state word's upper half-word only (one
    // `lhz` and one `cmplwi`): both values they look for have a zero lower
    // half.
    const _: () = assert!(
        crate::ops::OPS_ENABLED_BIT & 0xffff == 0
            && crate::ops::OPS_STATE_SELF_GUARDED & 0xffff == 0
    );

    unsafe extern "C" {
        // Code labels of ftrace_64.S; only their addresses are taken.
        static ftrace_caller: u32;
        static ftrace_regs_caller: u32;
        static ftrace_call: u32;
        static ftrace_regs_call: u32;
        static return_to_handler: u32;
        /// The pool's entries: every `ftrace_ops_tramp_<i>`, then every
        /// `ftrace_ops_regs_tramp_<i>` (the .S checks the count).
        static ftrace_ops_tramps: [usize; 2 * OPS_TRAMP_SLOTS];
    }

    /// The pool over [`OpsSlots::global`] (`ftrace_tramp_ops`, which the
    /// pool trampolines read).
    pub(super) fn ops_pool() -> OpsTrampPool {
        // SAFETY: `ftrace_ops_tramps` is an initialised, read-only table of
        // 2 * OPS_TRAMP_SLOTS addresses in ftrace_64.S.
        let t: [usize; 2 * OPS_TRAMP_SLOTS] = unsafe { ftrace_ops_tramps };
        OpsTrampPool::new(
            OpsSlots::global(),
            core::array::from_fn(|i| t[i]),
            core::array::from_fn(|i| t[OPS_TRAMP_SLOTS + i]),
        )
    }

    pub(super) fn caller() -> usize {
        core::ptr::addr_of!(ftrace_caller) as usize
    }
    pub(super) fn return_hook() -> usize {
        core::ptr::addr_of!(return_to_handler) as usize
    }
    pub(super) fn regs_caller() -> usize {
        core::ptr::addr_of!(ftrace_regs_caller) as usize
    }
    pub(super) fn caller_call() -> usize {
        core::ptr::addr_of!(ftrace_call) as usize
    }
    pub(super) fn regs_caller_call() -> usize {
        core::ptr::addr_of!(ftrace_regs_call) as usize
    }
}

#[cfg(test)]
mod tests;
