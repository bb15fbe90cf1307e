//! Host benchmark of filter matching at Linux's scale: 100,000 function
//! names, each pattern resolved the way `Ftrace::set_filter` resolves it
//! ([`ftrace::filter::parse`] then [`ftrace::filter::apply`] over every
//! name). Run by `scripts/bench.sh --scale`, or:
//!
//! ```sh
//! cargo run --release -p ftrace --example filter_bench
//! ```
//!
//! Prints, per pattern, the functions matched (exact, the same on every
//! run) and nanoseconds per name (wall time on the host: the best of
//! [`RUNS`] runs, which varies with the machine and its load; the kernel's
//! `test=bench` gives the deterministic in-kernel figure).

use std::hint::black_box;
use std::time::Instant;

use ftrace::filter;

/// Names in the table (Linux's x86_64 kernel has about 57,700 traced
/// functions; 100,000 leaves room).
const NAMES: usize = 100_000;

/// Timed runs per pattern; the best is printed.
const RUNS: usize = 5;

/// Kernel-like names: `kernel::<subsystem>::<verb>_<noun>_<nnnnn>`, with
/// subsystems, verbs and nouns cycling at different periods so that every
/// kind of pattern below matches a known share.
fn names() -> Vec<String> {
    const SUBSYS: [&str; 8] = [
        "mm", "fs", "net", "sched", "block", "irq", "time", "drivers",
    ];
    const VERBS: [&str; 5] = ["alloc", "free", "lock", "unlock", "update"];
    const NOUNS: [&str; 7] = ["page", "inode", "skb", "task", "bio", "desc", "timer"];
    (0..NAMES)
        .map(|i| {
            format!(
                "kernel::{}::{}_{}_{i:05}",
                SUBSYS[i % SUBSYS.len()],
                VERBS[i % VERBS.len()],
                NOUNS[i % NOUNS.len()]
            )
        })
        .collect()
}

/// The patterns timed: the kinds of `set_ftrace_filter` lines people write,
/// each with the names it must select, stated from the generator's
/// periods (not from the matcher): `i` is the name's number.
type Case = (&'static str, &'static str, fn(usize) -> bool);
const PATTERNS: [Case; 8] = [
    ("exact, last segment", "alloc_page_00000", |i| i == 0),
    ("exact, full path", "kernel::mm::alloc_page_00000", |i| {
        i == 0
    }),
    ("prefix", "lock_*", |i| i % 5 == 2),
    ("suffix", "*_00042", |i| i == 42),
    ("substring", "*inode*", |i| i % 7 == 1),
    ("module path", "kernel::sched::*", |i| i % 8 == 3),
    ("two globs", "alloc_*,free_*", |i| i % 5 < 2),
    // "_1" occurs only as the first digit of the number.
    ("glob and negation", "*page*,!*_1*", |i| {
        i % 7 == 0 && !(10_000..20_000).contains(&i)
    }),
];

fn main() {
    let owned = names();
    let names: Vec<Option<&str>> = owned.iter().map(|s| Some(s.as_str())).collect();
    println!("filter-bench: {NAMES} names, best of {RUNS} runs (host wall time)");
    let mut selected = vec![false; names.len()];
    for (kind, text, expected) in PATTERNS {
        let mut best = u128::MAX;
        let mut matched = 0;
        for _ in 0..RUNS {
            selected.fill(false);
            let t0 = Instant::now();
            let patterns = filter::parse(black_box(text)).expect("the patterns are valid");
            let r = filter::apply(&patterns, black_box(&names), &mut selected);
            let dt = t0.elapsed().as_nanos();
            r.expect("every pattern matches");
            best = best.min(dt);
            matched = selected.iter().filter(|&&s| s).count();
            let wrong = (0..NAMES).filter(|&i| selected[i] != expected(i)).count();
            assert_eq!(wrong, 0, "'{text}' selected {wrong} names wrongly");
        }
        let per_name = best as f64 / NAMES as f64;
        println!("filter-bench: {kind:<20} '{text}': {matched} matched, {per_name:.1} ns/name");
    }
}
