//! `test=bench` runs on every arch and prints its figures in the expected
//! shape. The figures themselves are wildcards: benchmarks are reported
//! (scripts/bench.sh, BENCHMARKS.md), never asserted on.

use qemu_tests::{Outcome, boot_lines, boot_with, expect};

/// Boots `test=bench` on `arch` (with `-icount shift=0`, as
/// scripts/bench.sh does) and checks every line's shape.
fn bench_shape(arch: &str) {
    let b = boot_with(arch, "fentry", b"test=bench", &["--icount"]);
    let mut want = boot_lines(arch, "test=bench", 0);
    want.extend(
        [
            "bench: clock: {N} ticks per 1000 instructions",
            "bench: N=50000 empty loop {N} insn/iteration",
            "bench: N=50000 untraced {N} insn/call",
            "bench: function tracer +{N} insn/event ({N}.{N}x baseline), \
             dispatch only +{N} ({N}.{N}x), list dispatch (2 callbacks) +{N} ({N}.{N}x)",
            "bench: paths: function tracer alone -> ops trampoline, two callbacks -> list",
            "bench: 50000 events written, 0 lost; buffer cleared, 0 sites differ from nop",
            "bench: function_graph +{N} insn/call (entry and return, {N}.{N}x baseline); N=20000, 40000 events written, 0 lost, 0 sites differ from nop",
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
