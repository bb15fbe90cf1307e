//! `test=bench` runs on every arch and prints its figures in the expected
//! shape. The figures themselves are wildcards: benchmarks are reported
//! (scripts/bench.sh, BENCHMARKS.md), never asserted on.

use qemu_tests::{Outcome, boot_lines, boot_with, expect};

/// Boots `test=bench` on `arch` (with `-icount shift=0`, as
/// scripts/bench.sh does) and checks every line's shape.
fn bench_shape(arch: &str) {
    bench_shape_variant(arch, "fentry");
}

/// [`bench_shape`] for a build variant.
fn bench_shape_variant(arch: &str, variant: &str) {
    let b = boot_with(arch, variant, b"test=bench", &["--icount"]);
    let mut want = boot_lines(arch, "test=bench", 0);
    want.extend(
        [
            "bench: clock: {N} ticks per 1000 instructions",
            "bench: N=50000 empty loop {N} insn/iteration",
            "bench: N=50000 untraced {N} insn/call",
            "bench: function tracer +{N} insn/event ({N}.{N}x baseline), \
             dispatch only +{N} ({N}.{N}x), list dispatch (2 callbacks) +{N} ({N}.{N}x)",
            "bench: dispatch including the recursion guard +{N} insn/call ({N}.{N}x): \
             an empty callback without RECURSION alone -> ops trampoline",
            "bench: paths: function tracer alone -> ops trampoline, two callbacks -> list",
            "bench: 50000 events written, 0 lost; buffer cleared, 0 sites differ from nop",
            "bench: function_graph +{N} insn/call (entry and return, {N}.{N}x baseline); N=20000, 40000 events written, 0 lost, 0 sites differ from nop",
            "bench: sites: {N} records; boot init +{N} insn/site, enable all +{N} insn/site, \
             disable all +{N} insn/site, filter 'demo_*' +{N} insn/site (6 matched)",
            "bench: sites: {N} enabled at once, 0 generated functions wrong, 0 sites differ from nop",
            "bench: memory: 8 bytes per site record, 16 per function event, 20 per graph event",
            "rftrace: success",
        ]
        .map(String::from),
    );
    expect(&b, Outcome::Success, &want);
}

#[test]
fn bench_runs_x86_64() {
    bench_shape("x86_64");
}

#[test]
fn bench_runs_i686() {
    bench_shape("i686");
}

#[test]
fn bench_runs_ppc64() {
    bench_shape("ppc64");
}

/// The scale build (50,000 generated functions): the same figures, and the
/// kernel's own checks at that size (every site enabled at once, every
/// generated function returning its value while traced, every site the
/// nop again after).
#[test]
fn bench_runs_at_scale_x86_64() {
    bench_shape_variant("x86_64", "scale");
}

/// As [`bench_runs_at_scale_x86_64`], with ppc64's 50,000 out-of-line stubs.
#[test]
fn bench_runs_at_scale_ppc64() {
    bench_shape_variant("ppc64", "scale");
}

/// As [`bench_runs_at_scale_x86_64`], on i686 (its 32-bit addresses and
/// offsets at the same size).
#[test]
fn bench_runs_at_scale_i686() {
    bench_shape_variant("i686", "scale");
}

/// The build without patchable entries (`--variant nopatch`, what
/// scripts/bench.sh compares the untraced loop and the image size with):
/// no site at all, and the bench times the empty and untraced loops only.
#[test]
fn bench_runs_without_patchable_entries_x86_64() {
    let b = boot_with("x86_64", "nopatch", b"test=bench", &["--icount"]);
    let mut want = boot_lines("x86_64", "test=bench", 0);
    want[2] = "sites: 0 patchable, 0 unexpected".into();
    want[4] = "ftrace: 0 sites, 0 failed".into();
    want.extend(
        [
            "bench: clock: {N} ticks per 1000 instructions",
            "bench: N=50000 empty loop {N} insn/iteration",
            "bench: N=50000 untraced {N} insn/call",
            "bench: no patchable sites (built without them): nothing to trace",
            "rftrace: success",
        ]
        .map(String::from),
    );
    expect(&b, Outcome::Success, &want);
}
