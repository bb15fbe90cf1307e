//! Foundation: every arch boots, echoes its command line byte-exactly,
//! counts its patchable sites, shrugs off bad command lines and turns a
//! panic into a failure with a backtrace.

use qemu_tests::{
    ARCHES, Boot, Outcome, assert_backtrace, boot, boot_lines, boot_variant, expect, line_matches,
    number_after,
};

fn expect_success(b: &Boot) {
    assert_eq!(
        b.outcome,
        Outcome::Success,
        "output:\n{}\nrunner:\n{}",
        b.text(),
        b.stderr
    );
}

fn clean_boot(arch: &str) {
    let b = boot(arch, b"hello=world");
    let mut want = boot_lines(arch, "hello=world", 0);
    want.insert(2, "warning: cmdline: unknown option 'hello' ignored".into());
    want.extend(["demo: outer=12 fib=55".into(), "rftrace: success".into()]);
    expect(&b, Outcome::Success, &want);
    let sites = number_after(&b, "sites: ").unwrap();
    assert!(
        sites >= 5,
        "{arch}: only {sites} sites; the demo alone has five functions"
    );
}

#[test]
fn clean_boot_x86_64() {
    clean_boot("x86_64");
}

#[test]
fn clean_boot_i686() {
    clean_boot("i686");
}

#[test]
fn clean_boot_ppc64() {
    clean_boot("ppc64");
}

#[test]
fn command_line_is_echoed_byte_exactly() {
    let line: &[u8] = b"ftrace_filter=a*,!b  test=  \tx=\"q\" \xc3\xa9=1";
    for arch in ARCHES {
        let b = boot(arch, line);
        let mut want = b"cmdline: ".to_vec();
        want.extend_from_slice(line);
        want.push(b'\n');
        assert!(
            b.stdout.windows(want.len()).any(|w| w == want),
            "{arch}: command line not echoed byte-exactly:\n{}",
            b.text()
        );
    }
}

#[test]
fn malformed_command_lines_warn_and_boot_continues() {
    // 4 KiB exactly is kept whole; 4120 bytes is truncated. (QEMU's PVH
    // loader hands over at most 4127 bytes on x86_64: longer lines arrive
    // empty, so the truncation case stays below that.)
    let four_k = "a".repeat(4096);
    let long = "a".repeat(4120);
    let cases: &[(&[u8], &[&str])] = &[
        (
            b"=x",
            &["warning: cmdline: malformed option '=x': empty key"],
        ),
        (
            b"a==b",
            &["warning: cmdline: malformed option 'a==b': value starts with '='"],
        ),
        (
            b"ftrace",
            &["warning: cmdline: option 'ftrace' needs a value"],
        ),
        (
            b"t\xffx=1",
            &["warning: cmdline: malformed option 't\\xffx=1': non-ASCII byte"],
        ),
        (
            four_k.as_bytes(),
            &[
                "warning: cmdline: unknown option 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...(4096 bytes)' ignored",
            ],
        ),
        (
            long.as_bytes(),
            &[
                "warning: cmdline: command line is 4120 bytes, truncated to 4096",
                "warning: cmdline: unknown option 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...(4096 bytes)' ignored",
            ],
        ),
    ];
    for arch in ARCHES {
        for (line, warnings) in cases {
            let b = boot(arch, line);
            expect_success(&b);
            let lines = b.lines();
            // Warnings come right after the echoed command line.
            let got: Vec<&str> = lines
                .iter()
                .skip(2)
                .take(warnings.len())
                .map(String::as_str)
                .collect();
            assert_eq!(&got, warnings, "{arch}: output was\n{}", b.text());
            assert_eq!(
                lines.iter().filter(|l| l.starts_with("warning:")).count(),
                warnings.len()
            );
            assert!(lines.contains(&"demo: outer=12 fib=55".to_owned()));
        }
    }
}

/// The panic line `test=panic` prints, followed by the backtrace.
const PANIC_LINE: &str =
    "panic: test=panic: deliberate panic in demo_leaf(0) at kernel/src/demo.rs:48";

/// A `test=panic` boot of `arch`/`variant` fails, prints the boot lines,
/// then the panic message and the backtrace ([`assert_backtrace`]).
fn panic_with_backtrace(arch: &str, variant: &str) {
    let b = boot_variant(arch, variant, b"test=panic");
    assert_eq!(
        b.outcome,
        Outcome::Failure,
        "{arch}/{variant}: output:\n{}",
        b.text()
    );
    let lines = b.lines();
    let want = boot_lines(arch, "test=panic", 0);
    let head: Vec<&str> = want.iter().map(String::as_str).collect();
    assert!(
        lines.len() > head.len()
            && lines.iter().zip(&head).all(|(l, w)| line_matches(w, l))
            && lines[head.len()] == PANIC_LINE,
        "{arch}/{variant}: expected the boot lines, then\n{PANIC_LINE}\noutput:\n{}",
        b.text()
    );
    assert!(!lines.contains(&"rftrace: success".to_owned()));
    assert_backtrace(&b, arch, variant);
}

#[test]
fn panic_is_a_failure_with_its_message_and_backtrace() {
    for arch in ARCHES {
        panic_with_backtrace(arch, "fentry");
    }
}

/// The other i686 builds: frame pointers in mcount and nodynamic (their
/// prologue is what `call mcount` follows), none in nofp, which says so.
#[test]
fn panic_backtrace_on_i686_variants() {
    for variant in ["nofp", "mcount", "nodynamic"] {
        panic_with_backtrace("i686", variant);
    }
}
