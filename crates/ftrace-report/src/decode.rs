//! The payload (docs/dump-format.md, "Payload") decoded into events, the
//! way the kernel reads its own buffers.
//!
//! The reader follows `ftrace::tracer::dump::parse_payload` field by field
//! (a test checks that both agree on intact payloads) but knows where the
//! payload has holes, so that it keeps whatever does not depend on them:
//! a damaged symbol table leaves addresses unnamed, a CPU whose buffer
//! words are damaged keeps the events before the damage, and a section
//! whose header is damaged ends the readable part.

use ftrace::Symbols;
use ftrace::tracer::dump::VERSION;
use ftrace::tracer::graph::GraphOptions;
use ftrace::tracer::output::TraceOptions;
use ftrace::tracer::ring::{CpuStats, Payload as Ev, RawCpu, RingEvent, decode_words};
use ftrace_abi::symtab::SymbolTable;

use crate::console::Payload;
use crate::problem::{Error, Problem};

/// Which tracer a section's buffer belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tracer {
    /// `FUNC`: the function tracer.
    Function,
    /// `GRPH`: function_graph.
    Graph,
}

impl Tracer {
    /// Linux's name of the tracer.
    pub fn name(self) -> &'static str {
        match self {
            Tracer::Function => "function",
            Tracer::Graph => "function_graph",
        }
    }
}

/// One CPU's buffer, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuData {
    /// CPU number.
    pub cpu: u32,
    /// Its counters (`in_buffer`: the events decoded).
    pub stats: CpuStats,
    /// Its events, oldest first.
    pub events: Vec<RingEvent>,
}

/// One tracer's buffers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// Whose buffer.
    pub tracer: Tracer,
    /// CPUs of the buffer (the kernel's `#P`).
    pub nr_cpus: usize,
    /// Base of 32-bit address offsets.
    pub text_base: u64,
    /// Per-CPU buffer size in 32-bit words.
    pub capacity_words: u32,
    /// Overwrite mode.
    pub overwrite: bool,
    /// The CPUs that could be read, in the dump's order.
    pub cpus: Vec<CpuData>,
}

impl Section {
    /// Every CPU's events merged in timestamp order, stable (CPU 0's
    /// first on equal timestamps), as the kernel's `RingBuffer::events`
    /// merges them.
    pub fn events(&self) -> Vec<RingEvent> {
        let mut v: Vec<RingEvent> = self.cpus.iter().flat_map(|c| c.events.clone()).collect();
        v.sort_by_key(|e| e.ts);
        v
    }

    /// True when no CPU had an event written to it: the kernel creates
    /// both tracers' buffers and dumps them whichever tracers ran, so an
    /// empty one usually belongs to a tracer that was not started.
    pub fn is_empty(&self) -> bool {
        self.cpus
            .iter()
            .all(|c| c.stats.written == 0 && c.events.is_empty())
    }

    /// Counters indexed by CPU number, `nr_cpus` of them (zero for a CPU
    /// that could not be read).
    pub fn stats(&self) -> Vec<CpuStats> {
        let mut s = vec![CpuStats::default(); self.nr_cpus];
        for c in &self.cpus {
            if let Some(slot) = s.get_mut(c.cpu as usize) {
                *slot = c.stats;
            }
        }
        s
    }
}

/// Everything a dump holds, decoded.
#[derive(Debug, Clone)]
pub struct Trace {
    /// Kernel word size in bits (32 or 64).
    pub word_bits: u32,
    /// Arch name (`x86_64`, `i686`, `ppc64`).
    pub arch: String,
    /// Trace clock name (`local`, `global`, `counter`).
    pub clock: String,
    /// function_graph display options.
    pub graph_options: GraphOptions,
    /// Function-tracer text options.
    pub trace_options: TraceOptions,
    /// Function names (empty when the table was damaged).
    pub symbols: Symbols,
    /// The buffers that could be read, in the dump's order.
    pub sections: Vec<Section>,
}

impl Trace {
    /// The section of `tracer`, if the dump has it.
    pub fn section(&self, tracer: Tracer) -> Option<&Section> {
        self.sections.iter().find(|s| s.tracer == tracer)
    }

    /// Bytes of the kernel's words (4 or 8).
    pub fn word_bytes(&self) -> usize {
        if self.word_bits == 32 { 4 } else { 8 }
    }
}

/// More CPUs than a section may claim (a damaged count).
pub const MAX_CPUS: u32 = 4096;

/// A deeper function_graph event is taken as damaged.
pub const MAX_DEPTH: u32 = 10_000;

/// Why a field could not be read.
enum Miss {
    /// Its bytes were lost (damage at this log line, dump line `seq`).
    Lost { line: usize, seq: usize },
    /// Past the end of the payload, or a value that makes no sense.
    Bad { offset: usize, what: String },
}

struct Reader<'a> {
    p: &'a Payload,
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize, what: &str) -> Result<&[u8], Miss> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.p.bytes.len())
            .ok_or_else(|| Miss::Bad {
                offset: self.at,
                what: format!("{what} runs past the end of the payload"),
            })?;
        if let Some(d) = self.p.damage(self.at, end) {
            return Err(Miss::Lost {
                line: d.line,
                seq: d.seq,
            });
        }
        let s = &self.p.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u32(&mut self, what: &str) -> Result<u32, Miss> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self, what: &str) -> Result<u64, Miss> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    fn string(&mut self, what: &str) -> Result<String, Miss> {
        let n = self.u32(what)? as usize;
        Ok(String::from_utf8_lossy(self.take(n, what)?).into_owned())
    }
}

/// Turns a [`Miss`] into a problem saying what was lost and what follows.
fn miss_problem(p: &Payload, m: Miss, what: &str, consequence: &str) -> Problem {
    match m {
        Miss::Lost { line, seq } => Problem::at(
            line,
            format!("{what} lost with dump line {seq}: {consequence}"),
        ),
        Miss::Bad { offset, what: why } => Problem::at(
            p.line_of(offset),
            format!("dump payload byte {offset}: {why}: {consequence}"),
        ),
    }
}

/// Decodes the payload. Problems with parts of it are added to `problems`;
/// an error means nothing can be rebuilt (the fields before the symbol
/// table are lost, or the magic or version is wrong).
pub fn decode(p: &Payload, problems: &mut Vec<Problem>) -> Result<Trace, Error> {
    let mut r = Reader { p, at: 0 };
    let fatal = |m: Miss| {
        Error::Fatal(miss_problem(
            p,
            m,
            "the dump's first fields",
            "nothing can be decoded",
        ))
    };
    if r.take(4, "magic").map_err(fatal)? != b"RFTD" {
        return Err(Error::Fatal(Problem::at(
            p.line_of(0),
            "the payload does not start with the magic `RFTD`",
        )));
    }
    let version = r.u32("version").map_err(fatal)?;
    if version != VERSION {
        return Err(Error::Fatal(Problem::at(
            p.line_of(4),
            format!("payload version {version}; this tool reads version {VERSION}"),
        )));
    }
    let word_bits = r.u32("word size").map_err(fatal)?;
    if word_bits != 32 && word_bits != 64 {
        return Err(Error::Fatal(Problem::at(
            p.line_of(8),
            format!("kernel word size {word_bits} bits; expected 32 or 64"),
        )));
    }
    let arch = r.string("arch name").map_err(fatal)?;
    let clock = r.string("clock name").map_err(fatal)?;
    let graph_options = GraphOptions::from_bits(r.u32("graph options").map_err(fatal)?);
    let trace_options = TraceOptions::from_bits(r.u32("trace options").map_err(fatal)?);
    let n = r.u32("symbol table length").map_err(fatal)? as usize;
    let sym_start = r.at;
    let symbols = match r.take(n, "symbol table") {
        Ok(bytes) => {
            let leaked: &'static [u8] = Box::leak(bytes.to_vec().into_boxed_slice());
            match SymbolTable::parse(leaked) {
                Ok(t) => Symbols::new(Some(t)),
                Err(e) => {
                    problems.push(Problem::at(
                        p.line_of(sym_start),
                        format!("{e}: functions are shown as addresses"),
                    ));
                    Symbols::new(None)
                }
            }
        }
        Err(Miss::Lost { line, seq }) => {
            problems.push(Problem::at(
                line,
                format!(
                    "the symbol table lost with dump line {seq}: functions are shown as addresses"
                ),
            ));
            r.at = sym_start + n;
            Symbols::new(None)
        }
        Err(m) => return Err(fatal(m)),
    };
    let mut trace = Trace {
        word_bits,
        arch,
        clock,
        graph_options,
        trace_options,
        symbols,
        sections: Vec::new(),
    };
    let wide = word_bits == 64;
    loop {
        let tag_at = r.at;
        let tag = match r.take(4, "section tag") {
            Ok(t) => t.to_vec(),
            Err(m) => {
                problems.push(miss_problem(
                    p,
                    m,
                    "the next section tag or `END!`",
                    "any sections from here on are dropped",
                ));
                break;
            }
        };
        let tracer = match &tag[..] {
            b"END!" => break,
            b"FUNC" => Tracer::Function,
            b"GRPH" => Tracer::Graph,
            _ => {
                problems.push(Problem::at(
                    p.line_of(tag_at),
                    format!(
                        "dump payload byte {tag_at}: section tag `{}` is none of FUNC, GRPH, END!: the sections from here on are dropped",
                        String::from_utf8_lossy(&tag).escape_default()
                    ),
                ));
                break;
            }
        };
        let name = tracer.name();
        let header = (|| -> Result<_, Miss> {
            Ok((
                r.u32("CPU count")?,
                r.u64("text base")?,
                r.u32("buffer size")?,
                r.u32("overwrite flag")? != 0,
            ))
        })();
        let (nr, text_base, capacity_words, overwrite) = match header {
            Ok(h) => h,
            Err(m) => {
                problems.push(miss_problem(
                    p,
                    m,
                    &format!("the {name} section's header"),
                    "the sections from here on are dropped",
                ));
                break;
            }
        };
        if nr > MAX_CPUS || capacity_words < 16 || !capacity_words.is_power_of_two() {
            problems.push(Problem::at(
                p.line_of(tag_at),
                format!(
                    "the {name} section's header says {nr} CPUs of {capacity_words} words (at most {MAX_CPUS} CPUs of a power of two of at least 16 words): the sections from here on are dropped"
                ),
            ));
            break;
        }
        let mut section = Section {
            tracer,
            nr_cpus: nr as usize,
            text_base,
            capacity_words,
            overwrite,
            cpus: Vec::new(),
        };
        let mut stop = false;
        for _ in 0..nr {
            let fields = (|| -> Result<_, Miss> {
                let cpu = r.u32("CPU number")?;
                let stats = CpuStats {
                    written: r.u64("written count")?,
                    in_buffer: 0,
                    overwritten: r.u64("overwritten count")?,
                    dropped: r.u64("dropped count")?,
                };
                Ok((
                    cpu,
                    stats,
                    r.u64("head timestamp")?,
                    r.u64("head index")?,
                    r.u32("word count")? as usize,
                ))
            })();
            let (cpu, mut stats, head_ts, head_index, nw) = match fields {
                Ok(f) => f,
                Err(m) => {
                    problems.push(miss_problem(
                        p,
                        m,
                        &format!("a CPU header of the {name} section"),
                        "its CPUs from here on and the sections after it are dropped",
                    ));
                    stop = true;
                    break;
                }
            };
            let words_at = r.at;
            let Some(words_end) = nw
                .checked_mul(4)
                .and_then(|b| words_at.checked_add(b))
                .filter(|&e| e <= p.bytes.len())
            else {
                problems.push(Problem::at(
                    p.line_of(words_at),
                    format!(
                        "{name} trace, CPU {cpu}: {nw} buffer words run past the end of the payload: its CPUs from here on and the sections after it are dropped"
                    ),
                ));
                stop = true;
                break;
            };
            let damage = p.damage(words_at, words_end);
            let usable_end = damage.map_or(words_end, |d| d.offset);
            let words: Vec<u32> = p.bytes[words_at..usable_end]
                .as_chunks::<4>()
                .0
                .iter()
                .map(|c| u32::from_le_bytes(*c))
                .collect();
            r.at = words_end;
            let raw = RawCpu {
                head_ts,
                head_index,
                words,
                stats,
            };
            let (mut events, err) = decode_words(
                &raw,
                cpu,
                text_base as usize,
                wide,
                u64::from(capacity_words),
            );
            // A graph depth no call stack reaches: damaged (the text would
            // indent it that deep).
            let deep = events.iter().position(|e| match e.payload {
                Ev::GraphEntry { depth, .. } | Ev::GraphReturn { depth, .. } => depth > MAX_DEPTH,
                Ev::Function { .. } => false,
            });
            if let Some(i) = deep {
                problems.push(Problem::at(
                    p.line_of(words_at),
                    format!(
                        "{name} trace, CPU {cpu}: event {i} has a call depth over {MAX_DEPTH}: the {i} events before it are kept"
                    ),
                ));
                events.truncate(i);
            }
            match (damage, err) {
                (Some(d), _) => problems.push(Problem::at(
                    d.line,
                    format!(
                        "{name} trace, CPU {cpu}: buffer words lost with dump line {}: the {} events before them are kept, the rest of this CPU is dropped",
                        d.seq,
                        events.len()
                    ),
                )),
                (None, Some(e)) => {
                    let word = match e {
                        ftrace::tracer::ring::DecodeError::BadType { at, .. }
                        | ftrace::tracer::ring::DecodeError::Truncated { at } => at,
                    };
                    problems.push(Problem::at(
                        p.line_of(words_at + word * 4),
                        format!(
                            "{name} trace, CPU {cpu}: {e}: the {} events before it are kept",
                            events.len()
                        ),
                    ));
                }
                (None, None) if deep.is_none() => {
                    let sum = (events.len() as u64)
                        .checked_add(stats.overwritten)
                        .and_then(|s| s.checked_add(stats.dropped));
                    if sum != Some(stats.written) {
                        problems.push(Problem::at(
                            p.line_of(words_at),
                            format!(
                                "{name} trace, CPU {cpu}: its counters disagree with its buffer: {} written, but {} in the buffer + {} overwritten + {} dropped",
                                stats.written,
                                events.len(),
                                stats.overwritten,
                                stats.dropped
                            ),
                        ));
                    }
                }
                (None, None) => {}
            }
            stats.in_buffer = events.len() as u64;
            section.cpus.push(CpuData { cpu, stats, events });
        }
        trace.sections.push(section);
        if stop {
            break;
        }
    }
    Ok(trace)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::Chunk;
    use ftrace::platform::Context;
    use ftrace::tracer::dump::{
        BYTES_PER_LINE, DumpInfo, Section as DumpSection, parse_payload, payload,
    };
    use ftrace::tracer::ring::RingBuffer;
    use ftrace_abi::symtab::encode;

    const BASE: usize = 0x10_0000;

    fn sample() -> Vec<u8> {
        let f = RingBuffer::new(2, 256, BASE);
        let g = RingBuffer::new(2, 256, BASE);
        for i in 0..6u64 {
            f.function(
                (i % 2) as usize,
                1000 + i * 10,
                Context::Normal,
                false,
                BASE + 0x10,
                BASE + 0x24,
            );
        }
        g.graph_entry(0, 2000, Context::Normal, false, BASE + 0x10, 0);
        g.graph_return(0, 2500, Context::Irq, false, BASE + 0x10, 0, 500, 7);
        let syms = encode(
            &[
                (BASE as u64, 0x20, "a::f"),
                (BASE as u64 + 0x20, 0x20, "a::g"),
            ],
            false,
        );
        let info = DumpInfo {
            arch: "x86_64",
            clock: "local",
            symtab: &syms,
            graph_options: GraphOptions::default().bits(),
            trace_options: TraceOptions::default().bits(),
        };
        payload(
            &info,
            &[
                DumpSection {
                    tag: *b"FUNC",
                    ring: &f,
                },
                DumpSection {
                    tag: *b"GRPH",
                    ring: &g,
                },
            ],
        )
    }

    fn intact(bytes: Vec<u8>) -> Payload {
        let n = bytes.len().div_ceil(BYTES_PER_LINE);
        Payload {
            bytes,
            chunks: (0..n).map(|i| Chunk::Good(i + 2)).collect(),
            begin_line: 1,
        }
    }

    #[test]
    fn agrees_with_the_reference_parser() {
        let bytes = sample();
        let reference = parse_payload(&bytes).unwrap();
        let mut problems = Vec::new();
        let t = decode(&intact(bytes), &mut problems).unwrap();
        assert_eq!(problems, []);
        assert_eq!(t.word_bits, reference.word_bits);
        assert_eq!((t.arch.as_str(), t.clock.as_str()), ("x86_64", "local"));
        assert_eq!(t.sections.len(), reference.sections.len());
        for (s, r) in t.sections.iter().zip(&reference.sections) {
            assert_eq!(
                (s.text_base, s.capacity_words, s.overwrite),
                (r.text_base, r.capacity_words, r.overwrite)
            );
            assert_eq!(s.cpus.len(), r.cpus.len());
            for (c, rc) in s.cpus.iter().zip(&r.cpus) {
                let (ev, err) = decode_words(
                    &rc.raw,
                    rc.cpu,
                    r.text_base as usize,
                    true,
                    u64::from(r.capacity_words),
                );
                assert_eq!(err, None);
                assert_eq!(c.events, ev);
                assert_eq!(
                    (c.cpu, c.stats.written, c.stats.overwritten),
                    (rc.cpu, rc.raw.stats.written, rc.raw.stats.overwritten)
                );
            }
        }
        let f = t.section(Tracer::Function).unwrap();
        assert_eq!(
            f.events().iter().map(|e| (e.ts, e.cpu)).collect::<Vec<_>>(),
            [
                (1000, 0),
                (1010, 1),
                (1020, 0),
                (1030, 1),
                (1040, 0),
                (1050, 1)
            ]
        );
        assert_eq!(t.symbols.resolve(BASE + 0x24), Some(("a::g", 4)));
    }

    #[test]
    fn damage_keeps_what_does_not_depend_on_it() {
        let bytes = sample();
        let d = parse_payload(&bytes).unwrap();
        // The last chunk holds the graph section's words: lose it.
        let mut p = intact(bytes.clone());
        let last = p.chunks.len() - 1;
        p.chunks[last] = Chunk::Lost(99);
        let mut problems = Vec::new();
        let t = decode(&p, &mut problems).unwrap();
        assert_eq!(t.section(Tracer::Function).unwrap().events().len(), 6);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].to_string().starts_with("line 99: "),
            "{}",
            problems[0]
        );
        // Lose the symbol table's first chunk: names go, events stay.
        let mut p = intact(bytes);
        p.chunks[1] = Chunk::Lost(3);
        let mut problems = Vec::new();
        let t = decode(&p, &mut problems).unwrap();
        assert_eq!(
            problems.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["line 3: the symbol table lost with dump line 1: functions are shown as addresses"]
        );
        assert!(t.symbols.table().is_none());
        assert_eq!(t.sections.len(), d.sections.len());
    }
}
