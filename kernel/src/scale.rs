//! The `scale` build's generated functions (`build.rs`): 50,000 traced
//! functions `kernel::scale::f00000` ... `f49999`, each returning `x ^ i`,
//! so that `test=bench` measures boot, enabling and filtering at Linux's
//! scale (its x86_64 kernel has 57,695 sites). Other builds have none.

use core::hint::black_box;

include!(concat!(env!("OUT_DIR"), "/scale_gen.rs"));

/// Calls every generated function once and checks its result; returns the
/// number that returned the wrong value (0 expected). Keeps them linked.
pub fn check_all() -> usize {
    black_box(&FUNCTIONS)
        .iter()
        .enumerate()
        .filter(|&(i, f)| f(0x5a5a) != 0x5a5a ^ i as u64)
        .count()
}
