//! `test=bench` runs on every arch and prints its figures in the expected
//! shape. The figures themselves are wildcards: benchmarks are reported
//! (scripts/bench.sh, BENCHMARKS.md), never asserted on.

use qemu_tests::{Outcome, assert_lines, boot_with};

/// Boots `test=bench` on `arch` (with `-icount shift=0`, as
/// scripts/bench.sh does) and checks every line's shape.
fn bench_shape(arch: &str) {
    let b = boot_with(arch, "fentry", b"test=bench", &["--icount"]);
    assert_eq!(
        b.outcome,
        Outcome::Success,
        "output:\n{}\nrunner:\n{}",
        b.text(),
        b.stderr
    );
    assert_lines(
        &b,
        &[
            &format!("rftrace: booting on {arch}"),
            "cmdline: test=bench",
            "sites: {N} patchable, 0 unexpected",
            "ftrace: {N} sites, 0 failed",
            "symbols: 0x{X} is kernel::demo::demo_leaf+0x0, and back: ok",
            "bench: clock: {N} ticks per 1000 instructions",
            "bench: N=50000 empty loop {N} insn/iteration",
            "bench: N=50000 untraced {N} insn/call",
            "bench: function tracer +{N} insn/event ({N}.{N}x baseline), \
             dispatch only +{N} ({N}.{N}x), list dispatch (2 callbacks) +{N} ({N}.{N}x)",
            "bench: paths: function tracer alone -> ops trampoline, two callbacks -> list",
            "bench: 50000 events written, 0 lost; buffer cleared, 0 sites differ from nop",
            "rftrace: success",
        ],
    );
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
