//! A `trace.dat` (trace-cmd's file format version 6, uncompressed,
//! `man 5 trace-cmd.dat.v6`) of one tracer's buffers, for `trace-cmd
//! report` and KernelShark.
//!
//! The headers and event formats are Linux's own texts (the `header_page`
//! and `header_event` files and the `ftrace` events `function`,
//! `funcgraph_entry`, `funcgraph_exit`, as Linux 6.12 writes them), with
//! `unsigned long` fields of the traced kernel's word size, so that
//! trace-cmd's own `function` and `function_graph` plugins print the
//! events. The kallsyms section is the dump's symbol table, and each CPU
//! gets one data section of ring-buffer pages in Linux's layout: a page
//! header (timestamp, commit) and events with 27-bit time deltas (a
//! time-extend record before a longer gap). A CPU that lost events has
//! Linux's "missed events" flags and count on its first page, which
//! trace-cmd reports as `CPU:N [K EVENTS DROPPED]`.
//!
//! Everything is little-endian, whatever the traced arch: the file says so
//! and trace-cmd reads either order.

use ftrace::platform::Context;
use ftrace::tracer::graph::{GraphEvent, GraphKind};
use ftrace::tracer::ring::{Payload, RingEvent};

use crate::decode::{Section, Trace, Tracer};

/// Page size of the CPU data (Linux's ring-buffer page on every arch here).
pub const PAGE_SIZE: usize = 4096;

/// Event ids (Linux's `TRACE_FN`, `TRACE_GRAPH_ENT`, `TRACE_GRAPH_RET`).
const ID_FUNCTION: u16 = 1;
const ID_GRAPH_EXIT: u16 = 10;
const ID_GRAPH_ENTRY: u16 = 11;

/// Linux's `common_flags` bits.
const FLAG_IRQS_OFF: u8 = 0x01;
const FLAG_HARDIRQ: u8 = 0x08;
const FLAG_SOFTIRQ: u8 = 0x10;
const FLAG_NMI: u8 = 0x40;

/// Ring-buffer record types (`header_event`).
const TYPE_TIME_EXTEND: u32 = 30;
/// Largest delta a record header holds.
const DELTA_MAX: u64 = (1 << 27) - 1;
/// Commit flags of a page that follows lost events (count stored after the
/// data).
const MISSED_EVENTS: u64 = 1 << 31;
const MISSED_STORED: u64 = 1 << 30;

/// `header_page` for a kernel whose `long` is `lb` bytes.
fn header_page(lb: usize) -> String {
    let data = 8 + lb;
    format!(
        "\tfield: u64 timestamp;\toffset:0;\tsize:8;\tsigned:0;\n\
         \tfield: local_t commit;\toffset:8;\tsize:{lb};\tsigned:1;\n\
         \tfield: int overwrite;\toffset:8;\tsize:1;\tsigned:1;\n\
         \tfield: char data;\toffset:{data};\tsize:{};\tsigned:0;\n",
        PAGE_SIZE - data
    )
}

/// `header_event`, as Linux prints it.
const HEADER_EVENT: &str = "# compressed entry header\n\
\ttype_len    :    5 bits\n\
\ttime_delta  :   27 bits\n\
\tarray       :   32 bits\n\
\n\
\tpadding     : type == 29\n\
\ttime_extend : type == 30\n\
\ttime_stamp : type == 31\n\
\tdata max type_len  == 28\n";

const COMMON_FIELDS: &str = "\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n\
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n\
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n";

/// One event's layout: its fields `(declaration, offset, size, signed)`.
struct Format {
    name: &'static str,
    id: u16,
    fields: Vec<(&'static str, usize, usize, bool)>,
    print: &'static str,
    /// Bytes of a record (fields, rounded up to 4).
    size: usize,
}

impl Format {
    fn text(&self) -> String {
        let mut s = format!(
            "name: {}\nID: {}\nformat:\n{COMMON_FIELDS}",
            self.name, self.id
        );
        for (decl, off, size, signed) in &self.fields {
            s += &format!(
                "\tfield:{decl};\toffset:{off};\tsize:{size};\tsigned:{};\n",
                u8::from(*signed)
            );
        }
        s + "\nprint fmt: " + self.print + "\n"
    }
}

/// Lays out fields of `(declaration, size, signed)` after the common
/// header, aligned to their size (at most the word size: 4 on 32-bit
/// kernels, like `u64` in an i386 struct).
fn layout(
    name: &'static str,
    id: u16,
    lb: usize,
    fields: &[(&'static str, usize, bool)],
    print: &'static str,
) -> Format {
    let mut off: usize = 8;
    let mut out = Vec::new();
    for &(decl, size, signed) in fields {
        let align = size.min(lb);
        off = off.div_ceil(align) * align;
        out.push((decl, off, size, signed));
        off += size;
    }
    Format {
        name,
        id,
        fields: out,
        print,
        size: off.div_ceil(4) * 4,
    }
}

/// Linux's `function` event.
fn function_format(lb: usize) -> Format {
    layout(
        "function",
        ID_FUNCTION,
        lb,
        &[
            ("unsigned long ip", lb, false),
            ("unsigned long parent_ip", lb, false),
        ],
        "\" %ps <-- %ps\", (void *)REC->ip, (void *)REC->parent_ip",
    )
}

/// Linux's `funcgraph_entry` event.
fn graph_entry_format(lb: usize) -> Format {
    layout(
        "funcgraph_entry",
        ID_GRAPH_ENTRY,
        lb,
        &[("unsigned long func", lb, false), ("int depth", 4, true)],
        "\"--> %ps (%d)\", (void *)REC->func, REC->depth",
    )
}

/// Linux's `funcgraph_exit` event (its print format's `over: %d` shows the
/// depth: Linux's own slip, kept).
fn graph_exit_format(lb: usize) -> Format {
    layout(
        "funcgraph_exit",
        ID_GRAPH_EXIT,
        lb,
        &[
            ("unsigned long func", lb, false),
            ("int depth", 4, true),
            ("unsigned int overrun", 4, false),
            ("unsigned long long calltime", 8, false),
            ("unsigned long long rettime", 8, false),
        ],
        "\"<-- %ps (%d) (start: %llx  end: %llx) over: %d\", (void *)REC->func, REC->depth, REC->calltime, REC->rettime, REC->depth",
    )
}

/// Little-endian writer of one record's fields.
struct Rec<'a> {
    f: &'a Format,
    b: Vec<u8>,
}

impl<'a> Rec<'a> {
    fn new(f: &'a Format, e: &RingEvent) -> Self {
        let mut b = vec![0u8; f.size];
        b[..2].copy_from_slice(&f.id.to_le_bytes());
        b[2] = flags(e);
        Rec { f, b }
    }
    fn set(mut self, i: usize, v: u64) -> Self {
        let (_, off, size, _) = self.f.fields[i];
        self.b[off..off + size].copy_from_slice(&v.to_le_bytes()[..size]);
        self
    }
}

fn flags(e: &RingEvent) -> u8 {
    let ctx = match e.context {
        Context::Normal => 0,
        Context::Softirq => FLAG_SOFTIRQ,
        Context::Irq => FLAG_HARDIRQ,
        Context::Nmi => FLAG_NMI,
    };
    ctx | if e.irqs_off { FLAG_IRQS_OFF } else { 0 }
}

/// Pages of one CPU's events.
struct Pages {
    lb: usize,
    out: Vec<u8>,
    /// Start of the page being filled, its data length, its last timestamp.
    page: Option<(usize, usize, u64)>,
    /// Events lost before the first page (stored on it).
    lost: u64,
}

impl Pages {
    fn data_start(&self) -> usize {
        8 + self.lb
    }

    /// Room for data in a page (the lost-events count needs a word after
    /// the data of the first page).
    fn data_room(&self) -> usize {
        PAGE_SIZE - self.data_start() - self.lb
    }

    fn finish_page(&mut self) {
        if let Some((start, len, _)) = self.page.take() {
            let mut commit = len as u64;
            if start == 0 && self.lost > 0 {
                commit |= MISSED_EVENTS | MISSED_STORED;
                let at = start + self.data_start() + len;
                let lost = self.lost.to_le_bytes();
                self.out[at..at + self.lb].copy_from_slice(&lost[..self.lb]);
            }
            let c = commit.to_le_bytes();
            self.out[start + 8..start + 8 + self.lb].copy_from_slice(&c[..self.lb]);
        }
    }

    fn push(&mut self, ts: u64, body: &[u8]) {
        let rec = 4 + body.len();
        let room = self.data_room();
        let delta = match self.page {
            Some((_, _, last)) => ts.saturating_sub(last),
            None => 0,
        };
        let extend = if delta > DELTA_MAX { 8 } else { 0 };
        if self
            .page
            .is_none_or(|(_, len, _)| len + rec + extend > room)
        {
            self.finish_page();
            let start = self.out.len();
            self.out.resize(start + PAGE_SIZE, 0);
            self.out[start..start + 8].copy_from_slice(&ts.to_le_bytes());
            self.page = Some((start, 0, ts));
        }
        let Some((start, len, last)) = self.page.as_mut() else {
            return;
        };
        let mut at = *start + 8 + self.lb + *len;
        let mut delta = ts.saturating_sub(*last);
        if delta > DELTA_MAX {
            let hdr = TYPE_TIME_EXTEND | (((delta & DELTA_MAX) as u32) << 5);
            self.out[at..at + 4].copy_from_slice(&hdr.to_le_bytes());
            self.out[at + 4..at + 8].copy_from_slice(&((delta >> 27) as u32).to_le_bytes());
            at += 8;
            *len += 8;
            delta = 0;
        }
        let hdr = (body.len() / 4) as u32 | ((delta as u32) << 5);
        self.out[at..at + 4].copy_from_slice(&hdr.to_le_bytes());
        self.out[at + 4..at + rec].copy_from_slice(body);
        *len += rec;
        *last = ts.max(*last);
    }
}

/// The kallsyms text of the dump's symbol table: `address T name` per
/// function. kallsyms has no room for spaces in a name (trace-cmd stops a
/// name at the first one), so the spaces of trait-impl names
/// (`<T as Trait>::f`) are written as no-break spaces (U+00A0), which look
/// the same.
pub fn kallsyms(trace: &Trace) -> String {
    let w = trace.word_bytes() * 2;
    let mut s = String::new();
    if let Some(t) = trace.symbols.table() {
        for sym in t.iter() {
            s += &format!("{:0w$x} T {}\n", sym.addr, sym.name.replace(' ', "\u{a0}"));
        }
    }
    s
}

fn put_str(v: &mut Vec<u8>, s: &str) {
    v.extend_from_slice(s.as_bytes());
    v.push(0);
}

/// One `CPUSTAT` option text (Linux's `per_cpu/cpuN/stats`).
fn cpu_stat(cpu: u32, s: &ftrace::tracer::ring::CpuStats, oldest: u64, now: u64) -> String {
    let t = |ns: u64| format!("{:5}.{:06}", ns / 1_000_000_000, ns % 1_000_000_000 / 1000);
    format!(
        "CPU: {cpu}\nentries: {}\noverrun: {}\ncommit overrun: 0\nbytes: 0\noldest event ts: {}\nnow ts: {}\ndropped events: {}\nread events: {}\n",
        s.in_buffer,
        s.overwritten,
        t(oldest),
        t(now),
        s.dropped,
        s.in_buffer
    )
}

/// The records of one CPU's events, in buffer order: `(timestamp, bytes)`.
fn records(section: &Section, events: &[RingEvent], lb: usize) -> Vec<(u64, Vec<u8>)> {
    let ff = function_format(lb);
    let fe = graph_entry_format(lb);
    let fx = graph_exit_format(lb);
    events
        .iter()
        .filter_map(|e| match (section.tracer, e.payload) {
            (Tracer::Function, Payload::Function { ip, parent_ip }) => Some((
                e.ts,
                Rec::new(&ff, e)
                    .set(0, ip as u64)
                    .set(1, parent_ip as u64)
                    .b,
            )),
            (Tracer::Graph, _) => {
                let g = GraphEvent::from_ring(e)?;
                let r = match g.kind {
                    GraphKind::Entry => Rec::new(&fe, e)
                        .set(0, g.func as u64)
                        .set(1, u64::from(g.depth)),
                    GraphKind::Return => Rec::new(&fx, e)
                        .set(0, g.func as u64)
                        .set(1, u64::from(g.depth))
                        .set(2, 0)
                        .set(3, g.calltime)
                        .set(4, g.rettime),
                };
                Some((e.ts, r.b))
            }
            _ => None,
        })
        .collect()
}

/// The whole `trace.dat` of `section`.
pub fn trace_dat(trace: &Trace, section: &Section) -> Vec<u8> {
    let lb = trace.word_bytes();
    let mut v = Vec::new();
    v.extend_from_slice(&[0x17, 0x08, 0x44]);
    v.extend_from_slice(b"tracing");
    put_str(&mut v, "6");
    v.push(0); // little-endian
    v.push(lb as u8);
    v.extend_from_slice(&(PAGE_SIZE as u32).to_le_bytes());
    let sized8 = |v: &mut Vec<u8>, name: &str, text: &str| {
        put_str(v, name);
        v.extend_from_slice(&(text.len() as u64).to_le_bytes());
        v.extend_from_slice(text.as_bytes());
    };
    sized8(&mut v, "header_page", &header_page(lb));
    sized8(&mut v, "header_event", HEADER_EVENT);
    let formats = match section.tracer {
        Tracer::Function => vec![function_format(lb)],
        Tracer::Graph => vec![graph_exit_format(lb), graph_entry_format(lb)],
    };
    v.extend_from_slice(&(formats.len() as u32).to_le_bytes());
    for f in &formats {
        let t = f.text();
        v.extend_from_slice(&(t.len() as u64).to_le_bytes());
        v.extend_from_slice(t.as_bytes());
    }
    v.extend_from_slice(&0u32.to_le_bytes()); // no other event systems
    let ks = kallsyms(trace);
    v.extend_from_slice(&(ks.len() as u32).to_le_bytes());
    v.extend_from_slice(ks.as_bytes());
    v.extend_from_slice(&0u32.to_le_bytes()); // no trace_printk formats
    v.extend_from_slice(&0u64.to_le_bytes()); // no cmdlines: pid 0 is <idle>
    let nr = section.nr_cpus.max(
        section
            .cpus
            .iter()
            .map(|c| c.cpu as usize + 1)
            .max()
            .unwrap_or(0),
    );
    v.extend_from_slice(&(nr as u32).to_le_bytes());
    v.extend_from_slice(b"options  \0");
    let option = |v: &mut Vec<u8>, id: u16, data: &[u8]| {
        v.extend_from_slice(&id.to_le_bytes());
        v.extend_from_slice(&(data.len() as u32).to_le_bytes());
        v.extend_from_slice(data);
    };
    let clocks = ["local", "global", "counter"]
        .iter()
        .map(|c| {
            if *c == trace.clock {
                format!("[{c}]")
            } else {
                (*c).to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ");
    option(&mut v, 4, format!("{clocks}\n\0").as_bytes());
    option(
        &mut v,
        5,
        format!(
            "rftrace (none) {} {}\0",
            env!("CARGO_PKG_VERSION"),
            trace.arch
        )
        .as_bytes(),
    );
    option(
        &mut v,
        9,
        format!("ftrace-report {}\0", env!("CARGO_PKG_VERSION")).as_bytes(),
    );
    // Pages of every CPU, then their place in the file.
    let mut data: Vec<Vec<u8>> = vec![Vec::new(); nr];
    for c in &section.cpus {
        let mut pages = Pages {
            lb,
            out: Vec::new(),
            page: None,
            lost: c.stats.overwritten + c.stats.dropped,
        };
        for (ts, body) in records(section, &c.events, lb) {
            pages.push(ts, &body);
        }
        pages.finish_page();
        let first = c.events.first().map_or(0, |e| e.ts);
        let last = c.events.last().map_or(0, |e| e.ts);
        option(
            &mut v,
            2,
            format!("{}\0", cpu_stat(c.cpu, &c.stats, first, last)).as_bytes(),
        );
        if let Some(d) = data.get_mut(c.cpu as usize) {
            *d = pages.out;
        }
    }
    option(&mut v, 8, &(nr as u32).to_le_bytes());
    v.extend_from_slice(&0u16.to_le_bytes());
    v.extend_from_slice(b"flyrecord\0");
    let table_end = v.len() + 16 * nr;
    let mut at = table_end.div_ceil(PAGE_SIZE) * PAGE_SIZE;
    for d in &data {
        v.extend_from_slice(&(at as u64).to_le_bytes());
        v.extend_from_slice(&(d.len() as u64).to_le_bytes());
        at += d.len();
    }
    v.resize(table_end.div_ceil(PAGE_SIZE) * PAGE_SIZE, 0);
    for d in &data {
        v.extend_from_slice(d);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_linuxs_texts() {
        // Linux 6.12 x86_64 (shared/reference/linux-trace-dat), byte for byte.
        assert_eq!(
            function_format(8).text(),
            "name: function\nID: 1\nformat:\n\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n\tfield:unsigned long ip;\toffset:8;\tsize:8;\tsigned:0;\n\tfield:unsigned long parent_ip;\toffset:16;\tsize:8;\tsigned:0;\n\nprint fmt: \" %ps <-- %ps\", (void *)REC->ip, (void *)REC->parent_ip\n"
        );
        assert_eq!(
            graph_exit_format(8).text(),
            "name: funcgraph_exit\nID: 10\nformat:\n\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n\tfield:unsigned long func;\toffset:8;\tsize:8;\tsigned:0;\n\tfield:int depth;\toffset:16;\tsize:4;\tsigned:1;\n\tfield:unsigned int overrun;\toffset:20;\tsize:4;\tsigned:0;\n\tfield:unsigned long long calltime;\toffset:24;\tsize:8;\tsigned:0;\n\tfield:unsigned long long rettime;\toffset:32;\tsize:8;\tsigned:0;\n\nprint fmt: \"<-- %ps (%d) (start: %llx  end: %llx) over: %d\", (void *)REC->func, REC->depth, REC->calltime, REC->rettime, REC->depth\n"
        );
        assert_eq!(
            graph_entry_format(8).text(),
            "name: funcgraph_entry\nID: 11\nformat:\n\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n\tfield:unsigned long func;\toffset:8;\tsize:8;\tsigned:0;\n\tfield:int depth;\toffset:16;\tsize:4;\tsigned:1;\n\nprint fmt: \"--> %ps (%d)\", (void *)REC->func, REC->depth\n"
        );
        assert_eq!(
            header_page(8),
            "\tfield: u64 timestamp;\toffset:0;\tsize:8;\tsigned:0;\n\tfield: local_t commit;\toffset:8;\tsize:8;\tsigned:1;\n\tfield: int overwrite;\toffset:8;\tsize:1;\tsigned:1;\n\tfield: char data;\toffset:16;\tsize:4080;\tsigned:0;\n"
        );
        // 32-bit: 4-byte longs, u64 aligned to 4 (as in an i386 struct).
        let x = graph_exit_format(4);
        assert_eq!(
            x.fields.iter().map(|f| (f.1, f.2)).collect::<Vec<_>>(),
            [(8, 4), (12, 4), (16, 4), (20, 8), (28, 8)]
        );
        assert_eq!(
            (x.size, graph_entry_format(4).size, function_format(4).size),
            (36, 16, 16)
        );
        assert_eq!(
            (
                graph_exit_format(8).size,
                graph_entry_format(8).size,
                function_format(8).size
            ),
            (40, 20, 24)
        );
    }

    #[test]
    fn pages_hold_deltas_extends_and_the_lost_count() {
        let mut p = Pages {
            lb: 8,
            out: Vec::new(),
            page: None,
            lost: 3,
        };
        p.push(1000, &[1, 2, 3, 4]);
        p.push(1010, &[5, 6, 7, 8]);
        p.push(1010 + (1 << 27), &[9, 9, 9, 9]);
        p.finish_page();
        let o = &p.out;
        assert_eq!(o.len(), PAGE_SIZE);
        let u32_at = |i: usize| u32::from_le_bytes(o[i..i + 4].try_into().unwrap());
        assert_eq!(u64::from_le_bytes(o[0..8].try_into().unwrap()), 1000);
        // 8 + 8 + 8 (extend) + 8 data bytes, missed events stored.
        assert_eq!(
            u64::from_le_bytes(o[8..16].try_into().unwrap()),
            32 | MISSED_EVENTS | MISSED_STORED
        );
        assert_eq!(u32_at(16), 1);
        assert_eq!(u32_at(24), 1 | (10 << 5));
        assert_eq!((u32_at(32), u32_at(36)), (TYPE_TIME_EXTEND, 1));
        assert_eq!(u32_at(40), 1);
        assert_eq!(u64::from_le_bytes(o[48..56].try_into().unwrap()), 3);
    }
}
