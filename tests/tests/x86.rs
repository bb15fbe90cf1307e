//! x86-only checks: the int3 patching protocol executed mid-patch
//! (`test=int3`) on x86_64 and on every i686 build variant, and the
//! generic tracer scenarios on the i686 `mcount`, `nodynamic` and `nofp`
//! variants
//! (tests/tests/trace.rs covers the default builds).

use std::sync::Mutex;

use qemu_tests::{Boot, Outcome, line_matches};

/// scripts/build-kernel.sh copies the ELF out of cargo's per-target output
/// after cargo released its lock, so two variants of one arch must not be
/// built at the same time: the tests here boot one at a time.
static BUILDS_LOCK: Mutex<()> = Mutex::new(());

fn boot_variant(arch: &str, variant: &str, cmdline: &[u8]) -> Boot {
    let _g = BUILDS_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    qemu_tests::boot_variant(arch, variant, cmdline)
}

/// Every x86 build: (arch, variant).
const BUILDS: &[(&str, &str)] = &[
    ("x86_64", "fentry"),
    ("i686", "fentry"),
    ("i686", "nofp"),
    ("i686", "mcount"),
    ("i686", "nodynamic"),
];

/// The console lines, without the symbol self-test line (it shows an
/// address, which changes with every build); that line is checked apart.
fn lines(b: &Boot) -> Vec<String> {
    let all = b.lines();
    let sym: Vec<&String> = all.iter().filter(|l| l.starts_with("symbols: ")).collect();
    assert_eq!(sym.len(), 1, "output:\n{}", b.text());
    assert!(
        sym[0].ends_with(" is kernel::demo::demo_leaf+0x0, and back: ok"),
        "output:\n{}",
        b.text()
    );
    all.into_iter()
        .filter(|l| !l.starts_with("symbols: "))
        .collect()
}

fn expect(b: &Boot, want: &[String]) {
    assert_eq!(
        b.outcome,
        Outcome::Success,
        "output:\n{}\nrunner:\n{}",
        b.text(),
        b.stderr
    );
    let got = lines(b);
    let ok = got.len() == want.len() && got.iter().zip(want).all(|(g, w)| line_matches(w, g));
    assert!(
        ok,
        "console output differs.\n--- expected ---\n{}\n--- actual ---\n{}",
        want.join("\n"),
        got.join("\n")
    );
}

fn head(arch: &str, cmdline: &str) -> Vec<String> {
    vec![
        format!("rftrace: booting on {arch}"),
        format!("cmdline: {cmdline}"),
        "sites: {N} patchable, 0 unexpected".into(),
        "ftrace: {N} sites, 0 failed".into(),
    ]
}

#[test]
fn int3_mid_patch_is_emulated_in_both_directions() {
    for &(arch, variant) in BUILDS {
        let b = boot_variant(arch, variant, b"test=int3");
        let mut want = head(arch, "test=int3");
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
        expect(&b, &want);
    }
}

/// The demo's calls in order as (function, parent), short names.
fn demo_calls(notrace_inner: bool) -> Vec<(&'static str, &'static str)> {
    fn fib(n: u64, parent: &'static str, out: &mut Vec<(&'static str, &'static str)>) {
        out.push(("demo_fib", parent));
        if n >= 2 {
            fib(n - 1, "demo_fib", out);
            fib(n - 2, "demo_fib", out);
        }
    }
    let mut v = vec![
        ("demo_run", "kernel::tracing::workload"),
        ("demo_outer", "demo_run"),
    ];
    for _ in 0..3 {
        if !notrace_inner {
            v.push(("demo_inner", "demo_outer"));
        }
        v.push(("demo_leaf", "demo_inner"));
    }
    fib(10, "demo_run", &mut v);
    v
}

fn full(name: &str) -> String {
    if name.contains("::") {
        name.to_string()
    } else {
        format!("kernel::demo::{name}")
    }
}

fn traced(arch: &str, cmdline: &str, calls: &[(&str, &str)]) -> Vec<String> {
    let mut want = head(arch, cmdline);
    want.push("demo: outer=12 fib=55".into());
    want.extend([
        "# tracer: function".to_string(),
        "#".into(),
        format!(
            "# entries-in-buffer/entries-written: {0}/{0}   #P:1",
            calls.len()
        ),
        "#".into(),
        "#                                _-----=> irqs-off/BH-disabled".into(),
        "#                               / _----=> need-resched".into(),
        "#                              | / _---=> hardirq/softirq".into(),
        "#                              || / _--=> preempt-depth".into(),
        "#                              ||| / _-=> migrate-disable".into(),
        "#                              |||| /     delay".into(),
        "#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION".into(),
        "#              | |         |   |||||     |         |".into(),
    ]);
    for (f, p) in calls {
        want.push(format!(
            "          <idle>-0       [000] .....     {{N}}.{{N}}: {} <-{}",
            full(f),
            full(p)
        ));
    }
    want.push("ftrace: 0 recursions refused, 0 events lost".into());
    want.push("rftrace: success".into());
    want
}

const I686_MCOUNT: &[&str] = &["mcount", "nodynamic"];

#[test]
fn mcount_variants_trace_exactly_the_demo_calls() {
    for &v in I686_MCOUNT {
        let cmd = "ftrace=function ftrace_filter=demo_*";
        expect(
            &boot_variant("i686", v, cmd.as_bytes()),
            &traced("i686", cmd, &demo_calls(false)),
        );
        let cmd = "ftrace=function ftrace_filter=demo_* ftrace_notrace=demo_inner";
        expect(
            &boot_variant("i686", v, cmd.as_bytes()),
            &traced("i686", cmd, &demo_calls(true)),
        );
    }
}

#[test]
fn mcount_variants_toggle_redirect_and_corrupt() {
    for &v in I686_MCOUNT {
        for cmd in ["test=toggle", "test=toggle ftrace_filter=demo_*"] {
            let b = boot_variant("i686", v, cmd.as_bytes());
            let mut want = head("i686", cmd);
            for round in 1..=2 {
                want.push(format!("toggle {round}: outer=12 fib=55, {{N}} events, 0 sites differ from nop after disable"));
            }
            want.push("rftrace: success".into());
            expect(&b, &want);
        }
        let b = boot_variant("i686", v, b"test=redirect");
        let mut want = head("i686", "test=redirect");
        want.extend(
            [
                "redirect on: outer=15 fib=55",
                "redirect off: outer=12 fib=55, 0 sites differ from nop",
                "rftrace: success",
            ]
            .map(String::from),
        );
        expect(&b, &want);
        let b = boot_variant("i686", v, b"test=corrupt");
        let want: Vec<String> = [
            "rftrace: booting on i686",
            "cmdline: test=corrupt",
            "sites: {N} patchable, 0 unexpected",
            "ftrace: failed to init site kernel::demo::demo_fib+0x{N} at 0x{N}: expected e8 {N} {N} ff ff, found 66 66 66 66 90",
            "ftrace: {N} sites, 1 failed",
            "demo: outer=12 fib=55",
            "rftrace: success",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(b.outcome, Outcome::Success, "output:\n{}", b.text());
        let got = lines(&b);
        assert_eq!(got.len(), want.len(), "output:\n{}", b.text());
        for (g, w) in got.iter().zip(&want) {
            if w.contains("failed to init") {
                // Hex bytes: check the shape rather than with {N}.
                assert!(
                    g.starts_with("ftrace: failed to init site kernel::demo::demo_fib+0x"),
                    "{g}"
                );
                assert!(
                    g.ends_with(", found 66 66 66 66 90") && g.contains(": expected e8 "),
                    "{g}"
                );
            } else {
                assert!(
                    line_matches(w, g),
                    "expected {w}\n  actual {g}\noutput:\n{}",
                    b.text()
                );
            }
        }
    }
}

/// fentry sites need no frame: the build without frame pointers traces,
/// toggles and redirects exactly like the default one.
#[test]
fn fentry_without_frame_pointers() {
    let cmd = "ftrace=function ftrace_filter=demo_* ftrace_notrace=demo_inner";
    expect(
        &boot_variant("i686", "nofp", cmd.as_bytes()),
        &traced("i686", cmd, &demo_calls(true)),
    );
    let b = boot_variant("i686", "nofp", b"test=toggle ftrace_filter=demo_*");
    let mut want = head("i686", "test=toggle ftrace_filter=demo_*");
    for round in 1..=2 {
        want.push(format!(
            "toggle {round}: outer=12 fib=55, 185 events, 0 sites differ from nop after disable"
        ));
    }
    want.push("rftrace: success".into());
    expect(&b, &want);
    let b = boot_variant("i686", "nofp", b"test=redirect");
    let mut want = head("i686", "test=redirect");
    want.extend(
        [
            "redirect on: outer=15 fib=55",
            "redirect off: outer=12 fib=55, 0 sites differ from nop",
            "rftrace: success",
        ]
        .map(String::from),
    );
    expect(&b, &want);
}
