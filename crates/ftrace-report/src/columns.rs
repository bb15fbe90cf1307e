//! The columns `trace-cmd report` and Linux's text have in common (CPU,
//! function, parent, order, lost events), read from either, so that a
//! `trace.dat` can be checked against the text it was made with. The tests
//! use it; [`trace_cmd_report`] runs trace-cmd.

use std::path::Path;
use std::process::Command;

/// One row of a function trace, as both print it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FunctionRow {
    /// A call: CPU, function, parent.
    Call(u32, String, String),
    /// `CPU:N [LOST K EVENTS]` (text) or `CPU:N [K EVENTS DROPPED]`
    /// (trace-cmd): CPU, count.
    Lost(u32, u64),
}

/// One row of a function_graph trace: the CPU and the function column
/// (indentation kept, a trailing `/* ... */` comment dropped: trace-cmd's
/// plugin prints neither return values nor the names of returns whose
/// entry was lost).
pub type GraphRow = (u32, String);

/// `name+0x0/0x40 <00101f00>` (sym-offset, sym-addr) as `name`.
fn bare_symbol(s: &str) -> String {
    let s = match s.rsplit_once(" <") {
        Some((head, tail))
            if tail
                .strip_suffix('>')
                .is_some_and(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit())) =>
        {
            head
        }
        _ => s,
    };
    let s = match s.rsplit_once('+') {
        Some((head, off)) if off.starts_with("0x") => head,
        _ => s,
    };
    s.replace('\u{a0}', " ")
}

/// `CPU:N [...]` lines: the CPU and what is in brackets.
fn cpu_note(l: &str) -> Option<(u32, &str)> {
    let (cpu, rest) = l.strip_prefix("CPU:")?.split_once(" [")?;
    Some((cpu.parse().ok()?, rest.strip_suffix(']')?))
}

/// The CPU in `... [003] ...`.
fn bracket_cpu(l: &str) -> Option<(u32, &str)> {
    let (_, rest) = l.split_once(" [")?;
    let (cpu, rest) = rest.split_once(']')?;
    Some((cpu.parse().ok()?, rest))
}

/// The rows of Linux's function tracer text (as `function.txt` holds it).
pub fn function_rows_text(text: &str) -> Vec<FunctionRow> {
    text.lines()
        .filter_map(|l| {
            if let Some((cpu, note)) = cpu_note(l) {
                let n = note.strip_prefix("LOST ")?.strip_suffix(" EVENTS")?;
                return Some(FunctionRow::Lost(cpu, n.parse().ok()?));
            }
            if l.starts_with('#') {
                return None;
            }
            let (cpu, rest) = bracket_cpu(l)?;
            let (_, call) = rest.split_once(": ")?;
            let (f, p) = call.split_once(" <-")?;
            Some(FunctionRow::Call(cpu, bare_symbol(f), bare_symbol(p)))
        })
        .collect()
}

/// The rows of `trace-cmd report -O parent` for a function `trace.dat`.
pub fn function_rows_trace_cmd(report: &str) -> Vec<FunctionRow> {
    report
        .lines()
        .filter_map(|l| {
            if let Some((cpu, note)) = cpu_note(l) {
                let n = note.strip_suffix(" EVENTS DROPPED")?;
                return Some(FunctionRow::Lost(cpu, n.parse().ok()?));
            }
            let (cpu, rest) = bracket_cpu(l)?;
            let (_, call) = rest.split_once(" function: ")?;
            let (f, p) = call.trim().split_once(" <-- ")?;
            Some(FunctionRow::Call(cpu, bare_symbol(f), bare_symbol(p)))
        })
        .collect()
}

/// The function column after the last `|  `, without a trailing comment.
fn graph_body(s: &str) -> Option<String> {
    let at = s.rfind('|')?;
    let body = s[at + 1..].strip_prefix("  ")?;
    let body = match body.rfind(" /* ") {
        Some(c) if body.ends_with(" */") => &body[..c],
        _ => body,
    };
    Some(body.replace('\u{a0}', " "))
}

/// The CPU column ` N) ` of a graph line (after the `funcgraph-abstime`
/// column, if any) and what follows it.
fn graph_cpu(l: &str) -> Option<(u32, &str)> {
    l.match_indices(')').find_map(|(i, _)| {
        let token = l[..i].rsplit(' ').next()?;
        Some((token.parse().ok()?, &l[i + 1..]))
    })
}

/// The rows of Linux's function_graph text (`funcgraph-cpu` on).
pub fn graph_rows_text(text: &str) -> Vec<GraphRow> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (cpu, rest) = graph_cpu(l)?;
            Some((cpu, graph_body(rest)?))
        })
        .collect()
}

/// The rows of `trace-cmd report` for a function_graph `trace.dat`.
pub fn graph_rows_trace_cmd(report: &str) -> Vec<GraphRow> {
    report
        .lines()
        .filter_map(|l| {
            let (cpu, rest) = bracket_cpu(l)?;
            let (_, tail) = rest
                .split_once(" funcgraph_entry: ")
                .or_else(|| rest.split_once(" funcgraph_exit: "))?;
            Some((cpu, graph_body(tail)?))
        })
        .collect()
}

/// The `CPU:N [K EVENTS DROPPED]` notes of a trace-cmd report.
pub fn dropped_trace_cmd(report: &str) -> Vec<(u32, u64)> {
    report
        .lines()
        .filter_map(|l| {
            let (cpu, note) = cpu_note(l)?;
            Some((cpu, note.strip_suffix(" EVENTS DROPPED")?.parse().ok()?))
        })
        .collect()
}

/// Runs `trace-cmd report ARGS -i DAT` and returns what it printed; the
/// error says what failed, and how to install trace-cmd when it is
/// missing.
pub fn trace_cmd_report(dat: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new("trace-cmd")
        .arg("report")
        .args(args)
        .arg("-i")
        .arg(dat)
        .output()
        .map_err(|e| {
            format!(
                "cannot run trace-cmd ({e}): install Debian's package with \
                 `scripts/setup.sh` as root, or `sudo apt-get install -y trace-cmd`"
            )
        })?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!(
            "trace-cmd report -i {} failed ({}):\n{}{stdout}",
            dat.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_rows_of_both() {
        let text = "# tracer: function\n#\nCPU:0 [LOST 3 EVENTS]\n\
          <idle>-0       [000] .....     0.062910: a::f <-a::g\n\
          <idle>-0       [001] .....            2: a::f+0x0/0x6d <0010fc00> <-<T as U>::g+0x1b/0x40 <0010dafb>\n";
        let tc = "cpus=2\nCPU:0 [3 EVENTS DROPPED]\n\
          <idle>-0     [000]     0.062911: function:             a::f <-- a::g\n\
          <idle>-0     [001]           2: function:                a::f <-- <T\u{a0}as\u{a0}U>::g\n";
        let want = [
            FunctionRow::Lost(0, 3),
            FunctionRow::Call(0, "a::f".into(), "a::g".into()),
            FunctionRow::Call(1, "a::f".into(), "<T as U>::g".into()),
        ];
        assert_eq!(function_rows_text(text), want);
        assert_eq!(function_rows_trace_cmd(tc), want);
        assert_eq!(dropped_trace_cmd(tc), [(0, 3)]);
    }

    #[test]
    fn graph_rows_of_both() {
        let text = "# tracer: function_graph\n#\n# CPU  DURATION                  FUNCTION CALLS\n\
# |     |   |                     |   |   |   |\n\
\x200)               |  a::f() {\n\
\x201)   0.001 us    |    a::g(); /* = 0x1 */\n\
\x200) + 12.000 us   |  } /* a::f */\n";
        let tc = "cpus=2\n\
          <idle>-0     [000]     0.1: funcgraph_entry:                   |  a::f() {\n\
          <idle>-0     [001]     0.2: funcgraph_entry:        0.001 us   |    a::g();\n\
          <idle>-0     [000]     0.3: funcgraph_exit:       + 12.000 us  |  }\n";
        let want: Vec<GraphRow> = vec![
            (0, "a::f() {".into()),
            (1, "  a::g();".into()),
            (0, "}".into()),
        ];
        assert_eq!(graph_rows_text(text), want);
        assert_eq!(graph_rows_trace_cmd(tc), want);
        // funcgraph-abstime and funcgraph-proc add columns before and after.
        let abs = "    0.000001 |   1)    <idle>-0    |   0.001 us    |    a::g(); /* = 0x1 */\n";
        assert_eq!(graph_rows_text(abs), [(1, "  a::g();".to_owned())]);
    }
}
