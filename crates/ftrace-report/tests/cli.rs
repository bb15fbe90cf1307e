//! The `ftrace-report` binary on console logs of the real kernel
//! (`tests/data/<arch>.log`, made by `./run-qemu.sh <arch> "... trace_dump=binary"`,
//! see tests/data/README.md) and on damaged copies of them: the text
//! rebuilt byte for byte, trace-cmd reading the `trace.dat` files, the
//! JSON, the flame graph, and every damage reported by its log line with
//! what could still be rebuilt.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use ftrace::tracer::dump::{BYTES_PER_LINE, crc32, parse_payload};
use ftrace::tracer::ring::{RawCpu, decode_words};
use ftrace_report::columns::{
    function_rows_text, function_rows_trace_cmd, graph_rows_text, graph_rows_trace_cmd,
    trace_cmd_report,
};
use ftrace_report::console::base64_decode;

const ARCHES: [&str; 3] = ["x86_64", "i686", "ppc64"];

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("ftrace-report-cli-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
    fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }
    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.0.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ftrace-report"));
    c.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    c.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = c.spawn().unwrap();
    if let Some(input) = stdin {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(input).unwrap();
    }
    child.wait_with_output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn fixture(arch: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/data/{arch}.log"));
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The trace the kernel printed for `tracer`: from `# tracer: NAME` to the
/// line before its counters line (`ftrace: N recursions refused, ...`,
/// `function_graph: ...`), which the dump does not carry.
fn kernel_trace(log: &str, tracer: &str) -> String {
    let counters = if tracer == "function" {
        "ftrace: "
    } else {
        "function_graph: "
    };
    let lines: Vec<&str> = log.lines().collect();
    let start = lines
        .iter()
        .position(|l| *l == format!("# tracer: {tracer}"))
        .unwrap_or_else(|| panic!("no {tracer} trace in the log"));
    lines[start..]
        .iter()
        .take_while(|l| !(l.starts_with(counters) && l.contains(" recursions refused, ")))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// The kernel's counters line's `N events lost` for `tracer`.
fn kernel_lost(log: &str, tracer: &str) -> u64 {
    let prefix = if tracer == "function" {
        "ftrace: "
    } else {
        "function_graph: "
    };
    let l = log
        .lines()
        .find(|l| l.starts_with(prefix) && l.contains(" recursions refused, "))
        .unwrap();
    l.split(", ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// A fixture's dump, taken apart by the test itself (the reference parser
/// and decoder of the `ftrace` crate), to aim damage at chosen bytes.
struct Dump {
    lines: Vec<String>,
    begin: usize,
    /// Index in `lines` of each dump line.
    seq: Vec<usize>,
    payload: Vec<u8>,
    /// Per section (FUNC, GRPH), CPU 0's words: payload offset and count.
    words: Vec<(usize, usize)>,
}

impl Dump {
    fn of(arch: &str) -> Self {
        let log = fixture(arch);
        let lines: Vec<String> = log.lines().map(str::to_owned).collect();
        let begin = lines
            .iter()
            .position(|l| l.starts_with("ftrace-dump: begin"))
            .unwrap();
        let mut seq = Vec::new();
        let mut payload = Vec::new();
        for (i, l) in lines.iter().enumerate().skip(begin + 1) {
            if l == "ftrace-dump: end" {
                break;
            }
            let b64 = l.rsplit(' ').next().unwrap();
            payload.extend(base64_decode(b64.as_bytes()).unwrap());
            seq.push(i);
        }
        let d = parse_payload(&payload).unwrap();
        // Walk the layout of docs/dump-format.md to CPU 0's words.
        let mut at = 12 + 4 + d.arch.len() + 4 + d.clock.len() + 8 + 4 + d.symtab.len();
        let mut words = Vec::new();
        for s in &d.sections {
            at += 4 + 4 + 8 + 4 + 4;
            for (i, c) in s.cpus.iter().enumerate() {
                at += 4 + 5 * 8 + 4;
                if i == 0 {
                    words.push((at, c.raw.words.len()));
                }
                at += 4 * c.raw.words.len();
            }
        }
        assert_eq!(&payload[at..], b"END!");
        Dump {
            lines,
            begin,
            seq,
            payload,
            words,
        }
    }

    fn log(lines: &[String]) -> Vec<u8> {
        (lines.join("\n") + "\n").into_bytes()
    }

    /// Events of section `s`'s CPU 0 that lie wholly before payload offset
    /// `cut` (what a decoder can keep when the bytes from `cut` on are lost).
    fn events_before(&self, s: usize, cut: usize) -> usize {
        let d = parse_payload(&self.payload).unwrap();
        let sec = &d.sections[s];
        let (at, n) = self.words[s];
        let keep = (cut.saturating_sub(at) / 4).min(n);
        let raw = RawCpu {
            words: sec.cpus[0].raw.words[..keep].to_vec(),
            ..sec.cpus[0].raw.clone()
        };
        decode_words(
            &raw,
            0,
            sec.text_base as usize,
            d.word_bits == 64,
            u64::from(sec.capacity_words),
        )
        .0
        .len()
    }

    /// The dump line holding payload byte `offset`.
    fn seq_at(offset: usize) -> usize {
        offset / BYTES_PER_LINE
    }
}

const WROTE: [&str; 7] = [
    "function.txt",
    "function_graph.txt",
    "function.dat",
    "function_graph.dat",
    "trace.json",
    "function_graph.folded",
    "flamegraph.svg",
];

#[test]
fn rebuilds_the_kernels_text_byte_for_byte_on_every_arch() {
    for arch in ARCHES {
        let log = fixture(arch);
        let dir = Scratch::new(&format!("text-{arch}"));
        let path = dir.file("console.log", log.as_bytes());
        let out = dir.0.join("out");
        let o = run(
            &[
                path.to_str().unwrap(),
                "-o",
                out.to_str().unwrap(),
                "--check",
            ],
            None,
        );
        let mut want: String = WROTE
            .iter()
            .map(|f| format!("ftrace-report: wrote {}\n", out.join(f).display()))
            .collect();
        want += "ftrace-report: check: the function and function_graph text rebuilt from the dump is the kernel's, byte for byte\n";
        assert_eq!(stderr(&o), want, "{arch}");
        assert!(o.status.success(), "{arch}");
        let read = |f: &str| std::fs::read_to_string(out.join(f)).unwrap();
        assert_eq!(
            read("function.txt"),
            kernel_trace(&log, "function"),
            "{arch}"
        );
        assert_eq!(
            read("function_graph.txt"),
            kernel_trace(&log, "function_graph"),
            "{arch}"
        );
    }
}

#[test]
fn reads_standard_input_and_writes_named_files() {
    let log = fixture("x86_64");
    let dir = Scratch::new("stdin");
    let g = dir.0.join("g.txt");
    let o = run(
        &["--graph-text", g.to_str().unwrap(), "-q"],
        Some(log.as_bytes()),
    );
    assert_eq!((stderr(&o).as_str(), o.status.code()), ("", Some(0)));
    assert_eq!(dir.read("g.txt"), kernel_trace(&log, "function_graph"));
    let o = run(
        &[
            "-",
            "--function-text",
            dir.0.join("f.txt").to_str().unwrap(),
            "-q",
        ],
        Some(log.as_bytes()),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(dir.read("f.txt"), kernel_trace(&log, "function"));
}

/// `trace-cmd report` on our `trace.dat` lists the same calls (CPU,
/// function, parent), in the same order, with the same lost-event counts
/// as our text. trace-cmd's function plugin shows parents with `-O parent`
/// only, as for Linux's own files.
#[test]
fn trace_cmd_reads_the_dat_files_like_our_text() {
    for arch in ARCHES {
        let log = fixture(arch);
        let dir = Scratch::new(&format!("tracecmd-{arch}"));
        let path = dir.file("console.log", log.as_bytes());
        let o = run(
            &[path.to_str().unwrap(), "-o", dir.0.to_str().unwrap(), "-q"],
            None,
        );
        assert!(o.status.success(), "{}", stderr(&o));
        let report = trace_cmd_report(&dir.0.join("function.dat"), &["-O", "parent"])
            .unwrap_or_else(|e| panic!("{e}"));
        let ours = function_rows_text(&dir.read("function.txt"));
        assert!(ours.len() >= 8, "{arch}: {ours:?}");
        assert_eq!(function_rows_trace_cmd(&report), ours, "{arch}:\n{report}");
        let report = trace_cmd_report(&dir.0.join("function_graph.dat"), &[])
            .unwrap_or_else(|e| panic!("{e}"));
        let ours = graph_rows_text(&dir.read("function_graph.txt"));
        assert!(ours.len() >= 13, "{arch}: {ours:?}");
        assert_eq!(graph_rows_trace_cmd(&report), ours, "{arch}:\n{report}");
        let lost = kernel_lost(&log, "function_graph");
        let dropped = ftrace_report::columns::dropped_trace_cmd(&report);
        assert_eq!(
            dropped,
            if lost > 0 { vec![(0, lost)] } else { vec![] },
            "{arch}"
        );
    }
}

#[test]
fn json_is_chrome_trace_events_per_cpu() {
    let log = fixture("ppc64");
    let dir = Scratch::new("json");
    let path = dir.file("console.log", log.as_bytes());
    let j = dir.0.join("t.json");
    let o = run(
        &[path.to_str().unwrap(), "--json", j.to_str().unwrap(), "-q"],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&dir.read("t.json")).unwrap();
    assert_eq!(v["displayTimeUnit"], "ns");
    let ev = v["traceEvents"].as_array().unwrap();
    let of = |ph: &str| ev.iter().filter(|e| e["ph"] == ph).collect::<Vec<_>>();
    // Both tracers, CPU 0 each.
    let names: Vec<String> = of("M")
        .iter()
        .filter(|e| e["name"] != "process_sort_index")
        .map(|e| format!("{} {} {}", e["pid"], e["tid"], e["args"]["name"]))
        .collect();
    assert_eq!(
        names,
        [
            "1 0 \"function (ppc64)\"",
            "1 0 \"CPU 0\"",
            "2 0 \"function_graph (ppc64)\"",
            "2 0 \"CPU 0\""
        ]
    );
    // One instant per function event, in order, named like the text.
    let text_calls = function_rows_text(&kernel_trace(&log, "function"));
    let instants = of("i");
    let calls: Vec<_> = text_calls
        .iter()
        .filter_map(|r| match r {
            ftrace_report::columns::FunctionRow::Call(_, f, p) => Some((f.clone(), p.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        instants
            .iter()
            .map(|e| (
                e["name"].as_str().unwrap().to_owned(),
                e["args"]["parent"].as_str().unwrap().to_owned()
            ))
            .collect::<Vec<_>>(),
        calls
    );
    assert!(
        instants
            .iter()
            .all(|e| e["s"] == "t" && e["pid"] == 1 && e["tid"] == 0)
    );
    let ts: Vec<f64> = instants.iter().map(|e| e["ts"].as_f64().unwrap()).collect();
    assert!(ts.windows(2).all(|w| w[0] <= w[1]));
    // One complete slice per graph return; slices nest on the track.
    let x = of("X");
    let returns = graph_rows_text(&kernel_trace(&log, "function_graph"))
        .iter()
        .filter(|(_, b)| b.trim_start().starts_with('}') || b.ends_with(");"))
        .count();
    assert_eq!(x.len(), returns);
    // In start order, each slice inside the one open below it (one CPU).
    let mut open: Vec<f64> = Vec::new();
    let mut last = f64::MIN;
    for e in &x {
        assert!(e["pid"] == 2 && e["tid"] == 0 && e["cat"] == "function_graph");
        let (ts, dur) = (e["ts"].as_f64().unwrap(), e["dur"].as_f64().unwrap());
        assert!(ts >= last && dur >= 0.0, "{e}");
        last = ts;
        while open.last().is_some_and(|&end| ts >= end) {
            open.pop();
        }
        if let Some(&end) = open.last() {
            assert!(ts + dur <= end + 1e-6, "{e} overlaps its parent");
        }
        open.push(ts + dur);
    }
    // Entries whose return was not dumped stay open ("B" without "E").
    assert!(of("B").iter().all(|e| e["args"]["returned"] == false));
    assert!(of("E").is_empty());
}

#[test]
fn folded_stacks_and_flame_graph() {
    let log = fixture("x86_64");
    let dir = Scratch::new("flame");
    let path = dir.file("console.log", log.as_bytes());
    let o = run(
        &[
            path.to_str().unwrap(),
            "--folded",
            dir.0.join("f.folded").to_str().unwrap(),
            "--svg",
            dir.0.join("f.svg").to_str().unwrap(),
            "-q",
        ],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let folded = dir.read("f.folded");
    let stacks: Vec<(&str, u64)> = folded
        .lines()
        .map(|l| {
            let (s, n) = l.rsplit_once(' ').unwrap();
            (s, n.parse().unwrap())
        })
        .collect();
    // The demo's call tree (ftrace_notrace=demo_fib): the stacks that own time.
    let r = "kernel::demo::demo_run";
    let o_ = "kernel::demo::demo_outer";
    let i = "kernel::demo::demo_inner";
    let l = "kernel::demo::demo_leaf";
    assert_eq!(
        stacks.iter().map(|s| s.0.to_owned()).collect::<Vec<_>>(),
        [
            r.to_owned(),
            format!("{r};{o_}"),
            format!("{r};{o_};{i}"),
            format!("{r};{o_};{i};{l}"),
        ]
    );
    // Self times add up to the root call's duration (the text's last line).
    let graph = kernel_trace(&log, "function_graph");
    let root = graph.lines().last().unwrap();
    let us = root.split('|').next().unwrap().split(") ").nth(1).unwrap();
    let us = us
        .trim_start_matches([' ', '+', '!', '#', '*', '@', '$'])
        .split(" us")
        .next()
        .unwrap();
    let (a, b) = us.split_once('.').unwrap();
    let total = a.parse::<u64>().unwrap() * 1000
        + b.parse::<u64>().unwrap() * 10u64.pow(3 - b.len() as u32);
    let sum: u64 = stacks.iter().map(|s| s.1).sum();
    assert!(
        sum.abs_diff(total) < 10u64.pow(3 - b.len() as u32),
        "{sum} vs {total}"
    );
    let svg = dir.read("f.svg");
    assert!(
        svg.starts_with("<?xml") && svg.contains("<svg"),
        "{}",
        &svg[..100]
    );
    assert!(svg.contains("kernel::demo::demo_leaf") && svg.contains("function_graph (x86_64)"));
}

/// Runs the tool on damaged `lines` into a fresh directory; returns its
/// stderr, exit code and the directory.
fn damaged(name: &str, lines: &[String]) -> (String, Option<i32>, Scratch) {
    let dir = Scratch::new(name);
    let path = dir.file("console.log", &Dump::log(lines));
    let out = dir.0.join("out");
    let o = run(
        &[path.to_str().unwrap(), "-o", out.to_str().unwrap(), "-q"],
        None,
    );
    (stderr(&o), o.status.code(), dir)
}

#[test]
fn bad_checksum_keeps_the_events_before_it() {
    let d = Dump::of("x86_64");
    let log = fixture("x86_64");
    // A line inside the function buffer's words, after its first events.
    let (at, n) = d.words[0];
    assert!(n * 4 > 100, "the fixture's function buffer is too small");
    let s = Dump::seq_at(at + 80);
    let mut lines = d.lines.clone();
    let i = d.seq[s];
    let b64_at = lines[i].rfind(' ').unwrap() + 1;
    // One base64 character changed: still base64, other bytes.
    let c = lines[i].as_bytes()[b64_at + 5];
    let swap = if c == b'A' { "B" } else { "A" };
    lines[i].replace_range(b64_at + 5..b64_at + 6, swap);
    let bytes = base64_decode(&lines[i].as_bytes()[b64_at..]).unwrap();
    let said = &lines[i][b64_at - 9..b64_at - 1];
    let kept = d.events_before(0, s * BYTES_PER_LINE);
    let (err, code, dir) = damaged("checksum", &lines);
    let l = i + 1;
    assert_eq!(
        err,
        format!(
            "ftrace-report: line {l}: dump line {s} has a bad checksum (the line says {said}, its bytes give {:08x})\n\
             ftrace-report: line {l}: function trace, CPU 0: buffer words lost with dump line {s}: the {kept} events before them are kept, the rest of this CPU is dropped\n",
            crc32(&bytes)
        )
    );
    assert_eq!(code, Some(1));
    // The graph is whole; the function trace has the events before the damage.
    assert_eq!(
        dir.read("out/function_graph.txt"),
        kernel_trace(&log, "function_graph")
    );
    let f = dir.read("out/function.txt");
    let k = kernel_trace(&log, "function");
    assert!(kept > 0 && kept < 8, "{kept}");
    assert_eq!(
        f.lines().skip(12).collect::<Vec<_>>(),
        k.lines().skip(12).take(kept).collect::<Vec<_>>()
    );
    assert!(f.contains(&format!(
        "# entries-in-buffer/entries-written: {kept}/8   #P:1\n"
    )));
}

#[test]
fn missing_line_and_truncated_log() {
    let d = Dump::of("x86_64");
    let log = fixture("x86_64");
    let (at, n) = d.words[1];
    assert!(n * 4 > 200, "the fixture's graph buffer is too small");
    let s = Dump::seq_at(at + 150);
    let kept = d.events_before(1, s * BYTES_PER_LINE);

    // Missing: dump line s taken out; the next line takes its number.
    let mut lines = d.lines.clone();
    lines.remove(d.seq[s]);
    let l = d.seq[s] + 1;
    let (err, code, dir) = damaged("missing", &lines);
    assert_eq!(
        err,
        format!(
            "ftrace-report: line {l}: dump line {s} is missing (expected before this line)\n\
             ftrace-report: line {l}: function_graph trace, CPU 0: buffer words lost with dump line {s}: the {kept} events before them are kept, the rest of this CPU is dropped\n"
        )
    );
    assert_eq!(code, Some(1));
    assert_eq!(dir.read("out/function.txt"), kernel_trace(&log, "function"));
    let g = dir.read("out/function_graph.txt");
    assert_eq!(g.lines().count(), 4 + graph_rows_text(&g).len());
    assert!(kept > 0);

    // Truncated: the log ends in the middle of dump line s.
    let mut lines = d.lines[..=d.seq[s]].to_vec();
    let cut = lines[d.seq[s]].len() - 7;
    lines[d.seq[s]].truncate(cut);
    let l = d.seq[s] + 1;
    let last = Dump::seq_at(d.payload.len() - 4);
    let (err, code, dir) = damaged("truncated", &lines);
    assert_eq!(
        err,
        format!(
            "ftrace-report: line {l}: dump line {s} is not valid base64 (cut or garbled)\n\
             ftrace-report: line {l}: the log ends inside the dump of line {} (no `ftrace-dump: end`; {} of {} lines read)\n\
             ftrace-report: line {l}: function_graph trace, CPU 0: buffer words lost with dump line {s}: the {kept} events before them are kept, the rest of this CPU is dropped\n\
             ftrace-report: line {l}: the next section tag or `END!` lost with dump line {last}: any sections from here on are dropped\n",
            d.begin + 1,
            s + 1,
            d.seq.len()
        )
    );
    assert_eq!(code, Some(1));
    assert_eq!(dir.read("out/function.txt"), kernel_trace(&log, "function"));
    assert!(dir.0.join("out/function_graph.dat").exists());
}

#[test]
fn duplicated_swapped_and_garbage_lines() {
    let d = Dump::of("i686");
    let log = fixture("i686");
    // A repeated line: reported, nothing lost.
    let mut lines = d.lines.clone();
    lines.insert(d.seq[3] + 1, lines[d.seq[3]].clone());
    let (err, code, dir) = damaged("dup", &lines);
    assert_eq!(
        err,
        format!(
            "ftrace-report: line {}: dump line 3 repeats line {}\n",
            d.seq[3] + 2,
            d.seq[3] + 1
        )
    );
    assert_eq!(code, Some(1));
    assert_eq!(dir.read("out/function.txt"), kernel_trace(&log, "function"));
    assert_eq!(
        dir.read("out/function_graph.txt"),
        kernel_trace(&log, "function_graph")
    );

    // Two lines' numbers swapped: each line is intact, the payload is not.
    let mut lines = d.lines.clone();
    let (a, b) = (d.seq[5], d.seq[6]);
    let rest = |l: &str| l.splitn(3, ' ').nth(2).unwrap().to_owned();
    let (ra, rb) = (rest(&lines[a]), rest(&lines[b]));
    lines[a] = format!("ftrace-dump: 5 {rb}");
    lines[b] = format!("ftrace-dump: 6 {ra}");
    let mut p = d.payload.clone();
    let (x, y) = (5 * BYTES_PER_LINE, 6 * BYTES_PER_LINE);
    let chunk5 = p[x..y].to_vec();
    p.copy_within(y..y + BYTES_PER_LINE, x);
    p[y..y + BYTES_PER_LINE].copy_from_slice(&chunk5);
    let header = &d.lines[d.begin];
    let (err, code, _dir) = damaged("swapped", &lines);
    let first = err.lines().next().unwrap_or("");
    assert_eq!(
        first,
        format!(
            "ftrace-report: line {}: the payload's CRC-32 is {:08x}, the header says {} (lines in the wrong place?)",
            d.begin + 1,
            crc32(&p),
            header.rsplit("crc=").next().unwrap()
        )
    );
    assert_eq!(code, Some(1));

    // Garbage between the lines (not UTF-8, empty, unrelated) is ignored;
    // a garbled line with the prefix is reported and the rest still reads.
    let mut bytes = Vec::new();
    let mut prefixed_at = 0;
    let mut n = 0;
    for (i, l) in d.lines.iter().enumerate() {
        bytes.extend_from_slice(l.as_bytes());
        bytes.push(b'\n');
        n += 1;
        if i > d.begin && i < d.seq[20] {
            bytes.extend_from_slice(
                b"\xff\xfe garbage \x00 [  1.0] noise\n\nrftrace: something else\n",
            );
            n += 3;
        }
        if i == d.seq[20] {
            bytes.extend_from_slice(b"ftrace-dump: not a frame\r\n");
            n += 1;
            prefixed_at = n;
        }
    }
    let dir = Scratch::new("garbage");
    let path = dir.file("console.log", &bytes);
    let o = run(&[path.to_str().unwrap(), "--check", "-q"], None);
    assert_eq!(
        stderr(&o),
        format!(
            "ftrace-report: line {prefixed_at}: malformed dump line: sequence number `not` is not a number\n"
        )
    );
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn unusable_logs_are_errors_naming_the_line() {
    let d = Dump::of("ppc64");
    let dir = Scratch::new("fatal");
    let out = dir.0.join("out");
    let check = |name: &str, lines: &[String], want: String| {
        let path = dir.file(name, &Dump::log(lines));
        let o = run(&[path.to_str().unwrap(), "-o", out.to_str().unwrap()], None);
        assert_eq!(stderr(&o), want, "{name}");
        assert_eq!(o.status.code(), Some(1), "{name}");
        assert!(!out.exists(), "{name}: nothing is written");
    };
    let mut lines = d.lines.clone();
    lines[d.begin] = lines[d.begin].replace("begin v1 ", "begin v2 ");
    check(
        "version.log",
        &lines,
        format!(
            "ftrace-report: error: line {}: dump format version 2; this tool reads version 1\n",
            d.begin + 1
        ),
    );
    let mut lines = d.lines.clone();
    lines.remove(d.begin);
    check(
        "nobegin.log",
        &lines,
        format!(
            "ftrace-report: error: line {}: dump lines without their `ftrace-dump: begin` line (is the start of the log missing?)\n",
            d.begin + 1
        ),
    );
    check(
        "nodump.log",
        &d.lines[..d.begin],
        "ftrace-report: error: no binary trace dump in the log (no `ftrace-dump: begin` line; boot the kernel with `trace_dump=binary`)\n".into(),
    );
    let mut lines = d.lines.clone();
    lines[d.begin] = lines[d.begin].replace("lines=", "lines=1");
    check(
        "header.log",
        &lines,
        format!(
            "ftrace-report: error: line {}: malformed dump header `{}`: {} bytes take {} lines of 48, not 1{}\n",
            d.begin + 1,
            lines[d.begin].strip_prefix("ftrace-dump: ").unwrap(),
            d.payload.len(),
            d.seq.len(),
            d.seq.len()
        ),
    );
    // The first line (magic, version, arch...) lost: the line's problem,
    // then the error.
    let mut lines = d.lines.clone();
    lines.remove(d.seq[0]);
    let l = d.seq[0] + 1;
    check(
        "first.log",
        &lines,
        format!(
            "ftrace-report: line {l}: dump line 0 is missing (expected before this line)\n\
             ftrace-report: error: line {l}: the dump's first fields lost with dump line 0: nothing can be decoded\n"
        ),
    );
    let o = run(&["/nonexistent/console.log", "--check"], None);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "ftrace-report: error: cannot read /nonexistent/console.log: No such file or directory (os error 2)\n"
    );
}

#[test]
fn usage_and_help() {
    let o = run(&[], None);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o),
        "ftrace-report: nothing to do: give --out-dir DIR, an output file (--function-text FILE, ...) or --check\n\nFor more information, try '--help'.\n"
    );
    let o = run(&["--frobnicate"], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("unexpected argument '--frobnicate'"));
    let o = run(&["--help"], None);
    assert!(o.status.success());
    let help = String::from_utf8_lossy(&o.stdout);
    for want in [
        "Usage: ftrace-report [OPTIONS] [LOG]",
        "  ftrace-report boot.log -o out\n",
        "  trace-cmd report -i out/function_graph.dat\n",
        "--check",
        "Exit status: 0",
    ] {
        assert!(help.contains(want), "--help lacks {want:?}:\n{help}");
    }
}

/// Two CPUs (the test kernel brings up one): a dump written by the crate's
/// own writer from per-CPU ring buffers decodes to the text the kernel's
/// printing code gives for those buffers, and trace-cmd sees both CPUs in
/// the same order.
#[test]
fn two_cpus_round_trip_through_the_dump_and_trace_cmd() {
    use ftrace::Symbols;
    use ftrace::platform::Context;
    use ftrace::tracer::buffer::Event;
    use ftrace::tracer::dump::{DumpInfo, Section, write_binary};
    use ftrace::tracer::graph::{GraphEvent, GraphOptions, write_graph};
    use ftrace::tracer::output::{TraceOptions, write_function_trace};
    use ftrace::tracer::ring::RingBuffer;
    use ftrace_abi::symtab::{SymbolTable, encode};

    const BASE: usize = 0x10_0000;
    let names = [
        (BASE as u64, 0x40, "k::outer"),
        (BASE as u64 + 0x40, 0x40, "k::leaf"),
        (BASE as u64 + 0x80, 0x40, "<k::T as k::U>::tick"),
    ];
    let symtab = encode(&names, false);
    let f = RingBuffer::new(2, 4096, BASE);
    let g = RingBuffer::new(2, 4096, BASE);
    let mut t = 1_000_000_000u64;
    for i in 0..20usize {
        let cpu = i % 2;
        let ctx = if cpu == 1 {
            Context::Irq
        } else {
            Context::Normal
        };
        t += 1_000 + (i as u64 % 3) * 100;
        f.function(cpu, t, ctx, false, BASE + 0x40, BASE + 0x13);
        g.graph_entry(cpu, t, ctx, false, BASE, 0);
        g.graph_entry(cpu, t + 10, ctx, false, BASE + 0x80, 1);
        g.graph_return(cpu, t + 300, ctx, false, BASE + 0x80, 1, 290, 3);
        g.graph_return(cpu, t + 500, ctx, false, BASE, 0, 500, 4);
    }
    // A gap longer than a ring-buffer page's time delta (2^27 ns).
    f.function(
        0,
        t + (1 << 33),
        Context::Normal,
        false,
        BASE + 0x80,
        BASE + 0x50,
    );
    let info = DumpInfo {
        arch: "x86_64",
        clock: "local",
        symtab: &symtab,
        graph_options: GraphOptions::default().bits(),
        trace_options: TraceOptions::default().bits(),
    };
    let mut log = String::from("rftrace: booting on x86_64\n");
    write_binary(
        &mut log,
        &info,
        &[
            Section {
                tag: *b"FUNC",
                ring: &f,
            },
            Section {
                tag: *b"GRPH",
                ring: &g,
            },
        ],
    )
    .unwrap();

    // What the kernel would print for these buffers.
    let syms = Symbols::new(Some(
        SymbolTable::parse(Box::leak(symtab.clone().into_boxed_slice())).unwrap(),
    ));
    let events: Vec<Event> = f.events().iter().filter_map(Event::from_ring).collect();
    let stats: Vec<_> = (0..2).map(|c| f.stats(c)).collect();
    let mut kernel_f = String::new();
    write_function_trace(
        &mut kernel_f,
        &events,
        &stats,
        &syms,
        &TraceOptions::default(),
    )
    .unwrap();
    let gev: Vec<GraphEvent> = g
        .events()
        .iter()
        .filter_map(GraphEvent::from_ring)
        .collect();
    let mut kernel_g = String::new();
    write_graph(&mut kernel_g, &gev, &syms, &GraphOptions::default(), 2).unwrap();

    let dir = Scratch::new("two-cpus");
    let path = dir.file("console.log", log.as_bytes());
    let o = run(
        &[path.to_str().unwrap(), "-o", dir.0.to_str().unwrap(), "-q"],
        None,
    );
    assert_eq!((stderr(&o).as_str(), o.status.code()), ("", Some(0)));
    assert_eq!(dir.read("function.txt"), kernel_f);
    assert_eq!(dir.read("function_graph.txt"), kernel_g);
    assert!(kernel_f.contains("[001] ..h.."), "{kernel_f}");

    let report = trace_cmd_report(&dir.0.join("function.dat"), &["-O", "parent"])
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(report.starts_with("cpus=2\n"), "{report}");
    let ours = function_rows_text(&kernel_f);
    assert_eq!(ours.len(), 21);
    assert_eq!(function_rows_trace_cmd(&report), ours, "{report}");
    let report =
        trace_cmd_report(&dir.0.join("function_graph.dat"), &[]).unwrap_or_else(|e| panic!("{e}"));
    let ours = graph_rows_text(&kernel_g);
    assert_eq!(ours.len(), 60, "{kernel_g}");
    assert_eq!(graph_rows_trace_cmd(&report), ours, "{report}");
}
