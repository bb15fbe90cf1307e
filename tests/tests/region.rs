//! Code registered after boot (Linux's module load and unload): the
//! `demo_region` crate, linked apart from the boot site table, is added to
//! the tracer at run time with its own site table (and, on ppc64, its own
//! stub area), traced through a filter set before it existed, and removed
//! again: its sites are nops, its stubs unused, later calls leave no event.

use qemu_tests::{Outcome, assert_lines, boot};

/// Linux's function-tracer header for `n` events on one CPU.
fn header(n: usize) -> Vec<String> {
    let mut h = vec!["# tracer: function".to_owned(), "#".to_owned()];
    h.push(format!(
        "# entries-in-buffer/entries-written: {n}/{n}   #P:1"
    ));
    h.extend(
        [
            "#",
            "#                                _-----=> irqs-off/BH-disabled",
            "#                               / _----=> need-resched",
            "#                              | / _---=> hardirq/softirq",
            "#                              || / _--=> preempt-depth",
            "#                              ||| / _-=> migrate-disable",
            "#                              |||| /     delay",
            "#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION",
            "#              | |         |   |||||     |         |",
        ]
        .map(str::to_owned),
    );
    h
}

/// Everything `test=region` prints on `arch`, whose region uses `stubs`
/// stubs while it is registered (ppc64: one per site; x86: none).
fn expected(arch: &str, stubs: usize) -> Vec<String> {
    let mut want: Vec<String> = vec![
        format!("rftrace: booting on {arch}"),
        "cmdline: test=region".into(),
        "sites: {N} patchable, 0 unexpected".into(),
        "ftrace: {N} sites, 0 failed".into(),
        "symbols: 0x{X} is kernel::demo::demo_leaf+0x0, and back: ok".into(),
        // Before the region exists the filter matches only its caller.
        "region: filter region_* selects 1 functions".into(),
        "region: before add: sum_squares(3)=5".into(),
        "region: added demo_region, 2 sites, 0 failed".into(),
        format!("region: traced: sum_squares(3)=5, {stubs} stubs in use"),
        "region: removed, 0 sites differ from nop, 0 stubs in use".into(),
        "region: after remove: sum_squares(3)=5".into(),
    ];
    let event = |f: &str, parent: &str| {
        format!("          <idle>-0       [000] .....     {{N}}.{{N}}: {f} <-{parent}")
    };
    let workload = || {
        event(
            "kernel::tracing::region_workload",
            "kernel::tracing::run_region",
        )
    };
    let mut trace = vec![
        // Before add: the region's functions are not known to the tracer.
        workload(),
        // Added: traced like the boot code.
        workload(),
        event(
            "demo_region::region_sum_squares",
            "kernel::tracing::region_workload",
        ),
    ];
    trace.extend((0..3).map(|_| {
        event(
            "demo_region::region_square",
            "demo_region::region_sum_squares",
        )
    }));
    // Removed: only the boot code's event.
    trace.push(workload());
    want.extend(header(trace.len()));
    want.extend(trace);
    want.push("ftrace: 0 recursions refused, 0 events lost".into());
    want.push("rftrace: success".into());
    want
}

#[test]
fn region_is_traced_then_removed() {
    for (arch, stubs) in [("x86_64", 0), ("i686", 0), ("ppc64", 2)] {
        let b = boot(arch, b"test=region");
        let want = expected(arch, stubs);
        let refs: Vec<&str> = want.iter().map(String::as_str).collect();
        assert_lines(&b, &refs);
        assert_eq!(b.outcome, Outcome::Success, "{arch}: {}", b.stderr);
    }
}
