//! ppc64-only scenarios: the stub encoding and byte-exact toggling
//! (`test=stubs`), the ELFv2 calling convention across the trampolines
//! (`test=abi`), the timebase frequency (`test=timebase`) and the trap
//! of a floating-point callback (`test=fp-callback`).

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

/// Callbacks run with MSR.FP clear (the trampolines save no floating-point
/// state): a callback's floating-point instruction stops the kernel with a
/// report naming it, at an address inside the callback as the ELF's own
/// symbol table places it, instead of corrupting the traced function's
/// floating-point registers.
#[test]
fn a_floating_point_callback_traps() {
    let b = boot("ppc64", b"test=fp-callback");
    assert_eq!(b.outcome, Outcome::Failure, "output:\n{}", b.text());
    let mut want = boot_lines("test=fp-callback");
    want.push("ppc64: fp-callback: calling demo_leaf with a floating-point callback".into());
    want.push(
        "panic: ppc64: floating-point instruction at 0x{X} \
         (kernel::arch::imp::scenarios::fp_call+0x{X}) with MSR.FP clear: a tracing callback \
         (or what it called) used floating point, which callbacks must not (the trampolines \
         save no FP state) at kernel/src/arch/ppc64/smp.rs:{N}"
            .into(),
    );
    let lines = b.lines();
    assert!(
        lines.len() > want.len()
            && lines
                .iter()
                .zip(&want)
                .all(|(l, w)| qemu_tests::line_matches(w, l)),
        "expected\n{}\noutput:\n{}",
        want.join("\n"),
        b.text()
    );
    assert!(!lines.iter().any(|l| l.contains("did not trap")));
    // The reported address lies inside fp_call, by the ELF's symbols.
    let panic = &lines[want.len() - 1];
    let addr = u64::from_str_radix(
        panic
            .split("instruction at 0x")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .unwrap(),
        16,
    )
    .unwrap();
    let elf = std::fs::read(qemu_tests::kernel("ppc64", "fentry")).unwrap();
    let obj = object::File::parse(&*elf).unwrap();
    use object::{Object, ObjectSymbol};
    let f = obj
        .symbols()
        .find(|s| {
            s.name()
                .is_ok_and(|n| n.contains("scenarios") && n.ends_with("7fp_call"))
        })
        .expect("fp_call in the ELF's symbol table");
    assert!(
        (f.address()..f.address() + f.size()).contains(&addr),
        "{addr:#x} is not in fp_call ({:#x}, {} bytes)",
        f.address(),
        f.size()
    );
}
