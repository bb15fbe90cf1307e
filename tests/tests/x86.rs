//! x86-only checks: the int3 patching protocol executed mid-patch
//! (`test=int3`) on x86_64 and on every i686 build variant, and the generic
//! tracer scenarios on the i686 `mcount`, `nodynamic` and `nofp` variants
//! (tests/tests/trace.rs covers the default builds).

use qemu_tests::{
    Outcome, boot_lines, boot_variant, demo_calls, demo_calls_without, expect, traced_output,
};

/// Every x86 build: (arch, variant).
const BUILDS: &[(&str, &str)] = &[
    ("x86_64", "fentry"),
    ("i686", "fentry"),
    ("i686", "nofp"),
    ("i686", "mcount"),
    ("i686", "nodynamic"),
];

/// Boots `variant` of i686 and expects success with exactly `want` after
/// the boot lines.
fn expect_i686(variant: &str, cmdline: &str, rest: &[&str]) {
    let b = boot_variant("i686", variant, cmdline.as_bytes());
    let mut want = boot_lines("i686", cmdline, 0);
    want.extend(rest.iter().map(|l| l.to_string()));
    expect(&b, Outcome::Success, &want);
}

#[test]
fn int3_mid_patch_is_emulated_in_both_directions() {
    for &(arch, variant) in BUILDS {
        let b = boot_variant(arch, variant, b"test=int3");
        let mut want = boot_lines(arch, "test=int3", 0);
        want.extend(
            [
                "int3: traced demo_leaf(5)=11, callback ran 1 times",
                "int3: nop->call with int3 in place: demo_leaf(5)=11 11, callback ran 2 times, 2 traps emulated",
                "int3: call->nop with int3 in place: demo_leaf(5)=11 11, callback ran 0 times, 2 traps emulated",
                "int3: 0 sites differ from nop after unregister",
                "rftrace: success",
            ]
            .map(String::from),
        );
        expect(&b, Outcome::Success, &want);
    }
}

/// Filters, notrace, toggle and redirect on one i686 variant.
fn generic_scenarios(variant: &str) {
    for (cmd, calls) in [
        ("ftrace=function ftrace_filter=demo_*", demo_calls()),
        (
            "ftrace=function ftrace_filter=demo_* ftrace_notrace=demo_inner",
            demo_calls_without(&["demo_inner"]),
        ),
    ] {
        let b = boot_variant("i686", variant, cmd.as_bytes());
        expect(&b, Outcome::Success, &traced_output("i686", cmd, &calls));
    }
    let toggle = format!(
        "{} events, 0 sites differ from nop after disable",
        demo_calls().len()
    );
    expect_i686(
        variant,
        "test=toggle ftrace_filter=demo_*",
        &[
            &format!("toggle 1: outer=12 fib=55, {toggle}"),
            &format!("toggle 2: outer=12 fib=55, {toggle}"),
            "rftrace: success",
        ],
    );
    expect_i686(
        variant,
        "test=redirect",
        &[
            "redirect on: outer=15 fib=55",
            "redirect off: outer=12 fib=55, 0 sites differ from nop",
            "rftrace: success",
        ],
    );
}

#[test]
fn mcount_variants_trace_toggle_and_redirect() {
    for v in ["mcount", "nodynamic"] {
        generic_scenarios(v);
    }
}

/// fentry sites need no frame: the build without frame pointers behaves
/// exactly like the default one.
#[test]
fn fentry_without_frame_pointers() {
    generic_scenarios("nofp");
}

/// An mcount site's "nop" is its `call mcount`: a corrupted one is reported
/// against that call and left alone.
#[test]
fn mcount_variants_report_a_corrupted_site() {
    for v in ["mcount", "nodynamic"] {
        let cmd = "test=corrupt";
        let b = boot_variant("i686", v, cmd.as_bytes());
        let mut want = boot_lines("i686", cmd, 1);
        want.insert(
            4,
            "ftrace: failed to init site kernel::demo::demo_fib+0x{X} at 0x{X}: \
             expected e8 {X} {X} {X} {X}, found 66 66 66 66 90"
                .into(),
        );
        want.extend(["demo: outer=12 fib=55".into(), "rftrace: success".into()]);
        expect(&b, Outcome::Success, &want);
    }
}
