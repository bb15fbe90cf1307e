//! Chrome's trace-event JSON (the format Perfetto's UI and
//! `chrome://tracing` open): one process per tracer whose buffer is not
//! empty, one thread (track) per CPU. function_graph calls are complete
//! slices (`"ph": "X"`, from each return, which carries its entry time; an
//! entry still open when the buffers were dumped is a begin slice `"B"`
//! without its end), function events are thread-scoped instants
//! (`"ph": "i"`). Timestamps are
//! microseconds with nanosecond decimals, as the format wants.

use ftrace::Symbols;
use ftrace::platform::Context;
use ftrace::tracer::graph::{GraphEvent, GraphKind};
use ftrace::tracer::ring::{Payload, RingEvent};
use serde_json::{Value, json};

use crate::decode::{Section, Trace, Tracer};

/// A function's name, or its address when the table does not know it.
fn name(symbols: &Symbols, addr: usize) -> String {
    symbols
        .resolve(addr)
        .map_or_else(|| format!("{addr:#x}"), |(n, _)| n.to_owned())
}

fn context(c: Context) -> &'static str {
    match c {
        Context::Normal => "normal",
        Context::Softirq => "softirq",
        Context::Irq => "hardirq",
        Context::Nmi => "nmi",
    }
}

/// Nanoseconds as the format's microseconds.
fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

/// Events with their sort key: start (ns) and, to put a parent before a
/// child starting at the same time, the negated duration.
type Keyed = Vec<(u64, i128, Value)>;

fn section_events(trace: &Trace, s: &Section, pid: u32, meta: &mut Vec<Value>, out: &mut Keyed) {
    meta.push(json!({
        "name": "process_name", "ph": "M", "pid": pid, "tid": 0,
        "args": { "name": format!("{} ({})", s.tracer.name(), trace.arch) },
    }));
    meta.push(json!({
        "name": "process_sort_index", "ph": "M", "pid": pid, "tid": 0,
        "args": { "sort_index": pid },
    }));
    for c in &s.cpus {
        meta.push(json!({
            "name": "thread_name", "ph": "M", "pid": pid, "tid": c.cpu,
            "args": { "name": format!("CPU {}", c.cpu) },
        }));
    }
    // Per CPU: index of each entry's return, to find entries left open.
    for c in &s.cpus {
        let mut open: Vec<(u32, &RingEvent)> = Vec::new();
        for e in &c.events {
            match (s.tracer, e.payload) {
                (Tracer::Function, Payload::Function { ip, parent_ip }) => out.push((e.ts, 0, json!({
                    "name": name(&trace.symbols, ip), "cat": "function", "ph": "i", "s": "t",
                    "ts": us(e.ts), "pid": pid, "tid": e.cpu,
                    "args": { "parent": name(&trace.symbols, parent_ip), "context": context(e.context) },
                }))),
                (Tracer::Graph, _) => {
                    let Some(g) = GraphEvent::from_ring(e) else { continue };
                    match g.kind {
                        GraphKind::Entry => {
                            open.retain(|(d, _)| *d < g.depth);
                            open.push((g.depth, e));
                        }
                        GraphKind::Return => {
                            if let Some(i) = open.iter().rposition(|(d, _)| *d == g.depth) {
                                open.truncate(i);
                            }
                            let mut args = json!({ "depth": g.depth, "context": context(g.context) });
                            if trace.graph_options.retval {
                                args["retval"] = json!(format!("{:#x}", g.retval));
                            }
                            let dur = g.rettime.saturating_sub(g.calltime);
                            out.push((g.calltime, -i128::from(dur), json!({
                                "name": name(&trace.symbols, g.func), "cat": "function_graph",
                                "ph": "X", "ts": us(g.calltime), "dur": us(dur),
                                "pid": pid, "tid": g.cpu, "args": args,
                            })));
                        }
                    }
                }
                _ => {}
            }
        }
        for (depth, e) in open {
            if let Some(g) = GraphEvent::from_ring(e) {
                // Open to the end: before anything else starting then.
                out.push((g.calltime, i128::MIN, json!({
                    "name": name(&trace.symbols, g.func), "cat": "function_graph",
                    "ph": "B", "ts": us(g.calltime), "pid": pid, "tid": g.cpu,
                    "args": { "depth": depth, "context": context(g.context), "returned": false },
                })));
            }
        }
    }
}

/// The JSON document of every section of `trace`: metadata first, then
/// the events by start time (a parent slice before its children).
pub fn chrome_json(trace: &Trace) -> Value {
    let mut meta = Vec::new();
    let mut keyed = Vec::new();
    for s in trace.sections.iter().filter(|s| !s.is_empty()) {
        let pid = match s.tracer {
            Tracer::Function => 1,
            Tracer::Graph => 2,
        };
        section_events(trace, s, pid, &mut meta, &mut keyed);
    }
    keyed.sort_by_key(|(ts, neg_dur, _)| (*ts, *neg_dur));
    let mut events = meta;
    events.extend(keyed.into_iter().map(|(_, _, v)| v));
    json!({
        "traceEvents": events,
        "displayTimeUnit": "ns",
        "otherData": { "arch": trace.arch, "clock": trace.clock, "tool": concat!("ftrace-report ", env!("CARGO_PKG_VERSION")) },
    })
}
