//! Host tests of the ppc64 backend on simulated text.

use alloc::vec::Vec;
use std::boxed::Box;

use super::insn::{self, MFLR_R0, MTLR_R0, NOP, STUB_SIZE, TRAP, decode_branch};
use super::{Layout, Ppc64Arch};
use crate::arch::{Arch, PatchError, Trampoline};
use crate::mock::{MockPlatform, TEXT_BASE};
use crate::ops::{Ops, OpsFlags};
use crate::record::Record;
use crate::region::CodeRegion;
use crate::regs::FtraceRegs;
use crate::update::{Ftrace, SiteState};

/// Simulated memory map: functions, then the stub area, then the
/// trampolines, then a dispatcher function.
const FUNCS: usize = TEXT_BASE;
const STUBS: usize = TEXT_BASE + 0x1000;
const CALLER: usize = TEXT_BASE + 0x2000;
const REGS_CALLER: usize = TEXT_BASE + 0x2100;
const CALLER_CALL: usize = CALLER + 0x40;
const REGS_CALLER_CALL: usize = REGS_CALLER + 0x40;
const DISPATCH: usize = TEXT_BASE + 0x3000;
const TEXT_LEN: usize = 0x4000;
/// addis r2,r12,10; addi r2,r2,-25948 (from the kernel's disassembly).
const TOC_PAIR: [u32; 2] = [0x3c4c_000a, 0x3842_9aa4];

fn layout(stubs: usize) -> Layout {
    Layout {
        stubs_start: STUBS,
        stubs_end: STUBS + stubs * STUB_SIZE,
        caller: CALLER,
        regs_caller: REGS_CALLER,
        caller_call: CALLER_CALL,
        regs_caller_call: REGS_CALLER_CALL,
    }
}

fn poke(p: &MockPlatform, addr: usize, words: &[u32]) {
    for (i, w) in words.iter().enumerate() {
        p.poke(addr + 4 * i, &w.to_be_bytes());
    }
}

fn peek(p: &MockPlatform, addr: usize) -> u32 {
    u32::from_be_bytes(p.peek(addr, 4).try_into().unwrap())
}

/// A platform with `n` functions every 0x40 bytes (even ones with the TOC
/// pair), `n` stubs of `trap`, trampolines with a `bl` at their patch
/// points; returns the site-table entries (global entries).
fn setup(n: usize) -> (&'static MockPlatform, Vec<usize>) {
    let p: &'static MockPlatform = Box::leak(Box::new(MockPlatform::new(TEXT_LEN)));
    let mut entries = Vec::new();
    for i in 0..n {
        let f = FUNCS + 0x40 * i;
        if i % 2 == 0 {
            poke(p, f, &[TOC_PAIR[0], TOC_PAIR[1], NOP, MFLR_R0]);
        } else {
            poke(p, f, &[NOP, MFLR_R0]);
        }
        entries.push(f);
    }
    poke(p, STUBS, &[TRAP; 64]);
    poke(
        p,
        CALLER_CALL,
        &[insn::branch(CALLER_CALL, CALLER + 0x80, true).unwrap()],
    );
    poke(
        p,
        REGS_CALLER_CALL,
        &[insn::branch(REGS_CALLER_CALL, REGS_CALLER + 0x80, true).unwrap()],
    );
    poke(p, DISPATCH, &TOC_PAIR);
    (p, entries)
}

fn site_of(entry: usize) -> usize {
    if (entry - FUNCS) / 0x40 % 2 == 0 {
        entry + 8
    } else {
        entry
    }
}

/// The record the engine hands `init_site` for the boot site ranked `rank`.
fn boot_rec(arch: &Ppc64Arch, entry: usize, rank: usize) -> Record {
    let mut r = Record::new(entry);
    r.arch = arch.site_word(None, rank);
    r
}

#[test]
fn init_site_moves_past_the_toc_pair_and_writes_the_stub() {
    let (p, entries) = setup(2);
    let arch = Ppc64Arch::with_layout(layout(2));
    for (i, &e) in entries.iter().enumerate() {
        let mut rec = boot_rec(&arch, e, i);
        arch.init_site(p, &mut rec).unwrap();
        assert_eq!(rec.ip, site_of(e));
        assert_eq!(rec.arch, STUBS + i * STUB_SIZE);
        assert_eq!(peek(p, rec.ip), NOP, "the site stays a nop");
        let stub = rec.arch;
        assert_eq!(peek(p, stub), MFLR_R0);
        assert_eq!(
            decode_branch(stub + 4, peek(p, stub + 4)),
            Some((CALLER, true))
        );
        assert_eq!(peek(p, stub + 8), MTLR_R0);
        assert_eq!(
            decode_branch(stub + 12, peek(p, stub + 12)),
            Some((rec.ip + 4, false))
        );
        assert_eq!(arch.check_stub(p, &rec, CALLER), Ok(None));
    }
    // A second init of the same site (another instance) changes nothing.
    let before = p.peek(TEXT_BASE, TEXT_LEN);
    let writes = p.writes.load(core::sync::atomic::Ordering::Relaxed);
    let other = Ppc64Arch::with_layout(layout(2));
    let mut rec = boot_rec(&other, entries[1], 1);
    other.init_site(p, &mut rec).unwrap();
    assert_eq!(rec.arch, STUBS + STUB_SIZE);
    assert_eq!(p.peek(TEXT_BASE, TEXT_LEN), before);
    assert_eq!(p.writes.load(core::sync::atomic::Ordering::Relaxed), writes);
}

#[test]
fn init_site_reports_expected_and_found_words() {
    let (p, entries) = setup(2);
    let arch = Ppc64Arch::with_layout(layout(2));
    // Corrupt the nop after the TOC pair: reported at the computed site.
    poke(p, entries[0] + 8, &[0x6800_0000]);
    let mut rec = boot_rec(&arch, entries[0], 0);
    assert_eq!(
        arch.init_site(p, &mut rec),
        Err(PatchError::Mismatch {
            expected: insn::to_insn(NOP),
            found: insn::to_insn(0x6800_0000)
        })
    );
    assert_eq!(rec.ip, entries[0] + 8);
    assert_eq!(peek(p, STUBS), TRAP, "no stub written");
    // A function that starts with neither the nop nor the TOC pair.
    poke(p, entries[1], &[0x6800_0000]);
    let mut rec = boot_rec(&arch, entries[1], 1);
    assert!(matches!(
        arch.init_site(p, &mut rec),
        Err(PatchError::Mismatch { .. })
    ));
    assert_eq!(rec.ip, entries[1]);
    assert_eq!(peek(p, STUBS + STUB_SIZE), TRAP);
}

#[test]
fn stub_area_too_small_and_out_of_range() {
    let (p, entries) = setup(2);
    let arch = Ppc64Arch::with_layout(layout(1));
    let mut r0 = boot_rec(&arch, entries[0], 0);
    let mut r1 = boot_rec(&arch, entries[1], 1);
    arch.init_site(p, &mut r0).unwrap();
    assert_eq!(
        arch.init_site(p, &mut r1),
        Err(PatchError::Other(
            "ppc64: no stub for this site-table entry"
        ))
    );
    let mut stray = Record::new(entries[1] + 0x20);
    assert!(
        arch.init_site(p, &mut stray).is_err(),
        "not in the site table"
    );

    // Stubs 64 MiB away: out of range of every site; nothing written.
    let far = STUBS + (64 << 20);
    let arch = Ppc64Arch::with_layout(Layout {
        stubs_start: far,
        stubs_end: far + 64,
        ..layout(1)
    });
    let mut rec = boot_rec(&arch, entries[1], 1);
    assert_eq!(
        arch.init_site(p, &mut rec),
        Err(PatchError::OutOfRange {
            site: entries[1],
            target: far + STUB_SIZE
        })
    );
    // A trampoline out of range of the stub.
    let arch = Ppc64Arch::with_layout(Layout {
        regs_caller: STUBS + (40 << 20),
        ..layout(4)
    });
    let mut rec = boot_rec(&arch, entries[1], 1);
    assert!(matches!(
        arch.init_site(p, &mut rec),
        Err(PatchError::OutOfRange { .. })
    ));
}

extern "C" fn cb(_ip: usize, _parent: usize, _ops: &Ops, _regs: &mut FtraceRegs) {}
std::thread_local! {
    // One pair per test (each test runs on its own thread): an ops belongs
    // to the first engine that uses it.
    static PLAIN_OPS: &'static Ops = alloc::boxed::Box::leak(alloc::boxed::Box::new(Ops::new(cb, OpsFlags::empty())));
    static REGS_OPS: &'static Ops = alloc::boxed::Box::leak(alloc::boxed::Box::new(Ops::new(cb, OpsFlags::SAVE_REGS)));
}

/// This test's plain callback.
fn plain() -> &'static Ops {
    PLAIN_OPS.with(|o| *o)
}

/// This test's full-frame callback.
fn regs_ops() -> &'static Ops {
    REGS_OPS.with(|o| *o)
}

/// Stand-ins for the dispatchers within `bl` reach of the simulated text
/// (the real functions are host code): the engine's
/// [`Ftrace::with_dispatchers`] seam points the patch points at them.
const SIM_LIST: usize = DISPATCH;
const SIM_ASSIST: usize = DISPATCH + 0x100;

#[test]
fn engine_enable_switch_disable() {
    let (p, entries) = setup(4);
    let mut ft = Ftrace::new(Ppc64Arch::with_layout(layout(4)), p, entries.clone(), None)
        .unwrap()
        .with_dispatchers(SIM_LIST, SIM_ASSIST);
    let report = ft.init();
    assert_eq!(report.failed, Vec::new());
    let sites: Vec<usize> = entries.iter().map(|&e| site_of(e)).collect();
    let recs: Vec<Record> = ft.sites().map(|s| *s.record()).collect();
    assert_eq!(recs.iter().map(|r| r.ip).collect::<Vec<_>>(), sites);
    let snapshot = p.peek(TEXT_BASE, TEXT_LEN);

    ft.register(plain()).unwrap();
    for r in &recs {
        assert_eq!(
            decode_branch(r.ip, peek(p, r.ip)),
            Some((r.arch, false)),
            "site branches to its stub"
        );
        assert_eq!(ft.arch().check_stub(p, r, CALLER), Ok(None));
    }

    // Switching to the regs trampoline rewrites only the stubs' `bl`.
    let site_words: Vec<u32> = recs.iter().map(|r| peek(p, r.ip)).collect();
    ft.register(regs_ops()).unwrap();
    for (r, w) in recs.iter().zip(&site_words) {
        assert_eq!(peek(p, r.ip), *w);
        assert_eq!(ft.arch().check_stub(p, r, REGS_CALLER), Ok(None));
    }
    assert_eq!(ft.site_state(0), SiteState::RegsCaller);
    ft.unregister(regs_ops()).unwrap();
    ft.unregister(plain()).unwrap();
    assert_eq!(ft.check_all_nops(), 0);
    assert_eq!(
        p.peek(TEXT_BASE, TEXT_LEN),
        snapshot,
        "enable/disable is byte-exact"
    );
    ft.register(plain()).unwrap();
    ft.unregister(plain()).unwrap();
    assert_eq!(p.peek(TEXT_BASE, TEXT_LEN), snapshot, "and again");
}

#[test]
fn modify_call_checks_the_site_and_the_stub() {
    let (p, entries) = setup(1);
    let arch = Ppc64Arch::with_layout(layout(1));
    let mut rec = boot_rec(&arch, entries[0], 0);
    arch.init_site(p, &mut rec).unwrap();
    // Site still a nop: modify_call refuses, writes nothing.
    assert!(matches!(
        arch.modify_call(p, &rec, CALLER, REGS_CALLER),
        Err(PatchError::Mismatch { .. })
    ));
    assert_eq!(arch.check_stub(p, &rec, CALLER), Ok(None));
    arch.make_call(p, &rec, CALLER).unwrap();
    // Stub calling the wrong trampoline: refused.
    assert!(matches!(
        arch.modify_call(p, &rec, REGS_CALLER, CALLER),
        Err(PatchError::Mismatch { .. })
    ));
    arch.modify_call(p, &rec, CALLER, REGS_CALLER).unwrap();
    assert_eq!(arch.check_stub(p, &rec, REGS_CALLER), Ok(None));
    // make_nop then make_call back to the caller: stub first, then site.
    arch.make_nop(p, &rec, REGS_CALLER).unwrap();
    assert_eq!(peek(p, rec.ip), NOP);
    arch.make_call(p, &rec, CALLER).unwrap();
    assert_eq!(arch.check_stub(p, &rec, CALLER), Ok(None));
    // A corrupted stub is detected before the site is touched.
    arch.make_nop(p, &rec, CALLER).unwrap();
    poke(p, rec.arch + 8, &[NOP]);
    assert!(matches!(
        arch.make_call(p, &rec, CALLER),
        Err(PatchError::Mismatch { .. })
    ));
    assert_eq!(peek(p, rec.ip), NOP);
    assert!(arch.check_stub(p, &rec, CALLER).unwrap().is_some());
}

#[test]
fn update_ftrace_func_targets_the_local_entry() {
    let (p, _) = setup(0);
    let arch = Ppc64Arch::with_layout(layout(1));
    arch.update_ftrace_func(p, Trampoline::Caller, DISPATCH)
        .unwrap();
    assert_eq!(
        decode_branch(CALLER_CALL, peek(p, CALLER_CALL)),
        Some((DISPATCH + 8, true))
    );
    arch.update_ftrace_func(p, Trampoline::RegsCaller, DISPATCH + 0x100)
        .unwrap();
    assert_eq!(
        decode_branch(REGS_CALLER_CALL, peek(p, REGS_CALLER_CALL)),
        Some((DISPATCH + 0x100, true))
    );
    // The patch point must hold a `bl`.
    poke(p, CALLER_CALL, &[NOP]);
    assert!(matches!(
        arch.update_ftrace_func(p, Trampoline::Caller, DISPATCH),
        Err(PatchError::Mismatch { .. })
    ));
}

/// Region stubs: their own area, after the boot stubs.
const REGION_STUBS: usize = STUBS + 0x800;

#[test]
fn region_stubs_written_then_trapped_again() {
    let (p, entries) = setup(6);
    poke(p, REGION_STUBS, &[TRAP; 8]);
    let boot = &entries[..4];
    let mut ft = Ftrace::new(Ppc64Arch::with_layout(layout(4)), p, boot.to_vec(), None)
        .unwrap()
        .with_dispatchers(SIM_LIST, SIM_ASSIST);
    assert_eq!(ft.init().failed, Vec::new());
    ft.register(plain()).unwrap();
    ft.register(regs_ops()).unwrap();
    let snapshot = p.peek(TEXT_BASE, TEXT_LEN);
    let region = CodeRegion {
        name: "r",
        sites: alloc::vec![entries[5], entries[4]],
        stubs: REGION_STUBS..REGION_STUBS + 2 * STUB_SIZE,
    };
    let rep = ft.add_region(region).unwrap();
    assert_eq!((rep.total, rep.failed.len(), rep.enabled), (2, 0, 2));
    for (k, &e) in entries[4..].iter().enumerate() {
        let i = ft.record_index(site_of(e)).unwrap();
        let rec = *ft.site(i).record();
        assert_eq!(
            rec.arch,
            REGION_STUBS + k * STUB_SIZE,
            "stub by rank in the region's table"
        );
        assert_eq!(
            decode_branch(rec.ip, peek(p, rec.ip)),
            Some((rec.arch, false))
        );
        assert_eq!(ft.arch().check_stub(p, &rec, REGS_CALLER), Ok(None));
    }
    ft.remove_region(rep.id).unwrap();
    assert!(
        p.peek(TEXT_BASE, TEXT_LEN) == snapshot,
        "sites nops, region stubs all trap again"
    );
    ft.unregister(regs_ops()).unwrap();
    ft.unregister(plain()).unwrap();
    assert_eq!(ft.check_all_nops(), 0);

    // A region whose stubs are too few or too far: failed records, nothing written.
    let before = p.peek(TEXT_BASE, TEXT_LEN);
    let small = CodeRegion {
        name: "small",
        sites: entries[4..].to_vec(),
        stubs: REGION_STUBS..REGION_STUBS + STUB_SIZE,
    };
    let rep = ft.add_region(small).unwrap();
    assert_eq!(rep.failed.len(), 1);
    assert_eq!(
        rep.failed[0].error,
        PatchError::Other("ppc64: region stub area too small")
    );
    ft.remove_region(rep.id).unwrap();
    assert!(p.peek(TEXT_BASE, TEXT_LEN) == before);
    let far = REGION_STUBS + (64 << 20);
    let rep = ft
        .add_region(CodeRegion {
            name: "far",
            sites: alloc::vec![entries[4]],
            stubs: far..far + 16,
        })
        .unwrap();
    assert_eq!(
        rep.failed[0].error,
        PatchError::OutOfRange {
            site: site_of(entries[4]),
            target: far
        }
    );
    ft.remove_region(rep.id).unwrap();
    assert!(p.peek(TEXT_BASE, TEXT_LEN) == before);
}

/// Stubs are derived from each site's rank in its own table, which
/// regions below and between boot sites must not shift: the boot sites
/// keep stubs 0..4 whatever regions come and go, every enabled site
/// branches to the stub that calls its target.
#[test]
fn regions_below_and_between_boot_sites_keep_every_stub() {
    let (p, entries) = setup(8);
    poke(p, REGION_STUBS, &[TRAP; 24]);
    // Boot: functions 2, 3, 5, 7; regions: {0, 1} below, {4} and {6} between.
    let boot: Vec<usize> = [2, 3, 5, 7].iter().map(|&k| entries[k]).collect();
    let mut ft = Ftrace::new(Ppc64Arch::with_layout(layout(4)), p, boot.clone(), None)
        .unwrap()
        .with_dispatchers(SIM_LIST, SIM_ASSIST);
    assert_eq!(ft.init().failed, Vec::new());
    ft.register(plain()).unwrap();
    let area = |k: usize| REGION_STUBS + k * 2 * STUB_SIZE..REGION_STUBS + (k + 1) * 2 * STUB_SIZE;
    let mut ids = Vec::new();
    for (k, sites) in [
        alloc::vec![entries[0], entries[1]],
        alloc::vec![entries[4]],
        alloc::vec![entries[6]],
    ]
    .into_iter()
    .enumerate()
    {
        let rep = ft
            .add_region(CodeRegion {
                name: "r",
                sites,
                stubs: area(k),
            })
            .unwrap();
        assert_eq!(rep.failed, Vec::new());
        ids.push(rep.id);
    }
    let check = |ft: &Ftrace<Ppc64Arch, MockPlatform>| {
        for (rank, &e) in boot.iter().enumerate() {
            let i = ft.record_index(site_of(e)).unwrap();
            assert_eq!(ft.record_region(i), None);
            assert_eq!(ft.site(i).record().arch_word(), STUBS + rank * STUB_SIZE);
        }
        for (i, s) in ft.sites().enumerate() {
            let rec = s.record();
            assert_eq!(
                decode_branch(rec.ip(), peek(p, rec.ip())),
                Some((rec.arch_word(), false))
            );
            assert_eq!(ft.arch().check_stub(p, rec, CALLER), Ok(None), "site {i}");
        }
    };
    assert_eq!(ft.len(), 8);
    check(&ft);
    let i = ft.record_index(site_of(entries[1])).unwrap();
    assert_eq!(ft.record_region(i), Some(ids[0]));
    assert_eq!(ft.site(i).record().arch_word(), area(0).start + STUB_SIZE);
    let i = ft.record_index(site_of(entries[6])).unwrap();
    assert_eq!(ft.site(i).record().arch_word(), area(2).start);
    // Removing the middle region leaves the others' stubs where they were.
    ft.remove_region(ids[1]).unwrap();
    assert_eq!(ft.len(), 7);
    check(&ft);
    assert_eq!(
        p.peek(area(1).start, STUB_SIZE),
        [TRAP; 4]
            .iter()
            .flat_map(|w| w.to_be_bytes())
            .collect::<Vec<_>>()
    );
    ft.unregister(plain()).unwrap();
    assert_eq!(ft.check_all_nops(), 0);
}

#[test]
fn release_refuses_a_live_or_foreign_stub() {
    let (p, entries) = setup(1);
    poke(p, REGION_STUBS, &[TRAP; 4]);
    let arch = Ppc64Arch::with_layout(layout(1));
    let region = CodeRegion {
        name: "r",
        sites: entries.clone(),
        stubs: REGION_STUBS..REGION_STUBS + STUB_SIZE,
    };
    let mut rec = Record::new(entries[0]);
    rec.arch = arch.site_word(Some(&region.stubs), 0);
    arch.init_region_site(p, &mut rec, &region, 0).unwrap();
    arch.make_call(p, &rec, CALLER).unwrap();
    assert!(
        matches!(arch.release_site(p, &rec), Err(PatchError::Mismatch { .. })),
        "site still branches to it"
    );
    arch.make_nop(p, &rec, CALLER).unwrap();
    poke(p, rec.arch + 8, &[NOP]);
    assert!(
        matches!(arch.release_site(p, &rec), Err(PatchError::Mismatch { .. })),
        "not this site's stub"
    );
    assert_eq!(peek(p, rec.arch), MFLR_R0, "nothing written");
    poke(p, rec.arch + 8, &[MTLR_R0]);
    arch.release_site(p, &rec).unwrap();
    assert_eq!(
        p.peek(REGION_STUBS, STUB_SIZE),
        [TRAP; 4]
            .iter()
            .flat_map(|w| w.to_be_bytes())
            .collect::<Vec<u8>>()
    );
}

/// A pool of `n` slots whose entries start at `base` (0x100 apart; the
/// full-frame entries 0x80 after each).
fn ppc_pool(n: usize, base: usize) -> crate::tramp::OpsTrampPool {
    use core::sync::atomic::AtomicUsize;

    use crate::tramp::{OpsSlots, OpsTrampPool};
    let table: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
    let slots = OpsSlots::new(Box::leak(table.into_boxed_slice()));
    OpsTrampPool::new(
        slots,
        core::array::from_fn(|i| base + 0x100 * i),
        core::array::from_fn(|i| base + 0x100 * i + 0x80),
    )
}

#[test]
fn ops_trampolines_retarget_only_the_stub() {
    static ALONE: Ops = Ops::new(nop_cb_ppc, OpsFlags::empty());
    static ALONE_REGS: Ops = Ops::new(nop_cb_ppc, OpsFlags::IPMODIFY);
    let (p, entries) = setup(2);
    let pool = ppc_pool(2, CALLER + 0x400);
    let arch = Ppc64Arch::with_layout(layout(2)).with_ops_pool(pool);
    assert!(arch.has_ops_pool());
    let mut ft = Ftrace::new(arch, p, entries.clone(), None)
        .unwrap()
        .with_dispatchers(SIM_LIST, SIM_ASSIST);
    assert!(ft.init().failed.is_empty());
    ft.register(&ALONE).unwrap();
    let t = CALLER + 0x400;
    assert_eq!(ft.site_state(0), SiteState::OpsTrampoline(t));
    let rec = *ft.site(0).record();
    assert_eq!(
        ft.arch().check_stub(p, &rec, t),
        Ok(None),
        "the stub's bl calls the pool entry"
    );
    assert_eq!(
        decode_branch(rec.ip, peek(p, rec.ip)),
        Some((rec.arch, false)),
        "the site still branches to its stub"
    );
    ft.unregister(&ALONE).unwrap();
    ft.set_filter(&ALONE_REGS, "*").ok();
    ft.register(&ALONE_REGS).unwrap();
    assert_eq!(
        ft.site_state(1),
        SiteState::OpsTrampoline(CALLER + 0x500 + 0x80),
        "second slot, full-frame entry"
    );
    ft.unregister(&ALONE_REGS).unwrap();
    assert_eq!(ft.check_all_nops(), 0);
}

extern "C" fn nop_cb_ppc(_: usize, _: usize, _: &Ops, _: &mut FtraceRegs) {}

#[test]
fn ops_pool_out_of_reach_is_not_used() {
    let _ = setup(2);
    let far = STUBS + (40 << 20);
    let arch = Ppc64Arch::with_layout(layout(2)).with_ops_pool(ppc_pool(2, far));
    assert!(!arch.has_ops_pool());
    static SOME: Ops = Ops::new(nop_cb_ppc, OpsFlags::empty());
    assert_eq!(
        arch.ops_trampoline(&SOME),
        None,
        "sites use the shared trampolines"
    );
}

#[test]
fn region_stub_out_of_the_pool_reach_fails_its_site() {
    let (p, entries) = setup(2);
    // The pool sits just within reach of the boot stubs, 32 MiB - 0x100
    // above them: a region stub 0x1000 lower cannot reach it.
    let pool_at = STUBS + (32 << 20) - 0x200;
    let arch = Ppc64Arch::with_layout(layout(2)).with_ops_pool(ppc_pool(1, pool_at));
    assert!(arch.has_ops_pool());
    let region_stubs = STUBS - 0x800;
    let region = CodeRegion {
        name: "r",
        sites: entries[1..].to_vec(),
        stubs: region_stubs..region_stubs + STUB_SIZE,
    };
    let mut rec = Record::new(entries[1]);
    rec.arch = arch.site_word(Some(&region.stubs), 0);
    let r = arch.init_region_site(p, &mut rec, &region, 0);
    assert!(matches!(r, Err(PatchError::OutOfRange { .. })), "{r:?}");
}
