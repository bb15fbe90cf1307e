//! Host tests of the engine over the mock arch.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};
use std::collections::BTreeSet;

use ftrace_abi::symtab::{SymbolTable, encode};
use proptest::prelude::*;

use crate::arch::{Arch, Insn, PatchError};
use crate::filter::{FilterError, glob_match};
use crate::mock::{
    self, ALT_NOP, CALLER, MockArch, MockPlatform, NOP, REGS_CALLER, SITE_STRIDE, TEXT_BASE,
};
use crate::ops::{Ops, OpsFlags};
use crate::platform::Context;
use crate::record::RecFlags;
use crate::recursion::RecursionState;
use crate::regs::FtraceRegs;
use crate::{CodeRegion, Error, Ftrace, SiteState};

type Ft = Ftrace<MockArch, MockPlatform>;

/// A symbol table naming site `i` `names[i]` (each function one stride).
fn symtab(names: &[String]) -> SymbolTable<'static> {
    let syms: Vec<(u64, u32, &str)> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            (
                (TEXT_BASE + i * SITE_STRIDE) as u64,
                SITE_STRIDE as u32,
                n.as_str(),
            )
        })
        .collect();
    let bytes: &'static [u8] = Box::leak(encode(&syms, false).into_boxed_slice());
    SymbolTable::parse(bytes).unwrap()
}

fn setup(names: &[String]) -> Ft {
    let (p, sites) = MockPlatform::with_sites(names.len());
    let mut ft = Ftrace::new(MockArch::new(), p, sites, Some(symtab(names))).unwrap();
    let rep = ft.init();
    assert!(rep.failed.is_empty(), "{rep}");
    ft
}

fn numbered(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("m::f{i}")).collect()
}

extern "C" fn count_cb(_ip: usize, _parent: usize, ops: &Ops, _regs: &mut FtraceRegs) {
    // SAFETY: every ops using this callback has a leaked AtomicUsize as its
    // private word (`counting_ops`).
    unsafe { &*(ops.private() as *const AtomicUsize) }.fetch_add(1, Ordering::Relaxed);
}

fn counting_ops(flags: OpsFlags) -> (&'static Ops, &'static AtomicUsize) {
    let c: &'static AtomicUsize = Box::leak(Box::new(AtomicUsize::new(0)));
    (
        Box::leak(Box::new(Ops::with_private(
            count_cb,
            flags,
            c as *const _ as usize,
        ))),
        c,
    )
}

extern "C" fn nop_cb(_: usize, _: usize, _: &Ops, _: &mut FtraceRegs) {}

fn leak_ops(flags: OpsFlags) -> &'static Ops {
    Box::leak(Box::new(Ops::new(nop_cb, flags)))
}

fn site(i: usize) -> usize {
    TEXT_BASE + i * SITE_STRIDE
}

#[test]
fn mock_encoders_round_trip() {
    let a = MockArch::new();
    for (s, t) in [
        (0x1000_0000usize, CALLER),
        (0x1000_0010, REGS_CALLER),
        (0x2000_0000, 0x1000_0000),
        (100, 105),
    ] {
        let insn = a.call_insn(s, t).unwrap();
        assert_eq!(insn.len(), MockArch::SITE_LEN);
        assert_eq!(MockArch::decode_call(s, insn.as_bytes()), Some(t));
    }
    assert!(matches!(
        a.call_insn(0, 0x1_0000_0000),
        Err(PatchError::OutOfRange { .. })
    ));
    assert_eq!(a.nop_insn().to_string(), "0f 1f 44 00 00");
    assert_eq!(MockArch::decode_call(0, &NOP), None);
}

#[test]
fn register_unregister_patches_and_dispatches() {
    let mut ft = setup(&numbered(8));
    let (a, ca) = counting_ops(OpsFlags::empty());
    let (b, cb) = counting_ops(OpsFlags::SAVE_REGS);
    let mut regs = FtraceRegs::zeroed();

    ft.register(a).unwrap();
    assert_eq!(ft.enabled_count(), 8);
    assert_eq!(ft.site_state(3), SiteState::Caller);
    assert_eq!(
        ft.trace_func(),
        crate::ops::assist_func_addr(),
        "single ops: direct"
    );
    assert!(mock::call_site(&ft, site(3), 0x42, &mut regs));
    assert_eq!(ca.load(Ordering::Relaxed), 1);

    assert_eq!(ft.set_filter(b, "f2,f5").unwrap(), 2);
    ft.register(b).unwrap();
    assert_eq!(
        ft.trace_func(),
        crate::ops::list_func_addr(),
        "two ops: list"
    );
    assert_eq!(ft.site_state(2), SiteState::RegsCaller);
    assert_eq!(ft.site_state(3), SiteState::Caller);
    assert_eq!(ft.site(2).record().refcount(), 2);
    assert!(
        ft.site_flags(2)
            .contains(RecFlags::ENABLED | RecFlags::REGS | RecFlags::REGS_EN)
    );
    mock::call_site(&ft, site(2), 0, &mut regs);
    mock::call_site(&ft, site(3), 0, &mut regs);
    assert_eq!(
        (ca.load(Ordering::Relaxed), cb.load(Ordering::Relaxed)),
        (3, 1)
    );

    ft.unregister(a).unwrap();
    assert_eq!(ft.enabled_count(), 2);
    assert_eq!(ft.trace_op() as *const Ops, b as *const Ops);
    assert!(!mock::call_site(&ft, site(3), 0, &mut regs));
    ft.unregister(b).unwrap();
    assert_eq!(ft.enabled_count(), 0);
    assert_eq!(ft.check_all_nops(), 0);
    assert_eq!(ft.unregister(b), Err(Error::NotRegistered));
    assert_eq!(ft.recursions(), 0);
}

#[test]
fn double_register_rejected() {
    let mut ft = setup(&numbered(2));
    let a = leak_ops(OpsFlags::empty());
    ft.register(a).unwrap();
    assert_eq!(ft.register(a), Err(Error::AlreadyRegistered));
    let mut other = setup(&numbered(2));
    assert_eq!(
        other.register(a),
        Err(Error::AlreadyRegistered),
        "registered with another engine"
    );
}

#[test]
fn ops_trampoline_used_only_when_alone() {
    let mut ft = setup(&numbered(4));
    let (a, ca) = counting_ops(OpsFlags::empty());
    let b = leak_ops(OpsFlags::empty());
    ft.arch().add_ops_trampoline(a, 0x2000_2000);
    ft.register(a).unwrap();
    assert_eq!(ft.site_state(0), SiteState::OpsTrampoline(0x2000_2000));
    assert!(
        ft.site_flags(0)
            .contains(RecFlags::TRAMP | RecFlags::TRAMP_EN)
    );
    ft.set_filter(b, "f0").unwrap();
    ft.register(b).unwrap();
    assert_eq!(ft.site_state(0), SiteState::Caller);
    assert_eq!(ft.site_state(1), SiteState::OpsTrampoline(0x2000_2000));
    let mut regs = FtraceRegs::zeroed();
    mock::call_site(&ft, site(1), 0, &mut regs);
    assert_eq!(ca.load(Ordering::Relaxed), 1);
}

/// A mock pool of `n` slots: slot `i` at `0x3000_0000 + 0x100 * i`, its
/// full-frame entry at `0x3800_0000 + 0x100 * i`.
fn mock_pool(n: usize) -> crate::tramp::OpsTrampPool {
    use crate::tramp::{OpsSlots, OpsTrampPool};
    let table: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
    let slots = OpsSlots::new(Box::leak(table.into_boxed_slice()));
    OpsTrampPool::new(
        slots,
        core::array::from_fn(|i| 0x3000_0000 + 0x100 * i),
        core::array::from_fn(|i| 0x3800_0000 + 0x100 * i),
    )
}

/// The kernel's `test=direct` on the mock: sites wanted by one callback call
/// its pool trampoline, a shared site the list; the shared site moves to
/// the survivor's trampoline when the other leaves, and back.
#[test]
fn pool_trampolines_follow_the_number_of_callbacks() {
    let names: Vec<String> = ["d::leaf", "d::inner", "d::outer", "d::other"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let (p, sites) = MockPlatform::with_sites(names.len());
    let mut ft = Ftrace::new(
        MockArch::with_pool(mock_pool(2)),
        p,
        sites,
        Some(symtab(&names)),
    )
    .unwrap();
    assert!(ft.init().failed.is_empty());
    let (a, ca) = counting_ops(OpsFlags::empty());
    let (b, cb) = counting_ops(OpsFlags::SAVE_REGS);
    ft.set_filter(a, "leaf,outer").unwrap();
    ft.set_filter(b, "inner,outer").unwrap();
    ft.register(a).unwrap();
    ft.register(b).unwrap();
    let (ta, tb) = (0x3000_0000, 0x3800_0100);
    assert_eq!(ft.site_state(0), SiteState::OpsTrampoline(ta));
    assert_eq!(
        ft.site_state(1),
        SiteState::OpsTrampoline(tb),
        "B needs regs: its slot's full-frame entry"
    );
    assert_eq!(
        ft.site_state(2),
        SiteState::RegsCaller,
        "two callbacks: the list"
    );
    assert_eq!(ft.site_state(3), SiteState::Nop);
    assert_bytes_match_state(&ft);
    let mut regs = FtraceRegs::zeroed();
    for i in [0, 1, 2] {
        mock::call_site(&ft, site(i), 0, &mut regs);
    }
    assert_eq!(
        (ca.load(Ordering::Relaxed), cb.load(Ordering::Relaxed)),
        (2, 2)
    );

    ft.unregister(b).unwrap();
    assert_eq!(ft.site_state(1), SiteState::Nop);
    assert_eq!(
        ft.site_state(2),
        SiteState::OpsTrampoline(ta),
        "the survivor calls the site directly"
    );
    assert!(
        ft.site_flags(2)
            .contains(RecFlags::TRAMP | RecFlags::TRAMP_EN)
    );
    assert_bytes_match_state(&ft);
    mock::call_site(&ft, site(2), 0, &mut regs);
    assert_eq!(
        (ca.load(Ordering::Relaxed), cb.load(Ordering::Relaxed)),
        (3, 2)
    );

    // B comes back: same slot; the shared site goes back to the list.
    ft.register(b).unwrap();
    assert_eq!(ft.site_state(1), SiteState::OpsTrampoline(tb));
    assert_eq!(ft.site_state(2), SiteState::RegsCaller);

    // The pool is full: a third callback alone on a site uses the shared
    // trampoline; one that is never alone never asks for a slot.
    let (c, cc) = counting_ops(OpsFlags::empty());
    ft.set_filter(c, "other").unwrap();
    ft.register(c).unwrap();
    assert_eq!(ft.site_state(3), SiteState::Caller);
    mock::call_site(&ft, site(3), 0, &mut regs);
    assert_eq!(cc.load(Ordering::Relaxed), 1);
    assert_eq!(ft.arch().ops_trampoline(c), None);

    for o in [a, b, c] {
        ft.unregister(o).unwrap();
    }
    assert_eq!(ft.check_all_nops(), 0);
}

#[test]
fn pool_slots_only_for_callbacks_alone_on_a_site() {
    let mut ft = {
        let (p, sites) = MockPlatform::with_sites(2);
        let mut ft = Ftrace::new(
            MockArch::with_pool(mock_pool(1)),
            p,
            sites,
            Some(symtab(&numbered(2))),
        )
        .unwrap();
        assert!(ft.init().failed.is_empty());
        ft
    };
    let (a, b, c) = (
        leak_ops(OpsFlags::empty()),
        leak_ops(OpsFlags::empty()),
        leak_ops(OpsFlags::empty()),
    );
    // `b` is registered first but wants no site: it never asks for a slot.
    ft.set_notrace(b, "f*").unwrap();
    ft.register(b).unwrap();
    assert_eq!(ft.enabled_count(), 0);
    ft.set_filter(a, "f0").unwrap();
    ft.register(a).unwrap();
    assert_eq!(
        ft.site_state(0),
        SiteState::OpsTrampoline(0x3000_0000),
        "the only slot went to `a`"
    );
    // `c` is alone on f1, but the pool is exhausted: the shared trampoline.
    ft.set_filter(c, "f1").unwrap();
    ft.register(c).unwrap();
    assert_eq!(ft.site_state(1), SiteState::Caller);
    assert_bytes_match_state(&ft);
}

#[test]
fn init_rewrites_alt_nop_and_reports_corruption() {
    let (p, sites) = MockPlatform::with_sites(5);
    p.poke(site(1), &ALT_NOP);
    p.poke(site(3), &[0xcc; 5]);
    let names = numbered(5);
    let mut ft = Ftrace::new(MockArch::new(), p, sites, Some(symtab(&names))).unwrap();
    let rep = ft.init();
    assert_eq!(rep.total, 5);
    assert_eq!(rep.failed.len(), 1);
    assert_eq!(
        rep.failed[0].to_string(),
        format!(
            "ftrace: failed to init site m::f3+0x0 at {:#x}: expected 0f 1f 44 00 00, found cc cc cc cc cc",
            site(3)
        )
    );
    assert_eq!(rep.to_string(), "ftrace: 5 sites, 1 failed");
    assert_eq!(p.peek(site(1), 5), NOP, "alternative nop rewritten");
    assert_eq!(p.peek(site(3), 5), [0xcc; 5], "corrupt site left alone");
    assert!(ft.site(3).record().is_failed());
    assert_eq!(ft.failed_count(), 1);

    // FAILED sticks: updates never touch it.
    let a = leak_ops(OpsFlags::empty());
    ft.register(a).unwrap();
    assert_eq!(ft.enabled_count(), 4);
    assert_eq!(ft.site_state(3), SiteState::Failed);
    assert_eq!(p.peek(site(3), 5), [0xcc; 5]);
    ft.unregister(a).unwrap();
    assert_eq!(ft.check_all_nops(), 0);
    assert_eq!(p.peek(site(3), 5), [0xcc; 5]);
}

#[test]
fn unknown_symbol_in_report() {
    let (p, sites) = MockPlatform::with_sites(1);
    p.poke(site(0), &[0x90; 5]);
    let mut ft = Ftrace::new(MockArch::new(), p, sites, None).unwrap();
    let rep = ft.init();
    assert!(
        rep.failed[0]
            .to_string()
            .starts_with("ftrace: failed to init site <unknown> at 0x10000000: expected")
    );
}

/// Asserts every non-failed site holds exactly the nop or the call its
/// record's state says.
fn assert_bytes_match_state(ft: &Ft) {
    let p = ft.platform();
    for (i, site) in ft.sites().enumerate() {
        let r = site.record();
        let bytes = p.peek(r.ip, 5);
        match ft.site_state(i) {
            SiteState::Failed => {}
            SiteState::Nop => {
                assert_eq!(bytes, NOP, "site {i}");
                assert!(!site.is_enabled());
            }
            SiteState::Caller => assert_eq!(
                MockArch::decode_call(r.ip, &bytes),
                Some(CALLER),
                "site {i}"
            ),
            SiteState::RegsCaller => {
                assert_eq!(
                    MockArch::decode_call(r.ip, &bytes),
                    Some(REGS_CALLER),
                    "site {i}"
                );
                assert!(
                    ft.site_flags(i)
                        .contains(RecFlags::REGS_EN | RecFlags::ENABLED)
                );
            }
            SiteState::OpsTrampoline(t) => assert_eq!(MockArch::decode_call(r.ip, &bytes), Some(t)),
        }
    }
}

#[test]
fn mismatch_during_update_kills_tracing() {
    let mut ft = setup(&numbered(10));
    let a = leak_ops(OpsFlags::empty());
    ft.register(a).unwrap();
    // Someone else scribbles over site 6.
    ft.platform().poke(site(6), &[0x0f, 0x0b, 0x90, 0x90, 0x90]);
    let b = leak_ops(OpsFlags::SAVE_REGS);
    let err = ft.register(b).unwrap_err();
    let Error::Patch(f) = err else {
        panic!("{err:?}")
    };
    assert_eq!(f.ip, site(6));
    let expected = ft.arch().call_insn(site(6), CALLER).unwrap();
    assert_eq!(
        f.error,
        PatchError::Mismatch {
            expected,
            found: Insn::new(&[0x0f, 0x0b, 0x90, 0x90, 0x90])
        }
    );
    assert!(
        f.to_string()
            .starts_with("ftrace: failed to update site m::f6+0x0 at 0x10000060: expected e8 ")
    );
    assert!(ft.is_killed());
    assert_eq!(ft.kill_reason(), Some(&f));
    assert!(ft.site(6).record().is_failed());
    assert_eq!(
        ft.platform().peek(site(6), 5),
        [0x0f, 0x0b, 0x90, 0x90, 0x90]
    );
    assert!(!a.is_enabled() && !b.is_enabled());
    assert!(ft.registered().is_empty());
    assert_bytes_match_state(&ft);
    // Sites 0..6 were retargeted to the regs trampoline, 7.. still call the caller.
    assert_eq!(ft.site_state(0), SiteState::RegsCaller);
    assert_eq!(ft.site_state(9), SiteState::Caller);
    assert!(ft.sites().all(|s| s.record().refcount() == 0));
    assert_eq!(ft.register(a), Err(Error::Killed));
    assert_eq!(ft.set_filter(a, "f1"), Err(Error::Killed));
    // The dispatcher finds no callback any more.
    let mut regs = FtraceRegs::zeroed();
    assert!(mock::call_site(&ft, site(0), 0, &mut regs));
}

#[test]
fn write_fault_during_update_kills_tracing() {
    let mut ft = setup(&numbered(4));
    ft.platform()
        .fail_write_at
        .store(site(2) + 1, Ordering::Relaxed);
    let err = ft.register(leak_ops(OpsFlags::empty())).unwrap_err();
    assert!(matches!(err, Error::Patch(f) if f.error == PatchError::WriteFault && f.ip == site(2)));
    assert!(ft.is_killed());
    assert_bytes_match_state(&ft);
    assert_eq!(ft.enabled_count(), 2);
    assert_eq!(ft.check_all_nops(), 2);
}

#[test]
fn ipmodify_conflict_rejected() {
    let mut ft = setup(&numbered(6));
    let a = leak_ops(OpsFlags::IPMODIFY);
    let b = leak_ops(OpsFlags::IPMODIFY);
    ft.set_filter(a, "f1,f2").unwrap();
    ft.set_filter(b, "f3").unwrap();
    ft.register(a).unwrap();
    ft.register(b).unwrap();
    assert_eq!(
        ft.site_state(1),
        SiteState::RegsCaller,
        "IPMODIFY implies the full frame"
    );
    assert!(ft.site_flags(1).contains(RecFlags::IPMODIFY));
    let err = ft.add_filter(b, "f2").unwrap_err();
    assert!(
        matches!(err, Error::IpmodifyConflict { ip, .. } if ip == site(2)),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "ftrace: two IPMODIFY callbacks would share m::f2+0x0 at 0x10000020"
    );
    assert_eq!(ft.site(2).record().refcount(), 1, "nothing changed");
    let c = leak_ops(OpsFlags::IPMODIFY);
    assert!(matches!(
        ft.register(c),
        Err(Error::IpmodifyConflict { .. })
    ));
    assert!(!c.is_enabled());
    assert!(!ft.is_killed());
    // A non-IPMODIFY ops may share.
    ft.register(leak_ops(OpsFlags::empty())).unwrap();
    assert_bytes_match_state(&ft);
}

#[test]
fn filter_semantics() {
    let names: Vec<String> = [
        "kernel::demo::demo_leaf",
        "kernel::demo::demo_mid",
        "kernel::demo::other",
        "kernel::main",
        "lib::demo_x",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut ft = setup(&names);
    let a = leak_ops(OpsFlags::empty());
    let sel =
        |ft: &Ft, o: &Ops| -> Vec<usize> { (0..ft.len()).filter(|&i| o.wants(site(i))).collect() };
    assert_eq!(ft.set_filter(a, "demo_*").unwrap(), 3, "last segment");
    assert_eq!(sel(&ft, a), [0, 1, 4]);
    assert_eq!(
        ft.set_filter(a, "kernel::demo::*").unwrap(),
        3,
        "qualified: full path"
    );
    assert_eq!(sel(&ft, a), [0, 1, 2]);
    let e = ft.set_filter(a, "demo::demo_*").unwrap_err();
    assert_eq!(e.to_string(), "ftrace: no function matches 'demo::demo_*'");
    assert_eq!(sel(&ft, a), [0, 1, 2], "unchanged after an error");
    assert_eq!(ft.set_filter(a, "*demo*,!*_mid").unwrap(), 3);
    assert_eq!(sel(&ft, a), [0, 2, 4]);
    ft.add_filter(a, "main").unwrap();
    assert_eq!(sel(&ft, a), [0, 2, 3, 4]);
    ft.add_filter(a, "!k*::other").unwrap();
    assert_eq!(sel(&ft, a), [0, 3, 4]);
    ft.set_notrace(a, "*leaf,main").unwrap();
    assert_eq!(sel(&ft, a), [4], "notrace wins");
    ft.clear_filter(a).unwrap();
    assert_eq!(sel(&ft, a), [1, 2, 4], "empty filter: all but notrace");
    ft.clear_notrace(a).unwrap();
    assert_eq!(sel(&ft, a), [0, 1, 2, 3, 4]);
    ft.register(a).unwrap();
    ft.set_filter(a, "other").unwrap();
    assert_eq!(ft.enabled_count(), 1);
    assert_eq!(ft.site_state(2), SiteState::Caller);

    let Error::Filter(errs) = ft.set_filter(a, "nope*, demo_leaf ,x[1], !").unwrap_err() else {
        panic!()
    };
    assert_eq!(errs.len(), 2, "malformed patterns reported before matching");
    assert!(
        errs[0]
            .to_string()
            .starts_with("ftrace: bad filter pattern 'x[1]': ")
    );
    assert_eq!(
        errs[1].to_string(),
        "ftrace: bad filter pattern '!': '!' without a pattern"
    );
    let Error::Filter(errs) = ft.set_filter(a, "nope*,demo_leaf,zz").unwrap_err() else {
        panic!()
    };
    assert_eq!(
        errs,
        [
            FilterError::NoMatch {
                pattern: "nope*".into()
            },
            FilterError::NoMatch {
                pattern: "zz".into()
            }
        ]
    );
    assert_eq!(ft.enabled_count(), 1, "nothing applied");
}

#[test]
fn filter_on_ten_thousand_functions() {
    let n = 10_000;
    let names: Vec<String> = (0..n)
        .map(|i| format!("kernel::mod{}::func_{i}", i % 7))
        .collect();
    let mut ft = setup(&names);
    let a = leak_ops(OpsFlags::empty());
    // func_1, func_1x, func_1xx, func_1xxx: 1 + 10 + 100 + 1000.
    assert_eq!(ft.set_filter(a, "func_1*").unwrap(), 1111);
    ft.set_filter(a, "func_1*,!*5,kernel::mod3::*").unwrap();
    let want: Vec<usize> = (0..n)
        .filter(|i| (i.to_string().starts_with('1') && i % 10 != 5) || i % 7 == 3)
        .collect();
    let got: Vec<usize> = (0..n).filter(|&i| a.wants(site(i))).collect();
    assert_eq!(got, want);
    ft.register(a).unwrap();
    assert_eq!(ft.enabled_count(), want.len());
    ft.set_notrace(a, "kernel::mod3::func_3").unwrap();
    assert_eq!(ft.enabled_count(), want.len() - 1);
    assert_bytes_match_state(&ft);
}

#[test]
fn recursion_guard() {
    let st = RecursionState::new();
    let p = MockPlatform::new(0);
    let g = st.try_enter(&p).unwrap();
    assert!(st.try_enter(&p).is_none(), "same context refused");
    assert_eq!(st.recursions(), 1);
    p.set_context(Context::Irq);
    let g2 = st.try_enter(&p).expect("irq nests");
    p.set_context(Context::Nmi);
    let g3 = st.try_enter(&p).expect("nmi nests");
    assert!(st.try_enter(&p).is_none());
    drop(g3);
    p.set_context(Context::Irq);
    drop(g2);
    p.set_context(Context::Normal);
    p.set_cpu(1);
    let g4 = st.try_enter(&p).expect("other cpu");
    drop(g4);
    p.set_cpu(0);
    drop(g);
    let _g = st.try_enter(&p).expect("released");
    p.set_cpu(crate::recursion::MAX_CPUS);
    assert!(st.try_enter(&p).is_none());
    assert_eq!((st.recursions(), st.dropped()), (2, 1));
}

std::thread_local! {
    static REENTER: core::cell::Cell<Option<&'static Ft>> = const { core::cell::Cell::new(None) };
    static DEPTH: core::cell::Cell<usize> = const { core::cell::Cell::new(0) };
}

extern "C" fn reentering_cb(ip: usize, parent: usize, _ops: &Ops, regs: &mut FtraceRegs) {
    DEPTH.with(|d| d.set(d.get() + 1));
    // The callback calls traced code: the nested call must not recurse.
    if let Some(ft) = REENTER.with(|r| r.get()) {
        mock::call_site(ft, ip, parent, regs);
    }
}

#[test]
fn dispatch_does_not_recurse() {
    for two in [false, true] {
        let names = numbered(2);
        let mut ft = setup(&names);
        let a: &'static Ops = Box::leak(Box::new(Ops::new(reentering_cb, OpsFlags::empty())));
        ft.register(a).unwrap();
        if two {
            ft.register(leak_ops(OpsFlags::empty())).unwrap();
        }
        let ft: &'static Ft = Box::leak(Box::new(ft));
        REENTER.with(|r| r.set(Some(ft)));
        DEPTH.with(|d| d.set(0));
        let mut regs = FtraceRegs::zeroed();
        mock::call_site(ft, site(0), 0, &mut regs);
        assert_eq!(DEPTH.with(|d| d.get()), 1);
        assert_eq!(ft.recursions(), 1);
        REENTER.with(|r| r.set(None));
    }
}

/// Straightforward recursive glob matcher: the oracle.
fn naive_glob(p: &[u8], s: &[u8]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some((b'*', rest)) => (0..=s.len()).any(|i| naive_glob(rest, &s[i..])),
        Some((c, rest)) => s.first() == Some(c) && naive_glob(rest, &s[1..]),
    }
}

fn naive_name_match(p: &str, name: &str) -> bool {
    naive_glob(p.as_bytes(), name.as_bytes())
        || (!p.contains("::")
            && naive_glob(
                p.as_bytes(),
                name.rsplit("::").next().unwrap_or("").as_bytes(),
            ))
}

proptest! {
    #[test]
    fn glob_matches_oracle(p in "[ab*:]{0,8}", s in "[ab:]{0,10}") {
        prop_assert_eq!(glob_match(&p, &s), naive_glob(p.as_bytes(), s.as_bytes()));
        prop_assert_eq!(crate::filter::Glob::new(&p).matches_name(&s), naive_name_match(&p, &s));
    }
}

proptest! {
    /// The one-pass walk that names every site gives what a lookup per
    /// address gives: symbols of any size (0: unsized), overlapping or
    /// sharing an address, addresses before, between, inside and after
    /// them, repeated or not.
    #[test]
    fn sorted_resolution_matches_lookups(
        syms in proptest::collection::vec((0u64..400, 0u32..40), 0..30),
        mut addrs in proptest::collection::vec(0usize..480, 0..60),
    ) {
        let names: Vec<String> = (0..syms.len()).map(|i| alloc::format!("s{i}")).collect();
        let triples: Vec<(u64, u32, &str)> = syms
            .iter()
            .zip(&names)
            .map(|(&(a, z), n)| (0x1000 + a, z, n.as_str()))
            .collect();
        let bytes: &'static [u8] = Box::leak(encode(&triples, false).into_boxed_slice());
        let symbols = crate::symbols::Symbols::new(Some(SymbolTable::parse(bytes).unwrap()));
        addrs.sort_unstable();
        let addrs: Vec<usize> = addrs.into_iter().map(|a| 0x1000 + a).collect();
        let walked = symbols.resolve_sorted(addrs.iter().copied());
        let looked: Vec<Option<&str>> = addrs.iter().map(|&a| symbols.resolve(a).map(|(n, _)| n)).collect();
        prop_assert_eq!(walked, looked);
    }
}

const PATTERNS: &[&str] = &[
    "f1*",
    "*3",
    "f2",
    "m::f4*",
    "!f1*",
    "*",
    "f*7*",
    "!*9",
    "m::f0,f33",
];
const NSITES: usize = 50;

#[derive(Debug, Clone)]
enum Step {
    Register(usize),
    Unregister(usize),
    SetFilter(usize, usize),
    AddFilter(usize, usize),
    SetNotrace(usize, usize),
    ClearFilter(usize),
}

fn step() -> impl Strategy<Value = Step> {
    let o = 0..4usize;
    let pat = 0..PATTERNS.len();
    prop_oneof![
        o.clone().prop_map(Step::Register),
        o.clone().prop_map(Step::Unregister),
        (o.clone(), pat.clone()).prop_map(|(o, p)| Step::SetFilter(o, p)),
        (o.clone(), pat.clone()).prop_map(|(o, p)| Step::AddFilter(o, p)),
        (o.clone(), pat).prop_map(|(o, p)| Step::SetNotrace(o, p)),
        o.prop_map(Step::ClearFilter),
    ]
}

/// Model of one ops: registered, filter (empty: all), notrace.
#[derive(Debug, Clone, Default)]
struct Model {
    on: bool,
    filter: BTreeSet<usize>,
    notrace: BTreeSet<usize>,
}

fn model_apply(set: &mut BTreeSet<usize>, pats: &str, names: &[String]) {
    for p in pats.split(',') {
        let (neg, g) = match p.strip_prefix('!') {
            Some(g) => (true, g),
            None => (false, p),
        };
        for (i, n) in names.iter().enumerate() {
            if naive_name_match(g, n) {
                if neg {
                    set.remove(&i)
                } else {
                    set.insert(i)
                };
            }
        }
    }
}

const FLAGS: [OpsFlags; 4] = [
    OpsFlags::empty(),
    OpsFlags::SAVE_REGS,
    OpsFlags::IPMODIFY,
    OpsFlags::IPMODIFY,
];

fn wanted(models: &[Model], i: usize) -> Vec<usize> {
    (0..models.len())
        .filter(|&o| {
            let m = &models[o];
            m.on && (m.filter.is_empty() || m.filter.contains(&i)) && !m.notrace.contains(&i)
        })
        .collect()
}

fn conflict(models: &[Model]) -> bool {
    (0..NSITES).any(|i| {
        wanted(models, i)
            .iter()
            .filter(|&&o| FLAGS[o].contains(OpsFlags::IPMODIFY))
            .count()
            > 1
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn random_updates_keep_bytes_and_flags_consistent(steps in proptest::collection::vec(step(), 1..30)) {
        let names = numbered(NSITES);
        let mut ft = setup(&names);
        let ops: Vec<&'static Ops> = FLAGS.iter().map(|&f| leak_ops(f)).collect();
        ft.arch().add_ops_trampoline(ops[0], 0x2000_3000);
        let mut models = alloc::vec![Model::default(); ops.len()];
        for s in steps {
            let mut next = models.clone();
            let r = match s {
                Step::Register(o) => {
                    let r = ft.register(ops[o]).map(|_| ());
                    if models[o].on { prop_assert_eq!(r, Err(Error::AlreadyRegistered)); continue; }
                    next[o].on = true;
                    r
                }
                Step::Unregister(o) => {
                    let r = ft.unregister(ops[o]);
                    if !models[o].on { prop_assert_eq!(r, Err(Error::NotRegistered)); continue; }
                    next[o].on = false;
                    r
                }
                Step::SetFilter(o, p) => {
                    next[o].filter.clear();
                    model_apply(&mut next[o].filter, PATTERNS[p], &names);
                    ft.set_filter(ops[o], PATTERNS[p]).map(|_| ())
                }
                Step::AddFilter(o, p) => {
                    model_apply(&mut next[o].filter, PATTERNS[p], &names);
                    ft.add_filter(ops[o], PATTERNS[p]).map(|_| ())
                }
                Step::SetNotrace(o, p) => {
                    next[o].notrace.clear();
                    model_apply(&mut next[o].notrace, PATTERNS[p], &names);
                    ft.set_notrace(ops[o], PATTERNS[p]).map(|_| ())
                }
                Step::ClearFilter(o) => {
                    next[o].filter.clear();
                    ft.clear_filter(ops[o])
                }
            };
            if conflict(&next) {
                prop_assert!(matches!(r, Err(Error::IpmodifyConflict { .. })), "{:?}", r);
            } else {
                prop_assert_eq!(r, Ok(()));
                models = next;
            }
            // Every site agrees with the model, bytes and flags.
            for i in 0..NSITES {
                let w = wanted(&models, i);
                let regs = w.iter().any(|&o| FLAGS[o] != OpsFlags::empty());
                let state = match w.len() {
                    0 => SiteState::Nop,
                    1 if w[0] == 0 => SiteState::OpsTrampoline(0x2000_3000),
                    _ if regs => SiteState::RegsCaller,
                    _ => SiteState::Caller,
                };
                prop_assert_eq!(ft.site_state(i), state, "site {}", i);
                let r = *ft.site(i).record();
                prop_assert_eq!(r.refcount() as usize, w.len());
                prop_assert_eq!(ft.site(i).is_enabled(), !w.is_empty());
                prop_assert_eq!(r.rec_flags().contains(RecFlags::REGS), regs);
                prop_assert_eq!(ft.site_flags(i).contains(RecFlags::REGS_EN), state == SiteState::RegsCaller);
            }
            assert_bytes_match_state(&ft);
            let on: Vec<usize> = (0..ops.len()).filter(|&o| models[o].on).collect();
            let single = on.len() == 1;
            prop_assert_eq!(ft.trace_func() == crate::ops::assist_func_addr(), single);
        }
        for (o, m) in models.iter().enumerate() {
            if m.on { ft.unregister(ops[o]).unwrap(); }
        }
        prop_assert_eq!(ft.check_all_nops(), 0);
        prop_assert_eq!(ft.enabled_count(), 0);
    }
}

// ---- Code regions (module load and unload) ----

/// Boot functions `m::a0 m::a1 m::b0 m::b1 m::b2` (sites 0-4) and region
/// functions `r::a2 r::b3 r::c4` (sites 5-7, not in the boot table).
fn region_setup() -> (Ft, CodeRegion) {
    let names: Vec<String> = [
        "m::a0", "m::a1", "m::b0", "m::b1", "m::b2", "r::a2", "r::b3", "r::c4",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let (p, sites) = MockPlatform::with_sites(names.len());
    // The region's table uses the compiler's alternative nop, which its
    // init must rewrite like the boot init does.
    for &s in &sites[5..] {
        p.poke(s, &ALT_NOP);
    }
    let mut ft = Ftrace::new(
        MockArch::new(),
        p,
        sites[..5].to_vec(),
        Some(symtab(&names)),
    )
    .unwrap();
    assert!(ft.init().failed.is_empty());
    let region = CodeRegion {
        name: "demo",
        sites: alloc::vec![site(7), site(5), 0, site(6), site(5)],
        stubs: 0..0,
    };
    (ft, region)
}

#[test]
fn region_traces_like_boot_code_and_goes_back_to_nops() {
    let (mut ft, region) = region_setup();
    let (all, c_all) = counting_ops(OpsFlags::empty());
    let (a, c_a) = counting_ops(OpsFlags::empty());
    let (not_b, c_not_b) = counting_ops(OpsFlags::SAVE_REGS);
    ft.set_filter(a, "a*").unwrap();
    ft.set_notrace(not_b, "b*").unwrap();
    ft.register(all).unwrap();
    ft.register(a).unwrap();
    ft.register(not_b).unwrap();
    let mut regs = FtraceRegs::zeroed();
    // Before the region exists its sites are plain code.
    assert_eq!(ft.platform().peek(site(5), 5), ALT_NOP);

    let rep = ft.add_region(region.clone()).unwrap();
    assert_eq!(
        (rep.name, rep.total, rep.failed.len(), rep.enabled),
        ("demo", 3, 0, 3)
    );
    assert_eq!(rep.to_string(), "ftrace: region demo: 3 sites, 0 failed");
    assert_eq!(ft.len(), 8);
    assert_eq!(ft.record_region(4), None);
    assert_eq!(ft.record_region(5), Some(rep.id));
    assert_eq!(ft.record_name(5), Some("r::a2"));
    // The one-pass walk names every site as the per-site lookup does.
    let walked = ft.record_names();
    assert_eq!(walked.len(), 8);
    for (i, n) in walked.iter().enumerate() {
        assert_eq!(*n, ft.record_name(i), "site {i}");
        assert_eq!(*n, ft.site(i).name());
    }
    assert_eq!(ft.sites().map(|s| s.name()).collect::<Vec<_>>(), walked);
    assert_eq!(
        ft.regions().map(|(id, r)| (id, r.name)).collect::<Vec<_>>(),
        [(rep.id, "demo")]
    );
    // The replayed patterns: `a*` now holds r::a2, `b*` excludes r::b3.
    assert!(ft.ops_wants(a, site(5)) && !ft.ops_wants(a, site(6)));
    assert!(!ft.ops_wants(not_b, site(6)) && ft.ops_wants(not_b, site(7)));
    assert_eq!(
        ft.site_state(6),
        SiteState::Caller,
        "only the plain ops wants r::b3"
    );
    assert_eq!(ft.site_state(7), SiteState::RegsCaller);
    assert_bytes_match_state(&ft);
    for i in 5..8 {
        assert!(mock::call_site(&ft, site(i), 0, &mut regs));
    }
    let counts = || {
        (
            c_all.load(Ordering::Relaxed),
            c_a.load(Ordering::Relaxed),
            c_not_b.load(Ordering::Relaxed),
        )
    };
    assert_eq!(counts(), (3, 1, 2));

    ft.remove_region(rep.id).unwrap();
    assert_eq!(ft.len(), 5);
    assert_eq!(ft.regions().count(), 0);
    for i in 5..8 {
        assert_eq!(
            ft.platform().peek(site(i), 5),
            NOP,
            "site {i} back to the nop"
        );
        assert!(!mock::call_site(&ft, site(i), 0, &mut regs));
    }
    assert!(!ft.ops_wants(a, site(5)), "filter entries dropped");
    assert!(ft.ops_wants(a, site(0)) && !ft.ops_wants(a, site(2)));
    assert_eq!(counts(), (3, 1, 2));
    assert_bytes_match_state(&ft);
    assert_eq!(ft.remove_region(rep.id), Err(Error::NoSuchRegion));

    // Added again (a module reloaded): a new id, traced again.
    let rep2 = ft.add_region(region).unwrap();
    assert_ne!(rep2.id, rep.id);
    assert_eq!(rep2.enabled, 3);
    ft.unregister(all).unwrap();
    ft.unregister(a).unwrap();
    ft.unregister(not_b).unwrap();
    assert_eq!(ft.check_all_nops(), 0);
    ft.remove_region(rep2.id).unwrap();
    assert_eq!(ft.check_all_nops(), 0);
}

#[test]
fn filter_emptied_by_removal_selects_nothing() {
    let (mut ft, region) = region_setup();
    let rep = ft.add_region(region).unwrap();
    assert_eq!(rep.enabled, 0, "nobody registered");
    let (c, count) = counting_ops(OpsFlags::empty());
    assert_eq!(ft.set_filter(c, "c*").unwrap(), 1, "only r::c4");
    ft.register(c).unwrap();
    assert_eq!(ft.enabled_count(), 1);
    ft.remove_region(rep.id).unwrap();
    assert_eq!(
        ft.enabled_count(),
        0,
        "an emptied filter is not 'every function'"
    );
    assert!(!ft.ops_wants(c, site(0)));
    let mut regs = FtraceRegs::zeroed();
    for i in 0..5 {
        assert!(!mock::call_site(&ft, site(i), 0, &mut regs));
    }
    assert_eq!(count.load(Ordering::Relaxed), 0);
    // A later set_filter works normally.
    assert_eq!(ft.set_filter(c, "b0").unwrap(), 1);
    assert_eq!(ft.enabled_count(), 1);
    ft.unregister(c).unwrap();
}

/// Sites are stored as 32-bit offsets from the lowest boot site: a region
/// beyond 2 GiB of it is refused, naming the site, with nothing changed
/// (64-bit hosts only: on a 32-bit CPU every address is in reach).
#[cfg(target_pointer_width = "64")]
#[test]
fn regions_out_of_reach_are_refused() {
    let (mut ft, _) = region_setup();
    let base = ft.site_ips().next().unwrap();
    let far = base + (1usize << 31) + 0x40;
    let before = (ft.len(), ft.regions().count());
    let err = ft
        .add_region(CodeRegion {
            name: "far",
            sites: alloc::vec![far],
            stubs: 0..0,
        })
        .unwrap_err();
    assert_eq!(err, Error::OutOfReach { ip: far, base });
    assert_eq!(
        err.to_string(),
        alloc::format!(
            "ftrace: site {far:#x} is more than 2 GiB from the site table's base {base:#x}"
        )
    );
    assert_eq!((ft.len(), ft.regions().count()), before, "nothing added");
}

#[test]
fn overlapping_regions_rejected() {
    let (mut ft, region) = region_setup();
    let boot = CodeRegion {
        name: "bad",
        sites: alloc::vec![site(2)],
        stubs: 0..0,
    };
    assert_eq!(
        ft.add_region(boot),
        Err(Error::RegionOverlap {
            name: "bad",
            with: "kernel"
        })
    );
    let rep = ft
        .add_region(CodeRegion {
            stubs: 0x100..0x200,
            ..region.clone()
        })
        .unwrap();
    let inside = CodeRegion {
        name: "inner",
        sites: alloc::vec![site(6)],
        stubs: 0..0,
    };
    assert_eq!(
        ft.add_region(inside),
        Err(Error::RegionOverlap {
            name: "inner",
            with: "demo"
        })
    );
    let stubs = CodeRegion {
        name: "stubs",
        sites: alloc::vec![site(7) + 64],
        stubs: 0x1f0..0x210,
    };
    assert_eq!(
        ft.add_region(stubs).map(|r| r.id).unwrap_err().to_string(),
        "ftrace: region stubs overlaps demo"
    );
    assert_eq!(ft.len(), 8, "nothing added");
    ft.remove_region(rep.id).unwrap();
    // An empty region is fine (nothing to do).
    let empty = ft
        .add_region(CodeRegion {
            name: "empty",
            sites: Vec::new(),
            stubs: 0..0,
        })
        .unwrap();
    assert_eq!(empty.total, 0);
    ft.remove_region(empty.id).unwrap();
}

#[test]
fn region_ipmodify_conflict_rolls_back() {
    let (mut ft, region) = region_setup();
    let e = leak_ops(OpsFlags::IPMODIFY);
    let f = leak_ops(OpsFlags::IPMODIFY);
    ft.set_filter(e, "b2,*2").unwrap();
    ft.set_filter(f, "a1,a*").unwrap();
    ft.register(e).unwrap();
    ft.register(f).unwrap();
    let before = ft.platform().peek(TEXT_BASE, 8 * SITE_STRIDE);
    assert!(matches!(
        ft.add_region(region),
        Err(Error::IpmodifyConflict { .. })
    ));
    assert_eq!(ft.len(), 5);
    assert_eq!(ft.regions().count(), 0);
    assert!(!ft.ops_wants(e, site(5)) && !ft.ops_wants(f, site(5)));
    // The region's sites were initialised (alt nop -> nop), nothing else.
    let after = ft.platform().peek(TEXT_BASE, 8 * SITE_STRIDE);
    assert_eq!(after[..5 * SITE_STRIDE], before[..5 * SITE_STRIDE]);
    assert_eq!(ft.platform().peek(site(5), 5), NOP);
    ft.unregister(e).unwrap();
    ft.unregister(f).unwrap();
}

#[test]
fn region_init_failure_reported_and_kill_forgets() {
    let (mut ft, region) = region_setup();
    ft.platform().poke(site(6), &[0xcc; 5]);
    let rep = ft.add_region(region.clone()).unwrap();
    assert_eq!(rep.failed.len(), 1);
    assert_eq!(
        rep.failed[0].to_string(),
        format!(
            "ftrace: failed to init site r::b3+0x0 at {:#x}: expected 0f 1f 44 00 00, found cc cc cc cc cc",
            site(6)
        )
    );
    let (o, _) = counting_ops(OpsFlags::empty());
    ft.register(o).unwrap();
    assert_eq!(ft.site_state(6), SiteState::Failed);
    assert_eq!(ft.enabled_count(), 7);
    // Corrupt an enabled region site: the update fails and kills tracing.
    ft.platform().poke(site(5), &NOP);
    assert!(matches!(ft.remove_region(rep.id), Err(Error::Patch(_))));
    assert!(ft.is_killed());
    assert_eq!(ft.len(), 5, "the region is forgotten anyway");
    assert_eq!(ft.add_region(region), Err(Error::Killed));
}

#[test]
fn filter_without_symbol_table_names_the_missing_step() {
    let (p, sites) = MockPlatform::with_sites(3);
    let mut ft = Ftrace::new(MockArch::new(), p, sites, None).unwrap();
    ft.init();
    let a = leak_ops(OpsFlags::empty());
    let Error::Filter(errs) = ft.set_filter(a, "demo_*").unwrap_err() else {
        panic!()
    };
    assert_eq!(
        errs[0].to_string(),
        "ftrace: no function matches 'demo_*': the kernel has no symbol table (run \
         `ftrace-tools embed-symtab <kernel ELF>` after linking, docs/embedding.md)"
    );
}

#[test]
fn only_crates_keeps_the_kernels_own_functions() {
    let names: Vec<String> = [
        "k::main",
        "x86_64::instructions::port::Port<u8>::write",
        "<k::Heap as core::alloc::global::GlobalAlloc>::alloc",
        "core::sync::atomic::AtomicUsize::fetch_add",
        "spin::mutex::Mutex<T>::lock",
        "k::demo::leaf",
    ]
    .map(String::from)
    .to_vec();
    let (p, sites) = MockPlatform::with_sites(names.len());
    let ft = Ftrace::new(MockArch::new(), p, sites, Some(symtab(&names))).unwrap();
    assert_eq!(ft.len(), 5, "core is never traced");
    let mut ft = ft.only_crates(&["k"]);
    assert!(ft.init().failed.is_empty());
    let kept: Vec<&str> = (0..ft.len()).filter_map(|i| ft.record_name(i)).collect();
    assert_eq!(
        kept,
        [
            "k::main",
            "<k::Heap as core::alloc::global::GlobalAlloc>::alloc",
            "k::demo::leaf"
        ]
    );
}

#[test]
fn only_crates_holds_for_regions_added_later() {
    let names: Vec<String> = ["k::a", "x::b", "k::r1", "r::r2", "core::r3"]
        .map(String::from)
        .to_vec();
    let (p, sites) = MockPlatform::with_sites(names.len());
    // The region's init rewrites the compiler's alternative nop.
    for &s in &sites[2..] {
        p.poke(s, &ALT_NOP);
    }
    let ft = Ftrace::new(
        MockArch::new(),
        p,
        sites[..2].to_vec(),
        Some(symtab(&names)),
    )
    .unwrap();
    // A second call narrows the list: "r" is not kept.
    let mut ft = ft.only_crates(&["k", "r"]).only_crates(&["k"]);
    assert!(ft.init().failed.is_empty());
    assert_eq!(ft.len(), 1);
    let rep = ft
        .add_region(CodeRegion {
            name: "mod",
            sites: sites[2..].to_vec(),
            stubs: 0..0,
        })
        .unwrap();
    assert_eq!(rep.total, 1, "only the kept crate's site joins");
    let kept: Vec<&str> = (0..ft.len()).filter_map(|i| ft.record_name(i)).collect();
    assert_eq!(kept, ["k::a", "k::r1"]);
    // Dropped sites are never initialised (nothing to release later).
    assert_ne!(p.peek(sites[2], ALT_NOP.len()), ALT_NOP.to_vec());
    for &s in &sites[3..] {
        assert_eq!(p.peek(s, ALT_NOP.len()), ALT_NOP.to_vec());
    }
}

#[test]
fn engine_work_is_quiet_in_its_context_only() {
    let (p, _) = MockPlatform::with_sites(1);
    let state = RecursionState::new();
    let quiet = state.quiet(p).unwrap();
    assert!(
        state.quiet(p).is_none(),
        "nested quiet: the outer guard clears"
    );
    assert!(state.try_enter(p).is_none(), "engine work is not traced");
    assert_eq!(state.recursions(), 0, "and not counted as a recursion");
    p.set_context(Context::Irq);
    assert!(
        state.try_enter(p).is_some(),
        "an interrupt meanwhile is traced"
    );
    p.set_context(Context::Normal);
    assert!(
        state.synchronize(0),
        "a quiet CPU is outside every dispatcher: grace periods do not wait for it"
    );
    drop(quiet);
    assert!(state.try_enter(p).is_some());
}

#[test]
fn a_recursion_while_quiet_is_counted_and_leaves_the_bit_to_its_owner() {
    let (p, _) = MockPlatform::with_sites(1);
    let state = RecursionState::new();
    // A callback (guard held) that calls the engine (quiet) whose work
    // calls traced code: refused as a recursion, as the trampolines do.
    let outer = state.try_enter(p).unwrap();
    let quiet = state.quiet(p).unwrap();
    assert!(state.try_enter(p).is_none());
    assert_eq!(state.recursions(), 1);
    drop(quiet);
    assert!(!state.synchronize(0), "the outer guard still holds the bit");
    drop(outer);
    assert!(state.synchronize(0), "and its drop cleared it");
    assert_eq!(state.recursions(), 1);
}

#[test]
fn one_engine_per_platform_and_ops_stay_with_their_engine() {
    let (p, sites) = MockPlatform::with_sites(4);
    let mut a = Ftrace::new(MockArch::new(), p, sites.clone(), None).unwrap();
    assert_eq!(
        Ftrace::new(MockArch::new(), p, sites.clone(), None).err(),
        Some(Error::EngineExists)
    );
    a.init();
    let ops = leak_ops(OpsFlags::empty());
    a.register(ops).unwrap();
    // Another kernel's engine (another platform) may not touch it: its
    // filter sets are the first engine's to free.
    let (q, qsites) = MockPlatform::with_sites(4);
    let mut b = Ftrace::new(MockArch::new(), q, qsites, None).unwrap();
    b.init();
    assert_eq!(b.set_filter(ops, "*").err(), Some(Error::OtherEngine));
    assert_eq!(b.register(ops).err(), Some(Error::AlreadyRegistered));
    a.unregister(ops).unwrap();
    assert_eq!(b.register(ops).err(), Some(Error::OtherEngine));
    drop(a);
    // Dropped: the platform may have an engine again.
    assert!(Ftrace::new(MockArch::new(), p, sites, None).is_ok());
}

#[test]
fn sole_ipmodify_callback_never_sees_a_function_it_does_not_want() {
    let names = numbered(3);
    let mut ft = setup(&names);
    let (ops, calls) = counting_ops(OpsFlags::IPMODIFY);
    ft.set_filter(ops, "m::f1").unwrap();
    ft.register(ops).unwrap();
    // A CPU still inside a shared trampoline after a switch passes the sole
    // callback a site it does not want (simulated: site 0 called through
    // the assist function with this ops).
    let mut regs = FtraceRegs::zeroed();
    // SAFETY: `ops` is 'static and `regs` a live frame.
    unsafe {
        crate::ops::ftrace_ops_assist_func(site(0), 0, ops, &mut regs);
        crate::ops::ftrace_ops_assist_func(site(1), 0, ops, &mut regs);
    }
    assert_eq!(calls.load(Ordering::Relaxed), 1, "only f1 reaches it");
    ft.unregister(ops).unwrap();
}

/// Real threads as CPUs: readers call sites through the dispatchers while
/// the engine switches callbacks, filters and trampolines under them. No
/// callback may ever see a function its filter excludes (checked against
/// sets the test keeps itself), and every retired snapshot is freed by the
/// end (grace periods complete while readers keep coming).
#[test]
fn dispatch_races_with_updates_on_real_threads() {
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;
    const READERS: usize = 3;
    let names = numbered(8);
    let ft = setup(&names);
    let ft: &'static spin::Mutex<Ft> = Box::leak(Box::new(spin::Mutex::new(ft)));
    // Callback A may see only even sites, B only odd ones; a violation is
    // counted in BAD.
    static BAD: AtomicUsize = AtomicUsize::new(0);
    static SEEN: AtomicUsize = AtomicUsize::new(0);
    extern "C" fn even_only(ip: usize, _: usize, _: &Ops, _: &mut FtraceRegs) {
        SEEN.fetch_add(1, Ordering::Relaxed);
        if (ip - TEXT_BASE) / SITE_STRIDE % 2 != 0 {
            BAD.fetch_add(1, Ordering::Relaxed);
        }
    }
    extern "C" fn odd_only(ip: usize, _: usize, _: &Ops, _: &mut FtraceRegs) {
        SEEN.fetch_add(1, Ordering::Relaxed);
        if (ip - TEXT_BASE) / SITE_STRIDE % 2 != 1 {
            BAD.fetch_add(1, Ordering::Relaxed);
        }
    }
    let a: &'static Ops = Box::leak(Box::new(Ops::new(even_only, OpsFlags::IPMODIFY)));
    let b: &'static Ops = Box::leak(Box::new(Ops::new(odd_only, OpsFlags::SAVE_REGS)));
    let stop = Arc::new(AtomicBool::new(false));
    // The list ops the shared trampolines pass (the engine's, 'static).
    let list_ops = ft.lock().trace_op();
    let ready = Arc::new(AtomicUsize::new(0));
    let mut threads = Vec::new();
    for cpu in 1..=READERS {
        let stop = stop.clone();
        let ready = ready.clone();
        threads.push(std::thread::spawn(move || {
            mock::set_thread_cpu(cpu);
            let mut regs = FtraceRegs::zeroed();
            let mut calls = 0usize;
            ready.fetch_add(1, Ordering::SeqCst);
            while !stop.load(Ordering::Relaxed) {
                for i in 0..8 {
                    // What a CPU executing site i may call at any moment of
                    // an update: the list dispatcher, or either callback's
                    // own trampoline (reached late, after a switch).
                    // SAFETY: 'static ops and a live frame, as trampolines pass.
                    unsafe {
                        crate::ops::ftrace_ops_list_func(site(i), 0, list_ops, &mut regs);
                        crate::ops::ftrace_ops_assist_func(site(i), 0, a, &mut regs);
                        crate::ops::ftrace_ops_assist_func(site(i), 0, b, &mut regs);
                    }
                    calls += 3;
                }
            }
            calls
        }));
    }
    mock::set_thread_cpu(0);
    while ready.load(Ordering::SeqCst) < READERS {
        std::thread::yield_now();
    }
    for round in 0..600 {
        let mut e = ft.lock();
        match round % 6 {
            0 => {
                e.set_filter(a, "m::f0,m::f2,m::f4,m::f6").unwrap();
                e.register(a).unwrap();
            }
            1 => {
                e.set_filter(b, "m::f1,m::f3").unwrap();
                e.register(b).unwrap();
            }
            2 => {
                e.add_filter(b, "m::f5,m::f7").unwrap();
            }
            3 => {
                e.set_filter(a, "m::f2").unwrap();
            }
            4 => e.unregister(a).unwrap(),
            _ => e.unregister(b).unwrap(),
        }
    }
    stop.store(true, Ordering::Relaxed);
    let calls: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(
        BAD.load(Ordering::Relaxed),
        0,
        "a callback saw a function it does not want"
    );
    assert!(calls > 0, "the readers ran");
    let e = ft.lock();
    assert_eq!(e.check_all_nops(), 0);
    assert_eq!(e.retired_len(), 0, "every retired snapshot freed");
}
