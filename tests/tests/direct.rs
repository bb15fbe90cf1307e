//! Per-callback trampolines (`test=direct`): a site wanted by exactly one
//! callback calls that callback's own trampoline, a site wanted by two goes
//! through the list dispatcher, and sites follow as callbacks come and go.
//! On every arch's default build, and on the i686 mcount (which has its own
//! set of per-callback trampolines) and nodynamic (which has none) builds.

use qemu_tests::{Boot, Outcome, boot_lines, boot_variant, direct_self_guarded_line, expect};

fn boot(arch: &str, variant: &str) -> Boot {
    boot_variant(arch, variant, b"test=direct")
}

/// Everything `test=direct` prints on `arch`; `direct` is false for a build
/// without per-callback trampolines, whose sites all show the list.
/// `mcount` is true for the i686 builds calling `mcount`, whose trampolines'
/// per-CPU busy flag refuses a nested call before the recursion guard
/// (which counts) sees it. A `RECURSION` callback (S) is entered without
/// the guard or the busy flag through its own trampoline and refuses its
/// nested calls with its own guard (counted); without a pool (nodynamic)
/// the list dispatcher holds the guard for it and `mcount`'s busy flag
/// refuses the nested calls before they reach it.
fn expected(arch: &str, direct: bool, mcount: bool) -> Vec<String> {
    let own = if direct { "ops trampoline" } else { "list" };
    let refused = if mcount { 0 } else { 3 };
    // Every path reads the context from the per-CPU area the kernel
    // described (the trampolines' fast path and the list's guard alike):
    // the platform is never asked.
    let asked = 0;
    let mut want = boot_lines(arch, "test=direct", 0);
    want.extend([
        // A on demo_leaf and demo_outer, B on demo_inner and demo_outer.
        format!("direct: demo_leaf -> {own}, demo_inner -> {own}, demo_outer -> list"),
        "direct: A saw 4 calls, B saw 4 calls".into(),
        // B unregistered: demo_outer is A's alone.
        format!("direct: demo_leaf -> {own}, demo_inner -> nop, demo_outer -> {own}"),
        "direct: A saw 4 calls, B saw 0 calls".into(),
        format!(
            "direct: 4 calls of demo_leaf: A saw 4, the platform was asked for the context \
             {asked} times"
        ),
        format!(
            "direct: R on demo_leaf -> {own}, calling demo_leaf from R: entered 3 times, \
             0 times inside itself, {refused} recursions refused"
        ),
        direct_self_guarded_line(direct),
        "direct: 0 sites differ from nop after unregister".into(),
        "rftrace: success".into(),
    ]);
    want
}

fn check(b: &Boot, want: &[String]) {
    expect(b, Outcome::Success, want);
}

#[test]
fn single_callback_sites_call_their_trampoline_on_every_arch() {
    for arch in ["x86_64", "i686", "ppc64"] {
        check(&boot(arch, "fentry"), &expected(arch, true, false));
    }
}

#[test]
fn i686_mcount_has_them_and_nodynamic_does_not() {
    check(&boot("i686", "mcount"), &expected("i686", true, true));
    check(&boot("i686", "nodynamic"), &expected("i686", false, true));
}
