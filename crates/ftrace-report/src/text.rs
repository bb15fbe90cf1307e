//! Linux's text for both tracers, rebuilt with the very functions the
//! kernel prints with (`write_function_trace`, `write_graph`), and the
//! kernel's own text found in the same log to compare with.
//!
//! The kernel follows each trace with a counters line (`ftrace: N
//! recursions refused, M events lost`, `function_graph: ...`) that the dump
//! does not carry: only the trace itself (from `# tracer:` to the line
//! before the counters) is rebuilt and compared.

use ftrace::tracer::buffer::Event;
use ftrace::tracer::graph::{GraphEvent, write_graph};
use ftrace::tracer::output::write_function_trace;

use crate::console::lines;
use crate::decode::{Section, Trace, Tracer};

/// The function tracer's text, as `function::write_trace_opts` prints it.
pub fn function_text(trace: &Trace, section: &Section) -> String {
    let events: Vec<Event> = section
        .events()
        .iter()
        .filter_map(Event::from_ring)
        .collect();
    let mut opts = trace.trace_options;
    opts.addr_digits = trace.word_bytes() * 2;
    let mut s = String::new();
    // Writing to a String cannot fail.
    let _ = write_function_trace(&mut s, &events, &section.stats(), &trace.symbols, &opts);
    s
}

/// The function_graph text, as `graph::write_trace` prints it.
pub fn graph_text(trace: &Trace, section: &Section) -> String {
    let events: Vec<GraphEvent> = section
        .events()
        .iter()
        .filter_map(GraphEvent::from_ring)
        .collect();
    let mut s = String::new();
    let _ = write_graph(
        &mut s,
        &events,
        &trace.symbols,
        &trace.graph_options,
        section.nr_cpus,
    );
    s
}

/// The text of `tracer`'s section.
pub fn text(trace: &Trace, section: &Section) -> String {
    match section.tracer {
        Tracer::Function => function_text(trace, section),
        Tracer::Graph => graph_text(trace, section),
    }
}

/// A trace the kernel printed: its lines from `# tracer: NAME` to the line
/// before its counters line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelText {
    /// Log line of `# tracer: NAME`.
    pub first_line: usize,
    /// The lines, each ending in `\n`.
    pub text: String,
}

/// Is `l` the counters line the kernel prints after `tracer`'s trace?
fn is_counters(l: &str, tracer: Tracer) -> bool {
    let prefix = match tracer {
        Tracer::Function => "ftrace: ",
        Tracer::Graph => "function_graph: ",
    };
    l.strip_prefix(prefix).is_some_and(|r| {
        let digits = r.bytes().take_while(u8::is_ascii_digit).count();
        digits > 0 && r[digits..].starts_with(" recursions refused, ")
    })
}

/// The last trace of `tracer` the kernel printed in `log` before line
/// `before` (the dump's `begin`), if any.
pub fn kernel_text(log: &[u8], tracer: Tracer, before: usize) -> Option<KernelText> {
    let title = format!("# tracer: {}", tracer.name());
    let mut found: Option<KernelText> = None;
    let mut open = false;
    for (n, raw) in lines(log) {
        if n >= before {
            break;
        }
        let l = String::from_utf8_lossy(raw);
        if l == title {
            found = Some(KernelText {
                first_line: n,
                text: String::new(),
            });
            open = true;
        } else if open && (is_counters(&l, tracer) || l.starts_with("# tracer: ")) {
            open = false;
            continue;
        }
        if open && let Some(k) = found.as_mut() {
            k.text.push_str(&l);
            k.text.push('\n');
        }
    }
    found
}

/// Compares the kernel's text with the rebuilt one; the first difference
/// names the log line and shows both lines.
pub fn compare(kernel: &KernelText, rebuilt: &str, tracer: Tracer) -> Result<(), String> {
    let mut k = kernel.text.lines();
    let mut r = rebuilt.lines();
    let mut i = 0;
    loop {
        let line = kernel.first_line + i;
        match (k.next(), r.next()) {
            (None, None) => return Ok(()),
            (Some(a), Some(b)) if a == b => {}
            (Some(a), Some(b)) => {
                return Err(format!(
                    "line {line}: the {} trace differs from the kernel's:\n  kernel:  {a}\n  rebuilt: {b}",
                    tracer.name()
                ));
            }
            (Some(a), None) => {
                return Err(format!(
                    "line {line}: the rebuilt {} trace ends before the kernel's line:\n  kernel:  {a}",
                    tracer.name()
                ));
            }
            (None, Some(b)) => {
                return Err(format!(
                    "line {line}: the rebuilt {} trace goes on after the kernel's ends:\n  rebuilt: {b}",
                    tracer.name()
                ));
            }
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "boot\n# tracer: function\n#\n a <-b\nftrace: 0 recursions refused, 0 events lost\n\
# tracer: function_graph\n#\n 0)  f();\nfunction_graph: 0 recursions refused, 0 events lost, 0 overruns\n\
ftrace-dump: begin\n";

    #[test]
    fn finds_each_trace_without_its_counters() {
        let f = kernel_text(LOG.as_bytes(), Tracer::Function, 10).unwrap();
        assert_eq!(
            f,
            KernelText {
                first_line: 2,
                text: "# tracer: function\n#\n a <-b\n".into()
            }
        );
        let g = kernel_text(LOG.as_bytes(), Tracer::Graph, 10).unwrap();
        assert_eq!(g.first_line, 6);
        assert_eq!(g.text, "# tracer: function_graph\n#\n 0)  f();\n");
        assert_eq!(kernel_text(LOG.as_bytes(), Tracer::Graph, 6), None);
    }

    #[test]
    fn compare_names_the_first_differing_line() {
        let f = kernel_text(LOG.as_bytes(), Tracer::Function, 10).unwrap();
        assert_eq!(
            compare(&f, "# tracer: function\n#\n a <-b\n", Tracer::Function),
            Ok(())
        );
        assert_eq!(
            compare(&f, "# tracer: function\n#\n a <-c\n", Tracer::Function),
            Err("line 4: the function trace differs from the kernel's:\n  kernel:   a <-b\n  rebuilt:  a <-c".into())
        );
        assert_eq!(
            compare(&f, "# tracer: function\n#\n", Tracer::Function),
            Err("line 4: the rebuilt function trace ends before the kernel's line:\n  kernel:   a <-b".into())
        );
    }
}
