//! Per-callback trampolines (`test=direct`): a site wanted by exactly one
//! callback calls that callback's own trampoline, a site wanted by two goes
//! through the list dispatcher, and sites follow as callbacks come and go.
//! On every arch's default build, and on the i686 mcount (which has its own
//! set of per-callback trampolines) and nodynamic (which has none) builds.

use std::sync::Mutex;

use qemu_tests::{Boot, Outcome, assert_lines, boot_variant};

/// Two i686 variants are never built at the same time (see
/// tests/tests/x86.rs): every boot here holds this lock.
static BUILDS_LOCK: Mutex<()> = Mutex::new(());

fn boot(arch: &str, variant: &str) -> Boot {
    let _g = BUILDS_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    boot_variant(arch, variant, b"test=direct")
}

/// Everything `test=direct` prints on `arch`; `direct` is false for a build
/// without per-callback trampolines, whose sites all show the list.
fn expected(arch: &str, direct: bool) -> Vec<String> {
    let own = if direct { "ops trampoline" } else { "list" };
    vec![
        format!("rftrace: booting on {arch}"),
        "cmdline: test=direct".into(),
        "sites: {N} patchable, 0 unexpected".into(),
        "ftrace: {N} sites, 0 failed".into(),
        "symbols: 0x{X} is kernel::demo::demo_leaf+0x0, and back: ok".into(),
        // A on demo_leaf and demo_outer, B on demo_inner and demo_outer.
        format!("direct: demo_leaf -> {own}, demo_inner -> {own}, demo_outer -> list"),
        "direct: A saw 4 calls, B saw 4 calls".into(),
        // B unregistered: demo_outer is A's alone.
        format!("direct: demo_leaf -> {own}, demo_inner -> nop, demo_outer -> {own}"),
        "direct: A saw 4 calls, B saw 0 calls".into(),
        "direct: 0 sites differ from nop after unregister".into(),
        "rftrace: success".into(),
    ]
}

fn check(b: &Boot, want: &[String]) {
    let want: Vec<&str> = want.iter().map(String::as_str).collect();
    assert_lines(b, &want);
    assert_eq!(b.outcome, Outcome::Success, "runner: {}", b.stderr);
}

#[test]
fn single_callback_sites_call_their_trampoline_on_every_arch() {
    for arch in ["x86_64", "i686", "ppc64"] {
        check(&boot(arch, "fentry"), &expected(arch, true));
    }
}

#[test]
fn i686_mcount_has_them_and_nodynamic_does_not() {
    check(&boot("i686", "mcount"), &expected("i686", true));
    check(&boot("i686", "nodynamic"), &expected("i686", false));
}
