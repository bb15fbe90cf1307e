//! Integration-test harness: builds the test kernel for an arch (once per
//! test process), boots it through `run-qemu.sh` and returns what it printed
//! and how QEMU ended.
//!
//! Assertions compare whole outputs line by line ([`assert_lines`]); the only
//! wildcard is `{N}`, a decimal number, for values that change whenever the
//! kernel's code changes (site counts, addresses are never compared loosely).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// Seconds a single boot may take before the runner kills it.
pub const BOOT_TIMEOUT: u32 = 60;

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// How a boot ended, as decoded by `run-qemu.sh`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Exit 0: success marker and success status.
    Success,
    /// Exit 1: the kernel reported failure, panicked or QEMU died.
    Failure,
    /// Exit 3: timeout.
    Timeout,
    /// Anything else (usage or build problems).
    Other(i32),
}

/// What one boot printed.
#[derive(Debug)]
pub struct Boot {
    /// The console output (stdout of QEMU), raw bytes.
    pub stdout: Vec<u8>,
    /// The runner's diagnostics.
    pub stderr: String,
    /// How it ended.
    pub outcome: Outcome,
}

impl Boot {
    /// The console output as text (lossy for non-UTF-8 bytes).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// The console output's lines.
    pub fn lines(&self) -> Vec<String> {
        self.text().lines().map(str::to_owned).collect()
    }
}

fn check_prerequisites() {
    static CHECKED: OnceLock<Result<(), String>> = OnceLock::new();
    let r = CHECKED.get_or_init(|| {
        let out = Command::new(root().join("scripts/setup.sh"))
            .arg("--check")
            .output()
            .map_err(|e| format!("cannot run scripts/setup.sh: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    });
    if let Err(msg) = r {
        panic!(
            "QEMU tests cannot run: prerequisites are missing.\n{msg}\n\
             Run `scripts/setup.sh` (as root it installs them), or the commands above."
        );
    }
}

/// Builds (once per process) the kernel for `arch` and `variant`, returning
/// the ELF's path. Panics with the build's output when it fails.
pub fn kernel(arch: &str, variant: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<(String, String), PathBuf>>> = OnceLock::new();
    check_prerequisites();
    let mut built = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(p) = built.get(&(arch.to_owned(), variant.to_owned())) {
        return p.clone();
    }
    let out = Command::new(root().join("scripts/build-kernel.sh"))
        .args([arch, "--variant", variant])
        .output()
        .expect("cannot run scripts/build-kernel.sh");
    assert!(
        out.status.success(),
        "building the {arch}/{variant} kernel failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    built.insert((arch.to_owned(), variant.to_owned()), path.clone());
    path
}

/// Boots the default variant of `arch` with `cmdline`.
pub fn boot(arch: &str, cmdline: &[u8]) -> Boot {
    boot_variant(arch, "fentry", cmdline)
}

/// Boots a build variant of `arch` with `cmdline` (raw bytes, passed to QEMU
/// unchanged).
pub fn boot_variant(arch: &str, variant: &str, cmdline: &[u8]) -> Boot {
    boot_with(arch, variant, cmdline, &[])
}

/// Boots a build variant of `arch` with `cmdline` and extra `run-qemu.sh`
/// options (e.g. `--icount`).
pub fn boot_with(arch: &str, variant: &str, cmdline: &[u8], runner_args: &[&str]) -> Boot {
    run(arch, variant, cmdline, runner_args, None)
}

/// Boots the default variant of `arch` with `cmdline`, `input` piped into
/// `run-qemu.sh` (the guest's console input: an `ftrace_shell` script).
pub fn boot_input(arch: &str, cmdline: &[u8], input: &[u8]) -> Boot {
    run(arch, "fentry", cmdline, &[], Some(input))
}

fn run(
    arch: &str,
    variant: &str,
    cmdline: &[u8],
    runner_args: &[&str],
    input: Option<&[u8]>,
) -> Boot {
    use std::io::Write;
    use std::os::unix::ffi::OsStrExt;
    use std::process::Stdio;
    let elf = kernel(arch, variant);
    let mut cmd = Command::new(root().join("run-qemu.sh"));
    cmd.arg(arch)
        .arg(std::ffi::OsStr::from_bytes(cmdline))
        .arg("--kernel")
        .arg(&elf)
        .args(["--timeout", &BOOT_TIMEOUT.to_string()])
        .args(runner_args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = match input {
        None => cmd.output().expect("cannot run run-qemu.sh"),
        Some(bytes) => {
            let mut child = cmd
                .stdin(Stdio::piped())
                .spawn()
                .expect("cannot run run-qemu.sh");
            let mut stdin = child.stdin.take().expect("stdin is piped");
            let bytes = bytes.to_vec();
            // Written from a thread: the guest reads while it prints.
            let writer = std::thread::spawn(move || {
                let _ = stdin.write_all(&bytes);
            });
            let out = child.wait_with_output().expect("run-qemu.sh did not end");
            let _ = writer.join();
            out
        }
    };
    let outcome = match out.status.code() {
        Some(0) => Outcome::Success,
        Some(1) => Outcome::Failure,
        Some(3) => Outcome::Timeout,
        Some(c) => Outcome::Other(c),
        None => Outcome::Other(-1),
    };
    Boot {
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        outcome,
    }
}

/// Boots the example kernel (examples/hello-kernel) through
/// `scripts/run-example.sh`, which builds it the way docs/embedding.md says,
/// with `cmdline` and extra options (`--debug`, `--skip-embed-symtab`).
/// One boot at a time: the builds share one target directory.
pub fn boot_example(cmdline: &str, args: &[&str]) -> Boot {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    check_prerequisites();
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let out = Command::new(root().join("scripts/run-example.sh"))
        .arg(cmdline)
        .args(["--timeout", &BOOT_TIMEOUT.to_string()])
        .args(args)
        .output()
        .expect("cannot run scripts/run-example.sh");
    let outcome = match out.status.code() {
        Some(0) => Outcome::Success,
        Some(1) => Outcome::Failure,
        Some(3) => Outcome::Timeout,
        Some(c) => Outcome::Other(c),
        None => Outcome::Other(-1),
    };
    Boot {
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        outcome,
    }
}

/// Does `line` match `pattern`, where `{N}` stands for a decimal number and
/// `{X}` for a lower-case hexadecimal one (addresses)?
pub fn line_matches(pattern: &str, line: &str) -> bool {
    let mut rest = line;
    let mut pat = pattern;
    loop {
        let next = [("{N}", 10u32), ("{X}", 16u32)]
            .iter()
            .filter_map(|&(w, radix)| pat.find(w).map(|i| (i, radix)))
            .min_by_key(|&(i, _)| i);
        let Some((i, radix)) = next else {
            return rest == pat;
        };
        let Some(r) = rest.strip_prefix(&pat[..i]) else {
            return false;
        };
        let digits = r
            .chars()
            .take_while(|c| c.is_digit(radix) && (radix == 10 || !c.is_ascii_uppercase()))
            .count();
        if digits == 0 {
            return false;
        }
        rest = &r[digits..];
        pat = &pat[i + 3..];
    }
}

/// Asserts that the output's lines are exactly `expected` (with `{N}`
/// wildcards), printing both in full when they differ.
pub fn assert_lines(boot: &Boot, expected: &[&str]) {
    let lines = boot.lines();
    let ok = lines.len() == expected.len()
        && lines.iter().zip(expected).all(|(l, e)| line_matches(e, l));
    assert!(
        ok,
        "console output differs.\n--- expected ---\n{}\n--- actual ---\n{}\n--- runner ---\n{}",
        expected.join("\n"),
        lines.join("\n"),
        boot.stderr
    );
    assert_timestamps_monotonic(&lines);
}

/// Function-tracer lines (`... [001] ..... 12.345678: f <-g`): the CPU and
/// the timestamp in microseconds.
pub fn event_cpu_and_time(line: &str) -> Option<(u32, u64)> {
    let rest = line.split_once(" [")?.1;
    let (cpu, rest) = rest.split_once("] ")?;
    let cpu: u32 = cpu.parse().ok()?;
    let ts = rest.get(6..)?.trim_start().split(':').next()?;
    let (s, us) = ts.split_once('.')?;
    Some((
        cpu,
        s.parse::<u64>().ok()? * 1_000_000 + us.parse::<u64>().ok()?,
    ))
}

/// Asserts that, per CPU, function-tracer timestamps never go backwards.
pub fn assert_timestamps_monotonic(lines: &[String]) {
    let mut last: HashMap<u32, u64> = HashMap::new();
    for l in lines {
        if let Some((cpu, t)) = event_cpu_and_time(l) {
            let prev = last.insert(cpu, t).unwrap_or(0);
            assert!(t >= prev, "timestamp goes backwards on CPU {cpu}: {l}");
        }
    }
}

/// What a stretch of output must be, for [`assert_blocks`].
#[derive(Debug, Clone)]
pub enum Block {
    /// One line ([`line_matches`] wildcards).
    Line(String),
    /// These lines in any order (listings in address order, which the
    /// linker decides).
    AnyOrder(Vec<String>),
    /// A function_graph call tree: `(depth, text)` per line, checked with
    /// [`parse_graph_line`] on CPU 0, durations nesting.
    Graph(Vec<(usize, String)>),
}

/// Lines as [`Block::Line`]s.
pub fn lines_of<S: AsRef<str>>(lines: &[S]) -> Vec<Block> {
    lines
        .iter()
        .map(|l| Block::Line(l.as_ref().to_owned()))
        .collect()
}

/// Asserts how the boot ended and that its whole output is `want`, block
/// by block, printing both in full when not.
pub fn assert_blocks(boot: &Boot, outcome: Outcome, want: &[Block]) {
    let lines = boot.lines();
    let mut at = 0;
    let mut problem = None;
    for (i, b) in want.iter().enumerate() {
        let n = match b {
            Block::Line(_) => 1,
            Block::AnyOrder(v) => v.len(),
            Block::Graph(g) => g.len(),
        };
        let Some(got) = lines.get(at..at + n) else {
            problem = Some(format!("block {i}: output ends at line {}", lines.len()));
            break;
        };
        let ok = match b {
            Block::Line(p) => line_matches(p, &got[0]),
            Block::AnyOrder(v) => {
                let mut left: Vec<&String> = v.iter().collect();
                got.iter().all(|l| {
                    let k = left.iter().position(|p| line_matches(p, l));
                    k.map(|k| left.remove(k)).is_some()
                })
            }
            Block::Graph(g) => {
                let parsed: Vec<Option<GraphLine>> =
                    got.iter().map(|l| parse_graph_line(l)).collect();
                parsed.iter().zip(g).all(|(p, (d, t))| {
                    p.as_ref()
                        .is_some_and(|p| p.cpu == 0 && p.depth == *d && line_matches(t, &p.body))
                }) && check_nested_durations(&parsed.into_iter().flatten().collect::<Vec<_>>())
                    .is_ok()
            }
        };
        if !ok {
            problem = Some(format!("block {i} ({b:?}) differs at line {}", at + 1));
            break;
        }
        at += n;
    }
    if problem.is_none() && at != lines.len() {
        problem = Some(format!("{} lines more than expected", lines.len() - at));
    }
    if problem.is_none() && boot.outcome != outcome {
        problem = Some(format!("ended {:?}, not {outcome:?}", boot.outcome));
    }
    if let Some(p) = problem {
        let shown: Vec<String> = want
            .iter()
            .flat_map(|b| match b {
                Block::Line(l) => vec![l.clone()],
                Block::AnyOrder(v) => v.iter().map(|l| format!("{l}   [any order]")).collect(),
                Block::Graph(g) => g
                    .iter()
                    .map(|(d, t)| format!(" 0) [duration]|  {}{t}", "  ".repeat(*d)))
                    .collect(),
            })
            .collect();
        panic!(
            "{p}\n--- expected ---\n{}\n--- actual ---\n{}\n--- runner ---\n{}",
            shown.join("\n"),
            lines.join("\n"),
            boot.stderr
        );
    }
}

/// Asserts how the boot ended and that its lines are exactly `want` (with
/// `{N}`/`{X}` wildcards), printing both outputs in full when not.
pub fn expect(boot: &Boot, outcome: Outcome, want: &[String]) {
    let refs: Vec<&str> = want.iter().map(String::as_str).collect();
    assert_lines(boot, &refs);
    assert_eq!(
        boot.outcome,
        outcome,
        "output:\n{}\nrunner:\n{}",
        boot.text(),
        boot.stderr
    );
}

/// What `test=direct`'s self-guarded round prints: with a pool of
/// per-callback trampolines (`pool`, every build but i686 nodynamic),
/// S is entered for the three calls and the three nested ones (its own
/// trampoline calls it without the guard), takes the guard for the three
/// calls only, and the engine refuses and counts the three nested ones;
/// without a pool the list dispatcher holds the guard for S, and
/// `mcount`'s busy flag refuses the nested calls before they reach it:
/// three entries, three guarded, none counted.
pub fn direct_self_guarded_line(pool: bool) -> String {
    let (own, entered, refused) = if pool {
        ("ops trampoline", 6, 3)
    } else {
        ("list", 3, 0)
    };
    format!(
        "direct: S (RECURSION) on demo_leaf -> {own}, calling demo_leaf under its own guard: \
         entered {entered} times, guarded 3 times, 0 times inside itself, {refused} recursions \
         refused"
    )
}

/// Every arch the kernel boots on.
pub const ARCHES: &[&str] = &["x86_64", "i686", "ppc64"];

/// The lines every boot starts with: banner, echoed command line, compiler
/// site count, the tracer's records (`failed` of them failed; their own
/// lines are the caller's to insert) and the symbol self-test.
pub fn boot_lines(arch: &str, cmdline: &str, failed: usize) -> Vec<String> {
    boot_lines_cpus(arch, cmdline, failed, 1)
}

/// [`boot_lines`] of a boot with `cpus` CPUs online (`run-qemu.sh --smp`).
pub fn boot_lines_cpus(arch: &str, cmdline: &str, failed: usize, cpus: usize) -> Vec<String> {
    vec![
        format!("rftrace: booting on {arch}"),
        format!("cmdline: {cmdline}"),
        "sites: {N} patchable, 0 unexpected".into(),
        format!("cpus: {cpus} online"),
        format!("ftrace: {{N}} sites, {failed} failed"),
        "symbols: 0x{X} is kernel::demo::demo_leaf+0x0, and back: ok".into(),
    ]
}

/// Linux's function-tracer header for `n` events on one CPU.
pub fn function_header(n: usize) -> Vec<String> {
    function_header_cpus(n, 1)
}

/// Linux's function-tracer header for `n` events with `cpus` CPUs (`#P:`).
pub fn function_header_cpus(n: usize, cpus: usize) -> Vec<String> {
    let mut h = vec!["# tracer: function".to_owned(), "#".to_owned()];
    h.push(format!(
        "# entries-in-buffer/entries-written: {n}/{n}   #P:{cpus}"
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

/// One function-tracer line for `function` called from `parent` (full
/// paths), timestamp as wildcards. The boot CPU runs the workload with interrupts disabled, hence Linux's
/// `d` in the irqs-off column.
pub fn event_line(function: &str, parent: &str) -> String {
    event_line_flags("d....", function, parent)
}

/// One function-tracer line on CPU 0 with the given five flag columns
/// (`.....` where the CPU runs with interrupts enabled, as the ppc64 boot
/// CPU does once it has brought up the others).
pub fn event_line_flags(flags: &str, function: &str, parent: &str) -> String {
    format!("          <idle>-0       [000] {flags}     {{N}}.{{N}}: {function} <-{parent}")
}

/// The function-tracer lines `test=region` produces, each built by `event`
/// from `(function, parent)`: the caller alone before the region is added,
/// then the caller and the region's functions, then the caller alone after
/// it is removed.
pub fn region_events(event: impl Fn(&str, &str) -> String) -> Vec<String> {
    let workload = || {
        event(
            "kernel::tracing::region_workload",
            "kernel::tracing::run_region",
        )
    };
    let mut trace = vec![
        workload(),
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
    trace.push(workload());
    trace
}

/// The demo workload's calls in order, as `(function, parent)` full paths.
pub fn demo_calls() -> Vec<(&'static str, &'static str)> {
    fn fib(n: u64, parent: &'static str, out: &mut Vec<(&'static str, &'static str)>) {
        out.push(("kernel::demo::demo_fib", parent));
        if n >= 2 {
            fib(n - 1, "kernel::demo::demo_fib", out);
            fib(n - 2, "kernel::demo::demo_fib", out);
        }
    }
    let mut v = vec![
        ("kernel::demo::demo_run", "kernel::tracing::workload"),
        ("kernel::demo::demo_outer", "kernel::demo::demo_run"),
    ];
    for _ in 0..3 {
        v.push(("kernel::demo::demo_inner", "kernel::demo::demo_outer"));
        v.push(("kernel::demo::demo_leaf", "kernel::demo::demo_inner"));
    }
    fib(10, "kernel::demo::demo_run", &mut v);
    v
}

/// The demo's calls without those of the functions named in `notrace`
/// (short names, e.g. `demo_inner`).
pub fn demo_calls_without(notrace: &[&str]) -> Vec<(&'static str, &'static str)> {
    demo_calls()
        .into_iter()
        .filter(|(f, _)| !notrace.iter().any(|n| f.rsplit("::").next() == Some(*n)))
        .collect()
}

/// Everything a `ftrace=function` boot prints when the trace holds exactly
/// `calls`.
pub fn traced_output(arch: &str, cmdline: &str, calls: &[(&str, &str)]) -> Vec<String> {
    let mut want = boot_lines(arch, cmdline, 0);
    want.push("demo: outer=12 fib=55".into());
    want.extend(function_header(calls.len()));
    want.extend(calls.iter().map(|(f, p)| event_line(f, p)));
    want.push("ftrace: 0 recursions refused, 0 events lost".into());
    want.push("rftrace: success".into());
    want
}

/// The frames every `test=panic` backtrace holds, innermost first, in this
/// order and next to each other (what comes before them, the panic
/// machinery, and after them differs per arch with inlining).
pub const PANIC_BACKTRACE_FRAMES: &[&str] = &[
    "kernel::demo::demo_leaf",
    "kernel::demo::demo_inner",
    "kernel::demo::demo_outer",
    "kernel::demo::demo_run",
    "kernel::tracing::workload",
];

/// Frames a backtrace prints at most (kernel/src/backtrace.rs).
pub const BACKTRACE_MAX_FRAMES: usize = 32;

/// Asserts that a `test=panic` boot of `arch`/`variant` ends with the panic
/// line and the kernel's backtrace: `backtrace:`, then frames
/// `  #<i> <name>+0x<off>` or `  #<i> 0x<addr>` numbered from 0 (at most
/// [`BACKTRACE_MAX_FRAMES`]) among which [`PANIC_BACKTRACE_FRAMES`] appear
/// contiguously, and that no line anywhere names `return_to_handler` (a
/// hooked return the unwinder failed to map back). The i686 `nofp` variant
/// prints `backtrace: unavailable (built without frame pointers)` instead.
pub fn assert_backtrace(boot: &Boot, arch: &str, variant: &str) {
    let lines = boot.lines();
    let ctx = || {
        format!(
            "{arch}/{variant}: output:\n{}\nrunner:\n{}",
            boot.text(),
            boot.stderr
        )
    };
    let Some(p) = lines.iter().rposition(|l| l.starts_with("panic: ")) else {
        panic!("no panic line; {}", ctx());
    };
    let rest: Vec<&str> = lines[p + 1..].iter().map(String::as_str).collect();
    assert!(
        !lines.iter().any(|l| l.contains("return_to_handler")),
        "a return address was left as return_to_handler; {}",
        ctx()
    );
    if variant == "nofp" {
        assert_eq!(
            rest,
            ["backtrace: unavailable (built without frame pointers)"],
            "{}",
            ctx()
        );
        return;
    }
    assert_eq!(rest.first(), Some(&"backtrace:"), "{}", ctx());
    let mut frames = &rest[1..];
    // The count of hooked returns mapped back, when there were any.
    if frames.last().is_some_and(|l| l.starts_with("backtrace: ")) {
        frames = &frames[..frames.len() - 1];
    }
    assert!(
        (1..=BACKTRACE_MAX_FRAMES).contains(&frames.len()),
        "{} frames; {}",
        frames.len(),
        ctx()
    );
    // What each frame shows after its `  #<i> `.
    let syms: Vec<&str> = frames
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let sym = f.strip_prefix(&format!("  #{i} ")).unwrap_or("");
            let named = sym.rsplit_once("+0x").is_some_and(|(name, off)| {
                !name.is_empty() && !name.contains(' ') && line_matches("{X}", off)
            });
            assert!(
                named || line_matches("0x{X}", sym),
                "frame {i} is malformed: {f:?}; {}",
                ctx()
            );
            sym
        })
        .collect();
    let want: Vec<String> = PANIC_BACKTRACE_FRAMES
        .iter()
        .map(|n| format!("{n}+0x{{X}}"))
        .collect();
    let found = syms
        .windows(want.len())
        .any(|w| w.iter().zip(&want).all(|(sym, pat)| line_matches(pat, sym)));
    assert!(
        found,
        "the frames do not hold {} contiguously; {}",
        PANIC_BACKTRACE_FRAMES.join(", "),
        ctx()
    );
}

/// Extracts the number in a line `prefix{N}...`.
pub fn number_after(boot: &Boot, prefix: &str) -> Option<u64> {
    boot.lines().iter().find_map(|l| {
        let rest = l.strip_prefix(prefix)?;
        let d: String = rest.chars().take_while(char::is_ascii_digit).collect();
        d.parse().ok()
    })
}

/// Every build variant of every arch: (arch, variant).
pub const BUILDS: &[(&str, &str)] = &[
    ("x86_64", "fentry"),
    ("i686", "fentry"),
    ("i686", "nofp"),
    ("i686", "mcount"),
    ("i686", "nodynamic"),
    ("ppc64", "fentry"),
];

/// Linux's function_graph header for the default options.
pub fn graph_header() -> Vec<String> {
    [
        "# tracer: function_graph",
        "#",
        "# CPU  DURATION                  FUNCTION CALLS",
        "# |     |   |                     |   |   |   |",
    ]
    .map(str::to_owned)
    .to_vec()
}

/// The duration column as Linux's `print_graph_duration` prints it, written
/// here from Linux's rules, apart from the crate's formatter: overhead mark
/// (strictly above 10 us `+`, 100 us `!`, 1 ms `#`, 10 ms `*`, 100 ms `@`,
/// 1 s `$`), a space, microseconds with three decimals while the number has
/// fewer than 7 digits (truncated to 7 digits in all), ` us `, padded to 8
/// characters after ` us `.
pub fn linux_duration(ns: u64) -> String {
    let mark = [
        (1_000_000_000u64, '$'),
        (100_000_000, '@'),
        (10_000_000, '*'),
        (1_000_000, '#'),
        (100_000, '!'),
        (10_000, '+'),
    ]
    .iter()
    .find(|(v, _)| ns > *v)
    .map_or(' ', |&(_, c)| c);
    let us = (ns / 1000).to_string();
    let mut num = us.clone();
    if us.len() < 7 {
        let frac = format!("{:03}", ns % 1000);
        let keep = (8 - us.len()).min(5) - 1;
        num.push('.');
        num.push_str(&frac[..keep.min(3)]);
    }
    let pad = " ".repeat(8usize.saturating_sub(num.len()));
    format!("{mark} {num} us {pad}")
}

/// One line of a function_graph trace with the default columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphLine {
    /// The CPU column.
    pub cpu: u32,
    /// The duration, for leaf and closing lines.
    pub duration_ns: Option<u64>,
    /// Nesting depth (indentation / 2).
    pub depth: usize,
    /// The function column without its indentation.
    pub body: String,
}

/// Parses ` 0) ! 393.426 us  |      f();`, checking every column against
/// Linux's layout (the duration re-printed by [`linux_duration`] must give
/// back the same characters). `None` for anything else.
pub fn parse_graph_line(line: &str) -> Option<GraphLine> {
    let rest = line.strip_prefix(' ')?;
    let (cpu, rest) = rest.split_once(") ")?;
    let cpu: u32 = cpu.parse().ok()?;
    let (field, rest) = (rest.get(..14)?, rest.get(14..)?);
    let body = rest.strip_prefix("|  ")?;
    let duration_ns = if field.trim().is_empty() {
        None
    } else {
        let num = field.get(2..)?.split(" us").next()?.trim();
        let (us, frac) = num.split_once('.').unwrap_or((num, ""));
        let mut ns: u64 = us.parse::<u64>().ok()? * 1000;
        if !frac.is_empty() {
            let scale = [100, 10, 1][..frac.len()].last().copied()?;
            ns += frac.parse::<u64>().ok()? * scale;
        }
        // Only durations printed with all three decimals round-trip.
        if frac.len() == 3 && linux_duration(ns) != field {
            return None;
        }
        Some(ns)
    };
    let trimmed = body.trim_start_matches(' ');
    let indent = body.len() - trimmed.len();
    if indent % 2 != 0 {
        return None;
    }
    Some(GraphLine {
        cpu,
        duration_ns,
        depth: indent / 2,
        body: trimmed.to_owned(),
    })
}

/// The graph lines of an output (everything parse_graph_line accepts).
pub fn graph_lines(boot: &Boot) -> Vec<GraphLine> {
    boot.lines()
        .iter()
        .filter_map(|l| parse_graph_line(l))
        .collect()
}

/// Checks that every closing or leaf line's duration is at least the sum of
/// its children's (durations are non-negative by construction); returns
/// the first offending line's index.
pub fn check_nested_durations(lines: &[GraphLine]) -> Result<(), usize> {
    // Per open depth: sum of children's durations.
    let mut open: Vec<u64> = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if l.body.ends_with(" {") {
            open.truncate(l.depth);
            open.push(0);
        } else if l.body.starts_with('}') {
            let kids = open.pop().ok_or(i)?;
            let d = l.duration_ns.ok_or(i)?;
            if d < kids {
                return Err(i);
            }
            if let Some(p) = open.last_mut() {
                *p += d;
            }
        } else if let Some(d) = l.duration_ns
            && let Some(p) = open.last_mut()
        {
            *p += d;
        }
    }
    Ok(())
}

/// The demo's call tree as function_graph bodies `(depth, text)` with
/// `ftrace_filter=demo_*`: `demo_run` at depth 0. `hide` drops a
/// function's whole subtree (set_graph_notrace); `max_depth` stops there
/// (0: none); `retval` adds funcgraph-retval comments (`demo_run`'s value
/// is `{X}`: a two-word tuple is returned in memory on i686).
pub fn demo_graph(hide: &[&str], max_depth: usize, retval: bool) -> Vec<(usize, String)> {
    struct Node {
        name: &'static str,
        value: u64,
        kids: Vec<Node>,
    }
    fn fib(n: u64) -> Node {
        let kids = if n >= 2 {
            vec![fib(n - 1), fib(n - 2)]
        } else {
            vec![]
        };
        let value = if n >= 2 {
            kids[0].value + kids[1].value
        } else {
            n
        };
        Node {
            name: "demo_fib",
            value,
            kids,
        }
    }
    let inner = |i: u64| Node {
        name: "demo_inner",
        value: 2 * i + 2,
        kids: vec![Node {
            name: "demo_leaf",
            value: 2 * i + 1,
            kids: vec![],
        }],
    };
    let root = Node {
        name: "demo_run",
        value: u64::MAX,
        kids: vec![
            Node {
                name: "demo_outer",
                value: 12,
                kids: (0..3).map(inner).collect(),
            },
            fib(10),
        ],
    };
    fn emit(
        n: &Node,
        d: usize,
        hide: &[&str],
        max: usize,
        rv: bool,
        out: &mut Vec<(usize, String)>,
    ) {
        if hide.contains(&n.name) || (max > 0 && d >= max) {
            return;
        }
        let full = format!("kernel::demo::{}", n.name);
        let val = if n.value == u64::MAX {
            "{X}".to_owned()
        } else {
            format!("{:x}", n.value)
        };
        let kids: Vec<&Node> = n
            .kids
            .iter()
            .filter(|k| !hide.contains(&k.name) && !(max > 0 && d + 1 >= max))
            .collect();
        if kids.is_empty() {
            let c = if rv {
                format!(" /* = 0x{val} */")
            } else {
                String::new()
            };
            out.push((d, format!("{full}();{c}")));
        } else {
            out.push((d, format!("{full}() {{")));
            for k in &n.kids {
                emit(k, d + 1, hide, max, rv, out);
            }
            let c = if rv {
                format!(" /* {full} = 0x{val} */")
            } else {
                String::new()
            };
            out.push((d, format!("}}{c}")));
        }
    }
    let mut out = Vec::new();
    emit(&root, 0, hide, max_depth, retval, &mut out);
    out
}

/// Asserts that the graph lines of `boot` are exactly `want` (depth and
/// text; `{X}`/`{N}` wildcards allowed in the text), on CPU 0, with nested
/// durations.
pub fn assert_graph(boot: &Boot, want: &[(usize, String)], context: &str) {
    let got = graph_lines(boot);
    let ok = got.len() == want.len()
        && got
            .iter()
            .zip(want)
            .all(|(g, (d, t))| g.cpu == 0 && g.depth == *d && line_matches(t, &g.body));
    assert!(
        ok,
        "{context}: graph differs.\n--- expected ---\n{}\n--- actual ---\n{}",
        want.iter()
            .map(|(d, t)| format!("{}{t}", "  ".repeat(*d)))
            .collect::<Vec<_>>()
            .join("\n"),
        boot.text()
    );
    if let Err(i) = check_nested_durations(&got) {
        panic!(
            "{context}: durations do not nest at graph line {i}:\n{}",
            boot.text()
        );
    }
}

/// What ppc64's `test=abi` prints after the boot lines (its last line,
/// `rftrace: success`, excepted): the same results untraced and through
/// each of the four trampolines: the results of the `abi_*` functions of
/// `kernel/src/arch/ppc64/scenarios.rs` for their fixed arguments.
pub fn ppc64_abi_lines() -> Vec<String> {
    let results = "args8=0xeee00222aa896105 args10=0x180000000000e4a floats=142.75 toc=0x4443";
    let mut lines = vec![format!("ppc64: abi untraced: {results}")];
    for tramp in [
        "ftrace_ops_tramp",
        "ftrace_ops_regs_tramp",
        "ftrace_caller",
        "ftrace_regs_caller",
    ] {
        lines.push(format!(
            "ppc64: abi {tramp} (4 functions, 5 calls traced): {results}"
        ));
    }
    lines.push("ppc64: abi: results identical".into());
    lines
}

#[cfg(test)]
mod tests {
    use super::{Boot, Outcome, assert_backtrace, line_matches};

    fn boot_of(lines: &[&str]) -> Boot {
        Boot {
            stdout: (lines.join("\n") + "\n").into_bytes(),
            stderr: String::new(),
            outcome: Outcome::Failure,
        }
    }

    const GOOD: &[&str] = &[
        "rftrace: booting on x86_64",
        "panic: test=panic: deliberate panic",
        "backtrace:",
        "  #0 __rustc::rust_begin_unwind+0x148",
        "  #1 0x10fb2a",
        "  #2 kernel::demo::demo_leaf+0x64",
        "  #3 kernel::demo::demo_inner+0x1d",
        "  #4 kernel::demo::demo_outer+0x3f",
        "  #5 kernel::demo::demo_run+0x1f",
        "  #6 kernel::tracing::workload+0x11",
        "  #7 kernel::kmain+0xcf0",
    ];

    #[test]
    fn backtrace_check_accepts_the_kernels_format() {
        assert_backtrace(&boot_of(GOOD), "x86_64", "fentry");
        assert_backtrace(
            &boot_of(&[
                "panic: x",
                "backtrace: unavailable (built without frame pointers)",
            ]),
            "i686",
            "nofp",
        );
    }

    /// `GOOD` with line `i` replaced by `line` must be refused.
    fn refused(i: usize, line: &str) -> bool {
        let mut v = GOOD.to_vec();
        v[i] = line;
        let b = boot_of(&v);
        std::panic::catch_unwind(|| assert_backtrace(&b, "x86_64", "fentry")).is_err()
    }

    #[test]
    fn backtrace_check_refuses_gaps_bad_numbers_and_hooks() {
        assert!(refused(7, "  #4 kernel::demo::demo_fib+0x10"));
        assert!(refused(4, "  #2 0x10fb2a"));
        assert!(refused(3, "  #0 return_to_handler+0x0"));
        assert!(refused(3, "  #0 foo+0xZZ"));
        assert!(refused(2, "backtrace"));
        assert!(refused(9, "  #6 kernel::demo::demo_run+0x1f"));
        let b = boot_of(&GOOD[..2]);
        assert!(std::panic::catch_unwind(|| assert_backtrace(&b, "x86_64", "fentry")).is_err());
    }

    #[test]
    fn wildcards_match_numbers_only() {
        assert!(line_matches(
            "sites: {N} patchable, 0 unexpected",
            "sites: 25 patchable, 0 unexpected"
        ));
        assert!(!line_matches("sites: {N} patchable", "sites:  patchable"));
        assert!(!line_matches("sites: {N} patchable", "sites: 2x patchable"));
        assert!(!line_matches("a", "ab"));
        assert!(line_matches("x", "x"));
        assert!(line_matches("at 0x{X} is {N}", "at 0x1f00a is 7"));
        assert!(!line_matches("at 0x{X}", "at 0xZ"));
        assert!(line_matches("{N}.{N}: f", "12.000345: f"));
        assert_eq!(
            super::event_cpu_and_time("          <idle>-0       [002] .....     1.759519: f <-g"),
            Some((2, 1_759_519))
        );
    }

    #[test]
    fn linux_durations_and_graph_lines() {
        use super::{linux_duration, parse_graph_line};
        // Lines of Linux 6.12's own trace (shared/reference).
        for (ns, s) in [
            (2_202, "  2.202 us    "),
            (10_743, "+ 10.743 us   "),
            (1_000_001, "# 1000.001 us "),
            (123_456_789, "@ 123456.7 us "),
        ] {
            assert_eq!(linux_duration(ns), s);
        }
        let l = parse_graph_line(" 0) + 10.743 us   |    }").unwrap();
        assert_eq!(
            (l.cpu, l.duration_ns, l.depth, l.body.as_str()),
            (0, Some(10_743), 1, "}")
        );
        let l = parse_graph_line(" 0)               |  vfs_read() {").unwrap();
        assert_eq!((l.duration_ns, l.depth), (None, 0));
        assert!(
            parse_graph_line(" 0)   10.743 us   |    }").is_none(),
            "wrong mark"
        );
        assert!(
            parse_graph_line(" 0) + 10.743 us  |    }").is_none(),
            "wrong width"
        );
    }
}
