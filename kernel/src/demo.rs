//! The demo workload the tracers trace. The names and call structure are
//! relied on by tests, docs and examples:
//!
//! - `demo_run()` calls `demo_outer(3)` and `demo_fib(10)`;
//! - `demo_outer(n)` sums `demo_inner(i)` for `i in 0..n` (= 12 for n = 3);
//! - `demo_inner(i)` is `demo_leaf(i) + 1`;
//! - `demo_leaf(x)` is `2 * x + 1`;
//! - `demo_fib(n)` is the naive Fibonacci (177 calls and 55 for n = 10).

use core::hint::black_box;
use core::sync::atomic::{AtomicBool, Ordering};

static PANIC_IN_LEAF: AtomicBool = AtomicBool::new(false);

/// Makes the next `demo_leaf` call panic (`test=panic`).
pub fn request_panic_in_leaf() {
    PANIC_IN_LEAF.store(true, Ordering::Relaxed);
}

/// Runs the workload: `(demo_outer(3), demo_fib(10))`.
#[inline(never)]
pub fn demo_run() -> (u64, u64) {
    let outer = demo_outer(black_box(3));
    let fib = demo_fib(black_box(10));
    (outer, fib)
}

/// Sum of `demo_inner(i)` for `i in 0..n`.
#[inline(never)]
pub fn demo_outer(n: u64) -> u64 {
    let mut sum = 0;
    for i in 0..black_box(n) {
        sum += demo_inner(black_box(i));
    }
    black_box(sum)
}

/// `demo_leaf(i) + 1`.
#[inline(never)]
pub fn demo_inner(i: u64) -> u64 {
    black_box(demo_leaf(black_box(i)) + 1)
}

/// `2 * x + 1`.
#[inline(never)]
pub fn demo_leaf(x: u64) -> u64 {
    if PANIC_IN_LEAF.load(Ordering::Relaxed) {
        panic!("test=panic: deliberate panic in demo_leaf({x})");
    }
    black_box(2 * black_box(x) + 1)
}

/// The replacement `test=redirect` sends `demo_leaf` to: `2 * x + 2`.
#[inline(never)]
pub fn demo_leaf_patched(x: u64) -> u64 {
    black_box(2 * black_box(x) + 2)
}

/// Naive Fibonacci.
#[inline(never)]
pub fn demo_fib(n: u64) -> u64 {
    if black_box(n) < 2 {
        n
    } else {
        demo_fib(black_box(n - 1)) + demo_fib(black_box(n - 2))
    }
}
