//! Code registered after boot (Linux's module load and unload): the
//! `demo_region` crate, linked apart from the boot site table, is added to
//! the tracer at run time with its own site table (and, on ppc64, its own
//! stub area), traced through a filter set before it existed, and removed
//! again: its sites are nops, its stubs unused, later calls leave no event.

use qemu_tests::{Outcome, boot, boot_lines, event_line, expect, function_header, region_events};

/// Everything `test=region` prints on `arch`, whose region uses `stubs`
/// stubs while it is registered (ppc64: one per site; x86: none).
fn expected(arch: &str, stubs: usize) -> Vec<String> {
    let mut want = boot_lines(arch, "test=region", 0);
    want.extend([
        // Before the region exists the filter matches only its caller.
        "region: filter region_* selects 1 functions".into(),
        "region: before add: sum_squares(3)=5".into(),
        "region: added demo_region, 2 sites, 0 failed".into(),
        format!("region: traced: sum_squares(3)=5, {stubs} stubs in use"),
        "region: removed, 0 sites differ from nop, 0 stubs in use".into(),
        "region: after remove: sum_squares(3)=5".into(),
    ]);
    let trace = region_events(event_line);
    want.extend(function_header(trace.len()));
    want.extend(trace);
    want.push("ftrace: 0 recursions refused, 0 events lost".into());
    want.push("rftrace: success".into());
    want
}

#[test]
fn region_is_traced_then_removed() {
    for (arch, stubs) in [("x86_64", 0), ("i686", 0), ("ppc64", 2)] {
        let b = boot(arch, b"test=region");
        expect(&b, Outcome::Success, &expected(arch, stubs));
    }
}
