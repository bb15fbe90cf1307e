//! The code of a "module" for the test kernel: the linker scripts put this
//! crate's functions in a section of their own (`.text.region`) with their
//! own site table (`__ftrace_region_sites_start..stop`), outside the boot
//! site table, and the kernel registers them with the tracer only after
//! boot (`test=region`, `ftrace::Ftrace::add_region`).
//!
//! `scripts/rustc-wrapper.sh` instruments this crate like the kernel. Every
//! function is `#[inline(never)]` so that it keeps its own site, and uses
//! its callee's result after the call so that no call is a tail call (the
//! trace shows the real parent).
#![no_std]

use core::hint::black_box;

/// `x * x`.
#[inline(never)]
pub fn region_square(x: u64) -> u64 {
    black_box(x) * x
}

/// `0² + 1² + ... + (n-1)²`, calling [`region_square`] once per term.
#[inline(never)]
pub fn region_sum_squares(n: u64) -> u64 {
    let mut sum = 0;
    for i in 0..n {
        sum += black_box(region_square(black_box(i)));
    }
    black_box(sum)
}
