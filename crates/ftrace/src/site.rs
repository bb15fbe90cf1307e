//! The site table: one 8-byte entry per patchable site (Linux's
//! `dyn_ftrace`, which is 16), holding what the engine cannot derive.
//!
//! An entry stores the site's address as a 32-bit offset from the
//! table's base and one word packing the reference count, the stored
//! [`RecFlags`] and a code for the call target the site holds now (0: the
//! nop; it always agrees with the bytes). Everything else is derived when
//! asked for, never stored beside it:
//!
//! - the target address, from the code through the table's small list of
//!   targets in use (the shared trampolines and the per-callback ones);
//! - whether a site is enabled, calls the regs trampoline or a callback's
//!   own trampoline, from its target ([`Site::flags`]);
//! - its function's name, from the symbol table (sites and symbols are
//!   both sorted, so a walk over all sites resolves them in one pass);
//! - its region, from the regions' address spans (a region's sites are
//!   contiguous in the table: [`crate::Ftrace::add_region`] refuses
//!   overlaps);
//! - the arch word ([`Record::arch_word`], ppc64's stub), from the site's
//!   rank within its region ([`crate::Arch::site_word`]).
//!
//! [`Site`] is the assembled view the engine hands out.

use alloc::vec::Vec;

use crate::planner::Want;
use crate::record::{REF_MASK, RecFlags, Record};

/// Bits of an entry's word holding the target code.
const CODE_SHIFT: u32 = 16;
const CODE_MASK: u32 = 0xff << CODE_SHIFT;
/// Target codes available (code 0 is the nop).
const MAX_CODES: usize = 256;

const _: () = assert!(2 * (crate::planner::MAX_OWN_TRAMPOLINES + 3) <= MAX_CODES);

/// Stored beside FAILED when a site failed its preparation: it owns
/// nothing to release ([`crate::Arch::release_site`] is not called).
const UNPREPARED: u32 = 1 << 24;

const _: () = assert!(REF_MASK < (1 << CODE_SHIFT));
const _: () = assert!(RecFlags::all().bits() & (CODE_MASK | REF_MASK | UNPREPARED) == 0);

/// One stored site: 8 bytes on every arch.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    /// `ip - base`, wrapping (a signed 32-bit distance on 64-bit CPUs).
    off: u32,
    /// Reference count (low 16 bits), target code (bits 16..24), stored
    /// [`RecFlags`] (FAILED, REGS, IPMODIFY, TRAMP) and UNPREPARED (the
    /// high byte).
    word: u32,
}

const _: () = assert!(core::mem::size_of::<Entry>() == 8);

impl Entry {
    /// The [`Record::flags`] word (count and stored flags, no code).
    fn rec_word(self) -> u32 {
        self.word & !(CODE_MASK | UNPREPARED)
    }

    fn code(self) -> u8 {
        ((self.word & CODE_MASK) >> CODE_SHIFT) as u8
    }

    fn is_failed(self) -> bool {
        self.word & RecFlags::FAILED.bits() != 0
    }
}

/// One patchable site as the engine shows it: its record, what it calls,
/// its region and its function's name, assembled from the 8-byte stored
/// entry ([module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Site {
    pub(crate) rec: Record,
    /// Current call target (0: nop); agrees with the bytes.
    pub(crate) target: usize,
    /// 0 for the boot table, else a [`crate::RegionId`]'s number.
    pub(crate) region: u32,
    /// The function's name, when symbols are known.
    pub(crate) name: Option<&'static str>,
}

/// The shared trampolines' addresses, to tell targets apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Targets {
    /// `ftrace_caller`.
    pub caller: usize,
    /// `ftrace_regs_caller`.
    pub regs_caller: usize,
}

impl Site {
    /// The record.
    pub fn record(&self) -> &Record {
        &self.rec
    }

    /// The site's address.
    pub fn ip(&self) -> usize {
        self.rec.ip
    }

    /// What the site calls now (0: the nop).
    pub fn target(&self) -> usize {
        self.target
    }

    /// The function's name, when symbols are known.
    pub fn name(&self) -> Option<&'static str> {
        self.name
    }

    /// True when the site failed a check and is never touched again.
    pub fn is_failed(&self) -> bool {
        self.rec.is_failed()
    }

    /// True when the site calls a trampoline.
    pub fn is_enabled(&self) -> bool {
        self.target != 0
    }

    /// The record's stored flags (FAILED, REGS, IPMODIFY, TRAMP) with the
    /// state derived from the target: ENABLED, REGS_EN (the regs
    /// trampoline), TRAMP_EN (a callback's own trampoline).
    pub fn flags(&self, t: &Targets) -> RecFlags {
        derived_flags(self.rec.rec_flags(), self.target, t)
    }
}

/// `stored` with ENABLED, REGS_EN and TRAMP_EN derived from `target`.
pub(crate) fn derived_flags(stored: RecFlags, target: usize, t: &Targets) -> RecFlags {
    let mut f = stored;
    f.set(RecFlags::ENABLED, target != 0);
    f.set(RecFlags::REGS_EN, target != 0 && target == t.regs_caller);
    f.set(
        RecFlags::TRAMP_EN,
        target != 0 && target != t.caller && target != t.regs_caller,
    );
    f
}

/// A site address that is not within +-2 GiB of the table's base (64-bit
/// CPUs only: a 32-bit offset reaches the whole space of a 32-bit one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OutOfReach {
    pub ip: usize,
    pub base: usize,
}

/// The call targets in use, by code (code 0 is the nop, 0): a fixed
/// array indexed by the 8-bit code, so a lookup needs no bounds check.
#[derive(Debug, Clone)]
struct Codes {
    by_code: [usize; MAX_CODES],
    len: usize,
}

impl Codes {
    fn new() -> Self {
        Codes {
            by_code: [0; MAX_CODES],
            len: 1,
        }
    }

    fn get(&self, code: u8) -> usize {
        self.by_code[usize::from(code)]
    }

    fn find(&self, target: usize) -> Option<usize> {
        self.by_code[..self.len].iter().position(|&t| t == target)
    }

    /// The code of `target`, added when new; the caller made room
    /// ([`SiteTable::reserve_codes`]). Out of line: a pass over the table
    /// calls it once per run of equal targets.
    #[inline(never)]
    fn find_or_add(&mut self, target: usize) -> u32 {
        let c = match self.find(target) {
            Some(c) => c,
            None => {
                let c = self.len;
                self.by_code[c] = target;
                self.len += 1;
                c
            }
        };
        c as u32
    }
}

/// Every site, sorted by address.
#[derive(Debug)]
pub(crate) struct SiteTable {
    /// What the offsets are relative to (the lowest boot site).
    base: usize,
    entries: Vec<Entry>,
    /// Call targets by code.
    targets: alloc::boxed::Box<Codes>,
}

impl SiteTable {
    /// Sites for these addresses in any order (zeros and duplicates
    /// dropped), all nops, offsets from `base` (`None`: the lowest address).
    pub(crate) fn from_addrs(
        addrs: impl IntoIterator<Item = usize>,
        base: Option<usize>,
    ) -> Result<Self, OutOfReach> {
        let mut ips: Vec<usize> = addrs.into_iter().filter(|&ip| ip != 0).collect();
        ips.sort_unstable();
        ips.dedup();
        let base = base.unwrap_or(ips.first().copied().unwrap_or(0));
        let mut t = SiteTable {
            base,
            entries: Vec::with_capacity(ips.len()),
            targets: alloc::boxed::Box::new(Codes::new()),
        };
        for ip in ips {
            let off = t.offset(ip)?;
            t.entries.push(Entry { off, word: 0 });
        }
        Ok(t)
    }

    /// The base offsets are relative to.
    pub(crate) fn base(&self) -> usize {
        self.base
    }

    fn offset(&self, ip: usize) -> Result<u32, OutOfReach> {
        let d = ip.wrapping_sub(self.base);
        #[cfg(target_pointer_width = "64")]
        if (d as isize) < i32::MIN as isize || (d as isize) > i32::MAX as isize {
            return Err(OutOfReach {
                ip,
                base: self.base,
            });
        }
        Ok(d as u32)
    }

    fn ip_of(&self, e: Entry) -> usize {
        self.base.wrapping_add(e.off as i32 as isize as usize)
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Site `i`'s address.
    pub(crate) fn ip(&self, i: usize) -> usize {
        self.ip_of(self.entries[i])
    }

    /// Every address, in order.
    pub(crate) fn ips(&self) -> impl ExactSizeIterator<Item = usize> + Clone + '_ {
        self.entries.iter().map(|&e| self.ip_of(e))
    }

    /// Every site's address and whether it is FAILED, in order.
    pub(crate) fn ips_failed(&self) -> impl ExactSizeIterator<Item = (usize, bool)> + '_ {
        self.entries.iter().map(|&e| (self.ip_of(e), e.is_failed()))
    }

    /// Site `i`'s record, without the arch word (the engine adds it).
    pub(crate) fn record(&self, i: usize) -> Record {
        let e = self.entries[i];
        Record::with_flags(self.ip_of(e), e.rec_word())
    }

    /// Stores what an arch hook changed in `rec` (address, flags, count):
    /// see [`resort`](Self::resort) after moving addresses.
    pub(crate) fn store(&mut self, i: usize, rec: &Record) -> Result<(), OutOfReach> {
        let off = self.offset(rec.ip)?;
        let e = &mut self.entries[i];
        e.off = off;
        e.word = (e.word & (CODE_MASK | UNPREPARED)) | (rec.flags & !(CODE_MASK | UNPREPARED));
        Ok(())
    }

    /// True when site `i` is FAILED.
    pub(crate) fn is_failed(&self, i: usize) -> bool {
        self.entries[i].is_failed()
    }

    /// Marks site `i` FAILED.
    pub(crate) fn set_failed(&mut self, i: usize) {
        self.entries[i].word |= RecFlags::FAILED.bits();
    }

    /// Marks site `i` FAILED in its preparation (it owns nothing).
    pub(crate) fn set_unprepared(&mut self, i: usize) {
        self.entries[i].word |= RecFlags::FAILED.bits() | UNPREPARED;
    }

    /// True when site `i` failed its preparation.
    pub(crate) fn is_unprepared(&self, i: usize) -> bool {
        self.entries[i].word & UNPREPARED != 0
    }

    /// Site `i`'s stored flags.
    pub(crate) fn rec_flags(&self, i: usize) -> RecFlags {
        RecFlags::from_bits_truncate(self.entries[i].word)
    }

    /// Replaces site `i`'s stored flags (FAILED kept as given) and count
    /// (saturating at [`REF_MASK`]).
    pub(crate) fn set_state(&mut self, i: usize, flags: RecFlags, count: u32) {
        let e = &mut self.entries[i];
        e.word = (e.word & (CODE_MASK | UNPREPARED)) | flags.bits() | count.min(REF_MASK);
    }

    /// What site `i` calls now (0: the nop).
    pub(crate) fn target(&self, i: usize) -> usize {
        self.targets.get(self.entries[i].code())
    }

    /// True when site `i` calls a trampoline.
    pub(crate) fn is_enabled(&self, i: usize) -> bool {
        self.entries[i].code() != 0
    }

    /// The code of `target`, added to the list when new. The list holds
    /// the shared trampolines and the callbacks' own (a bounded pool); when
    /// it is full, codes no site uses any more are dropped first.
    fn code_of(&mut self, target: usize) -> usize {
        if let Some(c) = self.targets.find(target) {
            return c;
        }
        if self.targets.len == MAX_CODES {
            self.compact_codes();
        }
        // Cannot fail: a plan has at most `MAX_OWN_TRAMPOLINES` + 3
        // targets, and at most two plans' targets are in use at once.
        assert!(
            self.targets.len < MAX_CODES,
            "more than 255 call targets in use at once"
        );
        let c = self.targets.len;
        self.targets.by_code[c] = target;
        self.targets.len += 1;
        c
    }

    /// Renumbers the codes in use, dropping the others.
    fn compact_codes(&mut self) {
        let mut used = [false; MAX_CODES];
        used[0] = true;
        for e in &self.entries {
            used[usize::from(e.code())] = true;
        }
        let mut renum = [0u32; MAX_CODES];
        let mut kept = Codes::new();
        kept.len = 0;
        for c in 0..self.targets.len {
            if used[c] {
                renum[c] = kept.len as u32;
                kept.by_code[kept.len] = self.targets.by_code[c];
                kept.len += 1;
            }
        }
        for e in &mut self.entries {
            e.word = (e.word & !CODE_MASK) | (renum[usize::from(e.code())] << CODE_SHIFT);
        }
        *self.targets = kept;
    }

    /// Makes sure a whole plan's targets will find a code without
    /// renumbering (so that a pass can look codes up while it writes
    /// entries): drops the codes no site uses when fewer than a plan's
    /// worth are free.
    fn reserve_codes(&mut self) {
        if self.targets.len + crate::planner::MAX_OWN_TRAMPOLINES + 3 > MAX_CODES {
            self.compact_codes();
        }
    }

    /// Records that site `i` now calls `target` (0: the nop).
    pub(crate) fn set_target(&mut self, i: usize, target: usize) {
        let c = self.code_of(target) as u32;
        let e = &mut self.entries[i];
        e.word = (e.word & !CODE_MASK) | (c << CODE_SHIFT);
    }

    /// How many sites that are not FAILED hold another target than
    /// `target(plan[i])`.
    pub(crate) fn count_changes<W>(&self, plan: &[W], target: impl Fn(&W) -> usize) -> usize {
        debug_assert_eq!(plan.len(), self.entries.len());
        let targets = &*self.targets;
        self.entries
            .iter()
            .zip(plan)
            .map(|(e, w)| usize::from(!e.is_failed() && targets.get(e.code()) != target(w)))
            .sum()
    }

    /// Calls `f(i, record, old, new)` for every site `i` that is not FAILED
    /// and holds another target (`old`) than `target(plan[i])` (`new`), in
    /// order; stops at the first error, returning it with the number of
    /// sites `f` was called for. `record` has no arch word.
    pub(crate) fn try_each_change<W, E>(
        &self,
        plan: &[W],
        target: impl Fn(&W) -> usize,
        mut f: impl FnMut(usize, &Record, usize, usize) -> Result<(), E>,
    ) -> Result<usize, (usize, E)> {
        debug_assert_eq!(plan.len(), self.entries.len());
        let mut calls = 0;
        for (i, (&e, w)) in self.entries.iter().zip(plan).enumerate() {
            let (old, new) = (self.targets.get(e.code()), target(w));
            if e.is_failed() || old == new {
                continue;
            }
            calls += 1;
            let rec = Record::with_flags(self.ip_of(e), e.rec_word());
            f(i, &rec, old, new).map_err(|err| (calls, err))?;
        }
        Ok(calls)
    }

    /// The first `n` sites [`try_each_change`](Self::try_each_change)
    /// visits (all when `None`), with the target each held: `(i, old)`.
    pub(crate) fn changes<W>(
        &self,
        plan: &[W],
        target: impl Fn(&W) -> usize,
        n: Option<usize>,
    ) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let _ = self.try_each_change(plan, target, |i, _, old, _| {
            if n.is_some_and(|n| out.len() >= n) {
                return Err(());
            }
            out.push((i, old));
            Ok(())
        });
        out
    }

    /// Stores, for every site that is not FAILED, the state `plan`'s
    /// entry gives (its flags and count, its target): the site now holds
    /// that target. One pass over the table; a target's code is looked up
    /// once per run of equal entries, which is what plans are made of (a
    /// uniform plan is one run).
    pub(crate) fn commit_plan(&mut self, plan: &[Want]) {
        debug_assert_eq!(plan.len(), self.entries.len());
        let Some(first) = plan.first() else {
            return;
        };
        self.reserve_codes();
        let codes = &mut *self.targets;
        let pack =
            |codes: &mut Codes, w: &Want| w.state() | (codes.find_or_add(w.target) << CODE_SHIFT);
        let mut last = (*first, pack(codes, first));
        for (e, &w) in self.entries.iter_mut().zip(plan) {
            if e.is_failed() {
                continue;
            }
            if last.0 != w {
                last = (w, pack(codes, &w));
            }
            e.word = (e.word & UNPREPARED) | last.1;
        }
    }

    /// Index of the site at exactly `ip`. O(log n).
    pub(crate) fn index_of(&self, ip: usize) -> Option<usize> {
        let i = self.partition_point(ip);
        (i < self.len() && self.ip(i) == ip).then_some(i)
    }

    /// Number of sites below `ip`. O(log n).
    pub(crate) fn partition_point(&self, ip: usize) -> usize {
        self.entries.partition_point(|&e| self.ip_of(e) < ip)
    }

    /// Re-sorts after backends moved addresses (within their functions)
    /// during init.
    pub(crate) fn resort(&mut self) {
        let base = self.base;
        self.entries
            .sort_by_key(|e| base.wrapping_add(e.off as i32 as isize as usize));
    }

    /// Keeps the sites `keep(index, ip)` accepts.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(usize, usize) -> bool) {
        let base = self.base;
        let mut i = 0;
        self.entries.retain(|e| {
            let k = keep(i, base.wrapping_add(e.off as i32 as isize as usize));
            i += 1;
            k
        });
    }

    /// Adds the sites of `more` (same base unless this table is empty; all
    /// nops: a new region's) and sorts; the caller checked that no address
    /// is already present.
    pub(crate) fn merge(&mut self, more: &SiteTable) {
        if self.entries.is_empty() {
            self.base = more.base;
        }
        debug_assert_eq!(self.base, more.base);
        debug_assert!(more.entries.iter().all(|e| e.code() == 0));
        self.entries.extend_from_slice(&more.entries);
        self.resort();
        debug_assert!(
            self.entries
                .windows(2)
                .all(|w| self.ip_of(w[0]) < self.ip_of(w[1])),
            "duplicate site"
        );
    }
}

/// Bytes the engine stores per site (its entry; the short list of targets
/// in use is shared by all sites).
pub const SITE_BYTES: usize = core::mem::size_of::<Entry>();

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_eight_bytes_and_round_trip() {
        assert_eq!(SITE_BYTES, 8);
        let base = 0x8000_0000usize;
        let mut t =
            SiteTable::from_addrs([base + 0x30, 0, base + 0x10, base - 0x20], Some(base)).unwrap();
        assert_eq!(
            t.ips().collect::<Vec<_>>(),
            [base - 0x20, base + 0x10, base + 0x30]
        );
        t.set_state(1, RecFlags::REGS | RecFlags::TRAMP, 7);
        t.set_target(1, 0xdead_0000);
        t.set_target(2, 0xbeef_0000);
        t.set_failed(0);
        assert_eq!(t.target(1), 0xdead_0000);
        assert_eq!(t.target(2), 0xbeef_0000);
        assert_eq!(t.target(0), 0);
        let r = t.record(1);
        assert_eq!((r.ip(), r.refcount()), (base + 0x10, 7));
        assert_eq!(r.rec_flags(), RecFlags::REGS | RecFlags::TRAMP);
        assert!(t.is_failed(0) && !t.is_failed(1));
        t.set_target(1, 0);
        assert!(!t.is_enabled(1) && t.is_enabled(2));
        assert_eq!(t.index_of(base + 0x30), Some(2));
        assert_eq!(t.index_of(base + 0x31), None);
    }

    #[test]
    fn codes_in_disuse_are_recycled() {
        let mut t = SiteTable::from_addrs([0x1000, 0x2000], None).unwrap();
        for k in 0..1000 {
            t.set_target(0, 0x10_0000 + k);
            assert_eq!(t.target(0), 0x10_0000 + k);
        }
        t.set_target(1, 0x42);
        assert_eq!(t.target(1), 0x42);
        assert_eq!(t.target(0), 0x10_0000 + 999);
    }

    #[cfg(target_pointer_width = "64")]
    #[test]
    fn sites_beyond_two_gib_of_the_base_are_refused() {
        let base = 0xffff_ffff_4000_0000usize;
        assert_eq!(
            SiteTable::from_addrs([base, base + (1 << 31)], None).unwrap_err(),
            OutOfReach {
                ip: base + (1 << 31),
                base
            }
        );
        assert!(SiteTable::from_addrs([base, base + (1 << 31) - 1], None).is_ok());
    }
}
