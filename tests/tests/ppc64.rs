//! ppc64-only scenarios: the stub encoding and byte-exact toggling
//! (`test=stubs`), the ELFv2 calling convention across the trampolines
//! (`test=abi`) and the timebase frequency (`test=timebase`).

use qemu_tests::{Boot, Outcome, boot, expect, number_after, ppc64_abi_lines};

fn boot_lines(cmdline: &str) -> Vec<String> {
    qemu_tests::boot_lines("ppc64", cmdline, 0)
}

fn check(b: &Boot, want: &[String]) {
    expect(b, Outcome::Success, want);
}

#[test]
fn every_stub_holds_the_expected_encoding_and_toggling_is_byte_exact() {
    let b = boot("ppc64", b"test=stubs");
    let mut want = boot_lines("test=stubs");
    for phase in ["init", "ops trampoline", "ftrace_regs_caller"] {
        want.push(format!(
            "ppc64: {phase}: {{N}} stubs match the expected encoding, 0 differ"
        ));
    }
    want.push("demo: outer=12 fib=55".into());
    want.push("ppc64: disabled: {N} stubs match the expected encoding, 0 differ".into());
    want.push(
        "ppc64: enable/disable twice: {N} bytes of sites and stubs compared, 0 differ".into(),
    );
    want.push("rftrace: success".into());
    check(&b, &want);
    // Every site has its stub checked in every phase.
    let sites = number_after(&b, "ftrace: ").unwrap();
    for phase in ["init", "ops trampoline", "ftrace_regs_caller", "disabled"] {
        assert_eq!(
            number_after(&b, &format!("ppc64: {phase}: ")),
            Some(sites),
            "{phase}"
        );
    }
    // Four bytes per site plus the stub area (16 bytes per site-table entry).
    let bytes = number_after(&b, "ppc64: enable/disable twice: ").unwrap();
    assert!(
        bytes >= sites * 4 + sites * 16,
        "{bytes} bytes for {sites} sites"
    );
}

#[test]
fn eight_arguments_floats_and_toc_survive_every_trampoline() {
    let b = boot("ppc64", b"test=abi");
    let mut want = boot_lines("test=abi");
    want.extend(ppc64_abi_lines());
    want.push("rftrace: success".into());
    check(&b, &want);
}

#[test]
fn timebase_is_512_mhz() {
    let b = boot("ppc64", b"test=timebase");
    let mut want = boot_lines("test=timebase");
    want.push("ppc64: timebase 512000000 Hz".into());
    want.push("rftrace: success".into());
    check(&b, &want);
}
