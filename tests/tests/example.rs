//! The second kernel, examples/hello-kernel: booted from a BIOS disk image
//! made by the `bootloader` crate, built only the way docs/embedding.md
//! says (per-package rustflags, `ftrace-tools` installed with `cargo
//! install`, the symbol table reserved with `ftrace::reserve_symtab!`),
//! tracing its own functions in Linux's format. Exact output.

use qemu_tests::{Boot, Outcome, boot_example, expect, function_header};

const DEMO: &str = "hello_kernel::demo::";

fn head(cmdline: &str) -> Vec<String> {
    vec![
        "hello-kernel: booting".into(),
        format!("cmdline: {cmdline}"),
        "sites: {N} patchable".into(),
        "ftrace: {N} sites, 0 failed".into(),
    ]
}

/// One function-tracer line, `h` in the context column for an interrupt.
fn line(function: &str, parent: &str, irq: bool) -> String {
    let flags = if irq { "d.h.." } else { "d...." };
    format!("          <idle>-0       [000] {flags}     {{N}}.{{N}}: {function} <-{parent}")
}

/// The workload's calls under the function tracer, with `workload` itself
/// when `all` (no filter).
fn function_lines(all: bool) -> Vec<String> {
    let mut v = Vec::new();
    if all {
        v.push(line("hello_kernel::workload", "hello_kernel::run", false));
    }
    v.push(line(
        &format!("{DEMO}outer"),
        "hello_kernel::workload",
        false,
    ));
    for _ in 0..3 {
        v.push(line(
            &format!("{DEMO}inner"),
            &format!("{DEMO}outer"),
            false,
        ));
        v.push(line(&format!("{DEMO}leaf"), &format!("{DEMO}inner"), false));
    }
    v.push(line(
        &format!("{DEMO}in_irq"),
        "hello_kernel::demo_interrupt",
        true,
    ));
    v
}

fn function_run(cmdline: &str, args: &[&str], all: bool) {
    let b = boot_example(cmdline, args);
    let calls = function_lines(all);
    let mut want = head(cmdline);
    want.push("demo: outer(1)=15".into());
    want.extend(function_header(calls.len()));
    want.extend(calls);
    want.push("hello-kernel: success".into());
    expect(&b, Outcome::Success, &want);
}

#[test]
fn function_tracer_with_a_filter() {
    function_run(
        "ftrace=function ftrace_filter=hello_kernel::demo::*",
        &[],
        false,
    );
}

/// Debug build, every function: generic code of core, alloc, ftrace and
/// the other dependencies compiled into the kernel's crate has sites too
/// (far more than the kernel's own) but no record, and the `#BP` path and
/// the platform never run traced code.
#[test]
fn debug_build_traces_everything_of_its_own() {
    function_run("ftrace=function", &["--debug"], true);
}

/// The function column of a function_graph line (after the duration's
/// `|`), checking the CPU column before it.
fn graph_column(l: &str) -> &str {
    assert!(l.starts_with(" 0) "), "not a graph line: {l}");
    l.split_once('|').map_or(l, |(_, f)| f)
}

#[test]
fn function_graph_tracer() {
    let cmdline = "ftrace=function_graph";
    let b: Boot = boot_example(cmdline, &[]);
    assert_eq!(b.outcome, Outcome::Success, "{}\n{}", b.text(), b.stderr);
    let lines = b.lines();
    let mut want = head(cmdline);
    want.push("demo: outer(1)=15".into());
    want.extend(
        [
            "# tracer: function_graph",
            "#",
            "# CPU  DURATION                  FUNCTION CALLS",
            "# |     |   |                     |   |   |   |",
        ]
        .map(String::from),
    );
    let n = want.len();
    assert!(lines.len() > n, "{}", b.text());
    let refs: Vec<String> = lines[..n].to_vec();
    let b_head = Boot {
        stdout: (refs.join("\n") + "\n").into_bytes(),
        stderr: String::new(),
        outcome: Outcome::Success,
    };
    expect(&b_head, Outcome::Success, &want);
    let mut tree = vec![
        "  hello_kernel::workload() {".to_owned(),
        format!("    {DEMO}outer() {{"),
    ];
    for _ in 0..3 {
        tree.push(format!("      {DEMO}inner() {{"));
        tree.push(format!("        {DEMO}leaf();"));
        tree.push("      }".into());
    }
    tree.push("    }".into());
    tree.push(format!("    {DEMO}in_irq();"));
    tree.push("  }".into());
    tree.push("hello-kernel: success".into());
    let got: Vec<&str> = lines[n..]
        .iter()
        .map(|l| {
            if l.starts_with(" 0)") {
                graph_column(l)
            } else {
                l.as_str()
            }
        })
        .collect();
    assert_eq!(got, tree, "{}", b.text());
}

/// Step 5 left out: the kernel says which step is missing.
#[test]
fn missing_symbol_table_names_the_step() {
    let cmdline = "ftrace=function";
    let b = boot_example(cmdline, &["--skip-embed-symtab"]);
    let want = vec![
        "hello-kernel: booting".into(),
        format!("cmdline: {cmdline}"),
        "symbol table not embedded: run `ftrace-tools embed-symtab <kernel ELF>` after linking \
         (docs/embedding.md)"
            .into(),
        "hello-kernel: FAILURE".into(),
    ];
    expect(&b, Outcome::Failure, &want);
}

/// Boots with `test=int3`: the two calls made while the `int3` is in
/// place are traced, through the crate's call stub.
fn int3_run(cmdline: &str) {
    let b = boot_example(cmdline, &[]);
    let probe = "hello_kernel::int3_in_flight::{closure#2}";
    let mut calls = vec![line(&format!("{DEMO}leaf"), probe, false); 2];
    calls.extend(vec![
        line(
            &format!("{DEMO}leaf"),
            &format!("{DEMO}inner"),
            false
        );
        3
    ]);
    let mut want = head(cmdline);
    want.push("int3: 4 traps emulated, leaf(1) + leaf(2) twice = 12".into());
    want.push("demo: outer(1)=15".into());
    want.extend(function_header(calls.len()));
    want.extend(calls);
    want.push("hello-kernel: success".into());
    expect(&b, Outcome::Success, &want);
}

/// `demo::leaf` runs while its site holds the `int3` of a patch in flight:
/// the `x86-interrupt` `#BP` handler (on the interrupted stack, no IST)
/// emulates the nop, then the call, whose return address the crate's stub
/// pushes after the handler returned.
#[test]
fn int3_emulation_from_an_x86_interrupt_handler() {
    int3_run("ftrace=function ftrace_filter=hello_kernel::demo::leaf test=int3");
}

/// The same with the `#BP` handler on its own stack (IST 1).
#[test]
fn int3_emulation_from_an_ist_handler() {
    int3_run("ftrace=function ftrace_filter=hello_kernel::demo::leaf test=int3 bp_stack=ist");
}
