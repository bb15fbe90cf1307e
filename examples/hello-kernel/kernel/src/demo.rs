//! The functions this kernel traces: a small call tree, and one function
//! called from an interrupt handler.

use core::hint::black_box;

/// Calls [`inner`] three times.
#[inline(never)]
pub fn outer(n: u64) -> u64 {
    let mut sum = 0;
    for i in 0..3 {
        sum += inner(black_box(n + i));
    }
    sum
}

/// Calls [`leaf`].
#[inline(never)]
pub fn inner(n: u64) -> u64 {
    leaf(n) + 1
}

/// The bottom of the tree.
#[inline(never)]
pub fn leaf(n: u64) -> u64 {
    black_box(n * 2)
}

/// Run by the software interrupt handler: traced in hardirq context.
#[inline(never)]
pub fn in_irq() -> u64 {
    black_box(7)
}
