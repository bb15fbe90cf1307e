//! x86-only checks: the int3 patching protocol executed mid-patch
//! (`test=int3`) and the register-frame contract with return hooking
//! (`test=abi`) on x86_64 and on every i686 build variant, and the generic
//! tracer scenarios on the i686 `mcount`, `nodynamic` and `nofp` variants
//! (tests/tests/trace.rs covers the default builds).

use qemu_tests::{
    Outcome, boot_lines, boot_variant, demo_calls, demo_calls_without, expect, traced_output,
};

/// Every x86 build: (arch, variant).
const BUILDS: &[(&str, &str)] = &[
    ("x86_64", "fentry"),
    ("i686", "fentry"),
    ("i686", "nofp"),
    ("i686", "mcount"),
    ("i686", "nodynamic"),
];

/// Boots `variant` of i686 and expects success with exactly `want` after
/// the boot lines.
fn expect_i686(variant: &str, cmdline: &str, rest: &[&str]) {
    let b = boot_variant("i686", variant, cmdline.as_bytes());
    let mut want = boot_lines("i686", cmdline, 0);
    want.extend(rest.iter().map(|l| l.to_string()));
    expect(&b, Outcome::Success, &want);
}

#[test]
fn int3_mid_patch_is_emulated_in_both_directions() {
    for &(arch, variant) in BUILDS {
        let b = boot_variant(arch, variant, b"test=int3");
        let mut want = boot_lines(arch, "test=int3", 0);
        want.extend(
            [
                "int3: traced demo_leaf(5)=11, callback ran 1 times",
                "int3: nop->call with int3 in place: demo_leaf(5)=11 11, callback ran 2 times, 2 traps emulated",
                "int3: call->nop with int3 in place: demo_leaf(5)=11 11, callback ran 0 times, 2 traps emulated",
                "int3: 0 sites differ from nop after unregister",
                "rftrace: success",
            ]
            .map(String::from),
        );
        expect(&b, Outcome::Success, &want);
    }
}

/// Filters, notrace, toggle and redirect on one i686 variant.
fn generic_scenarios(variant: &str) {
    for (cmd, calls) in [
        ("ftrace=function ftrace_filter=demo_*", demo_calls()),
        (
            "ftrace=function ftrace_filter=demo_* ftrace_notrace=demo_inner",
            demo_calls_without(&["demo_inner"]),
        ),
    ] {
        let b = boot_variant("i686", variant, cmd.as_bytes());
        expect(&b, Outcome::Success, &traced_output("i686", cmd, &calls));
    }
    let toggle = format!(
        "{} events, 0 sites differ from nop after disable",
        demo_calls().len()
    );
    expect_i686(
        variant,
        "test=toggle ftrace_filter=demo_*",
        &[
            &format!("toggle 1: outer=12 fib=55, {toggle}"),
            &format!("toggle 2: outer=12 fib=55, {toggle}"),
            "rftrace: success",
        ],
    );
    expect_i686(
        variant,
        "test=redirect",
        &[
            "redirect on: outer=15 fib=55",
            "redirect off: outer=12 fib=55, 0 sites differ from nop",
            "rftrace: success",
        ],
    );
}

#[test]
fn mcount_variants_trace_toggle_and_redirect() {
    for v in ["mcount", "nodynamic"] {
        generic_scenarios(v);
    }
}

/// fentry sites need no frame: the build without frame pointers behaves
/// exactly like the default one.
#[test]
fn fentry_without_frame_pointers() {
    generic_scenarios("nofp");
}

/// An mcount site's "nop" is its `call mcount`: a corrupted one is reported
/// against that call and left alone.
#[test]
fn mcount_variants_report_a_corrupted_site() {
    for v in ["mcount", "nodynamic"] {
        let cmd = "test=corrupt";
        let b = boot_variant("i686", v, cmd.as_bytes());
        let mut want = boot_lines("i686", cmd, 1);
        // The expected bytes are the `call mcount` the compiler emitted at
        // the site: computed here from the ELF's `mcount` symbol and the
        // site address the kernel printed, not taken from the kernel.
        let line = b
            .lines()
            .into_iter()
            .find(|l| l.starts_with("ftrace: failed to init site"))
            .unwrap_or_else(|| panic!("{v}: no failure line:\n{}", b.text()));
        let site = u32::from_str_radix(
            line.split(" at 0x")
                .nth(1)
                .unwrap()
                .split(':')
                .next()
                .unwrap(),
            16,
        )
        .unwrap();
        let elf = std::fs::read(qemu_tests::kernel("i686", v)).unwrap();
        let obj = object::File::parse(&*elf).unwrap();
        use object::{Object, ObjectSymbol};
        let mcount = obj
            .symbols()
            .find(|s| s.name() == Ok("mcount"))
            .expect("mcount symbol")
            .address() as u32;
        let rel = mcount.wrapping_sub(site + 5).to_le_bytes();
        want.insert(
            4,
            format!(
                "ftrace: failed to init site kernel::demo::demo_fib+0x{{X}} at {site:#x}: \
                 expected e8 {:02x} {:02x} {:02x} {:02x}, found 66 66 66 66 90",
                rel[0], rel[1], rel[2], rel[3]
            ),
        );
        want.extend(["demo: outer=12 fib=55".into(), "rftrace: success".into()]);
        expect(&b, Outcome::Success, &want);
    }
}

/// `test=abi`'s results `(args6, args10, wide)`, computed here from the
/// scenario's arguments (`ARGS[n]`, truncated to 32 bits on i686, and
/// `ARGS[1] + 0x100` for the `set_arg` rounds) by hand: `Σ w_i * a_i` with
/// weights 1, 3, 5, 7, 11, 13 (17, 19, 23, 29) and `a0 * a1 + (a2 << 64) +
/// 3 * a3`.
fn abi_results(arch: &str, set_arg: bool) -> [&'static str; 3] {
    match (arch, set_arg) {
        ("x86_64", false) => [
            "0x33333332700000b7",
            "0x66666662700003b7",
            "0x3579be02430eca8a531111110000000e",
        ],
        ("x86_64", true) => [
            "0x33333332700003b7",
            "0x66666662700006b7",
            "0x3579be02430eca9b642222210000010e",
        ],
        (_, false) => ["0xb700000b7", "0x3b700003b7", "0x30000003020000010000000e"],
        (_, true) => ["0xb700003b7", "0x3b700006b7", "0x30000003020000110000010e"],
    }
}

/// The FtraceRegs contract on x86: every argument where the calling
/// convention puts it (x86_64: 6 in registers, then the stack above the
/// return address; i686: all on the stack, after the hidden result pointer
/// of a `u128` function), `ret_slot == sp`, the return address there,
/// through one callback's own trampoline (plain and full frame), the list
/// trampoline and the regs trampoline; `set_arg` (x86_64) or the stack word
/// (i686, where `set_arg` must refuse) changing argument 1 by exactly the
/// expected amount; and a graph user seeing every return value, both halves.
///
/// The mcount builds call their site after the prologue: `abi_wide`'s
/// prologue loads argument 1 before `call mcount`, so changing its stack
/// word there does not reach the function (`unchanged`, accepted only on
/// those builds). nodynamic has no per-callback trampolines and a full frame
/// on every call: the same lines, more frame words.
#[test]
fn abi_frame_arguments_set_arg_and_graph_return_values() {
    for &(arch, variant) in BUILDS {
        let b = boot_variant(arch, variant, b"test=abi");
        let after_prologue = matches!(variant, "mcount" | "nodynamic");
        let untraced = abi_results(arch, false);
        let mut set = abi_results(arch, true);
        let wide_set = if after_prologue {
            set[2] = untraced[2];
            "unchanged"
        } else {
            "ok"
        };
        let fmt = |r: [&str; 3]| format!("args6={} args10={} wide={}", r[0], r[1], r[2]);
        // Six rounds run the checking callback, 3 calls each: 6, 10 and 4
        // arguments per call (x86_64: 6 + 6 + 4 in registers, 4 on the
        // stack; i686: all 20 on the stack); 5 frame words per call, 6 when
        // the frame is full (3 rounds; all 6 on nodynamic).
        let (reg, stack) = if arch == "x86_64" { (96, 24) } else { (0, 120) };
        let frame = if variant == "nodynamic" { 108 } else { 99 };
        let (set_reg, set_stack) = if arch == "x86_64" { (6, 0) } else { (0, 6) };
        let ok = "args6 ok, args10 ok, wide ok";
        let mut want = boot_lines(arch, "test=abi", 0);
        want.push(format!("abi: untraced: {}", fmt(untraced)));
        for round in ["per-callback", "per-callback regs", "list", "list regs"] {
            want.push(format!("abi: {round}: {ok}"));
        }
        for round in ["per-callback regs", "list regs"] {
            want.push(format!(
                "abi: set_arg {round}: args6 ok, args10 ok, wide {wide_set}"
            ));
        }
        want.push(format!(
            "abi: set_arg: argument 1 += 0x100: {}; {set_reg} in registers, {set_stack} on the stack, \
             set_arg refused 6 stack arguments",
            fmt(set)
        ));
        for round in ["per-callback", "list", "list regs"] {
            want.push(format!("abi: graph {round}: {ok}"));
        }
        want.push("abi: graph: returns seen 9, retvals ok".into());
        want.push(format!(
            "abi: checks: {reg} register arguments, {stack} stack arguments, {frame} frame words, 0 failed"
        ));
        want.push("rftrace: success".into());
        expect(&b, Outcome::Success, &want);
    }
}
