//! Folded stacks (`a;b;c 1234`, Brendan Gregg's format) of the
//! function_graph events, and the flame graph SVG drawn from them by
//! `inferno`. A stack is the chain of nested calls on one CPU; its count is
//! the nanoseconds spent in the innermost function itself (its duration
//! less its children's).

use std::collections::BTreeMap;

use ftrace::tracer::graph::{GraphEvent, GraphKind};

use crate::decode::{Section, Trace};

fn name(trace: &Trace, addr: usize) -> String {
    trace
        .symbols
        .resolve(addr)
        .map_or_else(|| format!("{addr:#x}"), |(n, _)| n.to_owned())
}

/// The folded stacks of a function_graph section, sorted, one line each.
/// A return whose entry was lost (overwritten) counts as a call of its
/// own under the calls still open below it.
pub fn folded(trace: &Trace, section: &Section) -> Vec<String> {
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for c in &section.cpus {
        // Open calls: (depth, function name, children's nanoseconds).
        let mut stack: Vec<(u32, String, u64)> = Vec::new();
        for g in c.events.iter().filter_map(GraphEvent::from_ring) {
            match g.kind {
                GraphKind::Entry => {
                    stack.retain(|(d, _, _)| *d < g.depth);
                    stack.push((g.depth, name(trace, g.func), 0));
                }
                GraphKind::Return => {
                    stack.retain(|(d, _, _)| *d <= g.depth);
                    let dur = g.rettime.saturating_sub(g.calltime);
                    let f = name(trace, g.func);
                    let (own, kids) = match stack.last() {
                        Some((d, n, kids)) if *d == g.depth && *n == f => {
                            let kids = *kids;
                            stack.pop();
                            (true, kids)
                        }
                        _ => (false, 0),
                    };
                    let mut path: Vec<&str> = stack.iter().map(|(_, n, _)| n.as_str()).collect();
                    path.push(&f);
                    let self_ns = dur.saturating_sub(kids);
                    if self_ns > 0 {
                        *counts.entry(path.join(";")).or_default() += self_ns;
                    }
                    if own && let Some(parent) = stack.last_mut() {
                        parent.2 += dur;
                    }
                }
            }
        }
    }
    counts
        .into_iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect()
}

/// The flame graph SVG of folded stacks; `None` when there are none.
pub fn flamegraph_svg(trace: &Trace, folded: &[String]) -> Option<Vec<u8>> {
    if folded.is_empty() {
        return None;
    }
    let mut opts = inferno::flamegraph::Options::default();
    opts.title = format!("function_graph ({})", trace.arch);
    opts.count_name = if trace.clock == "counter" {
        "counts"
    } else {
        "ns"
    }
    .to_owned();
    let mut svg = Vec::new();
    inferno::flamegraph::from_lines(&mut opts, folded.iter().map(String::as_str), &mut svg).ok()?;
    Some(svg)
}
