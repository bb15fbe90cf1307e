//! The binary dump (`trace_dump=binary`): the raw ring buffers, their
//! counters and the symbol table, as framed, checksummed base64 lines on
//! the console, so that a host tool (`ftrace-report`) rebuilds everything
//! from a console log alone. The format is documented in
//! `docs/dump-format.md`; [`parse_payload`] is its reference reader.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::{self, Write};

use super::ring::{RawCpu, RingBuffer};

/// Raw payload bytes per console line (64 base64 characters).
pub const BYTES_PER_LINE: usize = 48;
/// Format version.
pub const VERSION: u32 = 1;
/// Every dump line starts with this.
pub const LINE_PREFIX: &str = "ftrace-dump: ";

/// CRC-32 (IEEE 802.3, the one of zlib and `crc32fast`), bitwise.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub fn base64(data: &[u8], out: &mut String) {
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for k in 0..4 {
            if k <= c.len() {
                out.push(B64[(n >> (18 - 6 * k)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
}

/// One ring buffer of the dump.
#[derive(Debug)]
pub struct Section<'a> {
    /// `b"FUNC"` (function tracer) or `b"GRPH"` (function_graph).
    pub tag: [u8; 4],
    /// The buffer.
    pub ring: &'a RingBuffer,
}

/// Everything the dump carries besides the buffers.
#[derive(Debug)]
pub struct DumpInfo<'a> {
    /// Arch name (`x86_64`, `i686`, `ppc64`).
    pub arch: &'a str,
    /// The trace clock's name (`local`, `global`, `counter`).
    pub clock: &'a str,
    /// The embedded symbol table's bytes (`ftrace_abi::symtab` format).
    pub symtab: &'a [u8],
    /// function_graph display options as bits: cpu, overhead, duration,
    /// abstime, proc, retval, tail (bit 0..6).
    pub graph_options: u32,
    /// Function-tracer text options as bits
    /// ([`TraceOptions::bits`](super::output::TraceOptions::bits)).
    pub trace_options: u32,
}

fn put_u32(v: &mut Vec<u8>, x: u32) {
    v.extend_from_slice(&x.to_le_bytes());
}

fn put_u64(v: &mut Vec<u8>, x: u64) {
    v.extend_from_slice(&x.to_le_bytes());
}

fn put_bytes(v: &mut Vec<u8>, b: &[u8]) {
    put_u32(v, b.len() as u32);
    v.extend_from_slice(b);
}

/// The dump's payload (before framing).
pub fn payload(info: &DumpInfo<'_>, sections: &[Section<'_>]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(b"RFTD");
    put_u32(&mut v, VERSION);
    put_u32(&mut v, usize::BITS);
    put_bytes(&mut v, info.arch.as_bytes());
    put_bytes(&mut v, info.clock.as_bytes());
    put_u32(&mut v, info.graph_options);
    put_u32(&mut v, info.trace_options);
    put_bytes(&mut v, info.symtab);
    for s in sections {
        v.extend_from_slice(&s.tag);
        put_u32(&mut v, s.ring.nr_cpus() as u32);
        put_u64(&mut v, s.ring.text_base() as u64);
        put_u32(&mut v, (s.ring.bytes_per_cpu() / 4) as u32);
        put_u32(&mut v, u32::from(s.ring.overwrite()));
        for cpu in 0..s.ring.nr_cpus() {
            let raw = s.ring.raw(cpu).unwrap_or(RawCpu {
                head_ts: 0,
                head_index: 0,
                words: Vec::new(),
                stats: Default::default(),
            });
            put_u32(&mut v, cpu as u32);
            put_u64(&mut v, raw.stats.written);
            put_u64(&mut v, raw.stats.overwritten);
            put_u64(&mut v, raw.stats.dropped);
            put_u64(&mut v, raw.head_ts);
            put_u64(&mut v, raw.head_index);
            put_u32(&mut v, raw.words.len() as u32);
            for w in &raw.words {
                put_u32(&mut v, *w);
            }
        }
    }
    v.extend_from_slice(b"END!");
    v
}

/// Writes the dump as console lines:
///
/// ```text
/// ftrace-dump: begin v1 lines=<N> bytes=<B> crc=<crc32 of the payload>
/// ftrace-dump: <seq> <crc32 of this line's bytes> <base64>
/// ftrace-dump: end
/// ```
pub fn write_binary(
    w: &mut dyn Write,
    info: &DumpInfo<'_>,
    sections: &[Section<'_>],
) -> fmt::Result {
    let p = payload(info, sections);
    let lines = p.len().div_ceil(BYTES_PER_LINE);
    writeln!(
        w,
        "{LINE_PREFIX}begin v{VERSION} lines={lines} bytes={} crc={:08x}",
        p.len(),
        crc32(&p)
    )?;
    let mut s = String::with_capacity(80);
    for (i, chunk) in p.chunks(BYTES_PER_LINE).enumerate() {
        s.clear();
        base64(chunk, &mut s);
        writeln!(w, "{LINE_PREFIX}{i} {:08x} {s}", crc32(chunk))?;
    }
    writeln!(w, "{LINE_PREFIX}end")
}

/// A CPU's section of a parsed dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpCpu {
    /// CPU number.
    pub cpu: u32,
    /// Buffer contents and counters.
    pub raw: RawCpu,
}

/// A ring buffer of a parsed dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpSection {
    /// `FUNC` or `GRPH`.
    pub tag: [u8; 4],
    /// Base of 32-bit address offsets.
    pub text_base: u64,
    /// Buffer size in words.
    pub capacity_words: u32,
    /// Overwrite mode.
    pub overwrite: bool,
    /// Per CPU.
    pub cpus: Vec<DumpCpu>,
}

/// A parsed dump payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dump {
    /// Kernel word size in bits (32 or 64).
    pub word_bits: u32,
    /// Arch name.
    pub arch: String,
    /// Clock name.
    pub clock: String,
    /// function_graph display option bits.
    pub graph_options: u32,
    /// Function-tracer text option bits.
    pub trace_options: u32,
    /// Symbol table bytes.
    pub symtab: Vec<u8>,
    /// The buffers.
    pub sections: Vec<DumpSection>,
}

/// Why a payload could not be parsed: the byte offset and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadError {
    /// Byte offset in the payload.
    pub offset: usize,
    /// What was expected there.
    pub what: &'static str,
}

impl fmt::Display for PayloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "dump payload byte {}: {}", self.offset, self.what)
    }
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&[u8], PayloadError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.b.len());
        let Some(end) = end else {
            return Err(PayloadError {
                offset: self.at,
                what,
            });
        };
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u32(&mut self, what: &'static str) -> Result<u32, PayloadError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self, what: &'static str) -> Result<u64, PayloadError> {
        let lo = u64::from(self.u32(what)?);
        let hi = u64::from(self.u32(what)?);
        Ok(lo | (hi << 32))
    }
    fn bytes(&mut self, what: &'static str) -> Result<Vec<u8>, PayloadError> {
        let n = self.u32(what)? as usize;
        Ok(self.take(n, what)?.to_vec())
    }
}

/// Parses a payload (the reference reader of the format).
pub fn parse_payload(b: &[u8]) -> Result<Dump, PayloadError> {
    let mut r = Reader { b, at: 0 };
    if r.take(4, "magic RFTD")? != b"RFTD" {
        return Err(PayloadError {
            offset: 0,
            what: "magic RFTD",
        });
    }
    let v = r.u32("version")?;
    if v != VERSION {
        return Err(PayloadError {
            offset: 4,
            what: "version 1",
        });
    }
    let word_bits = r.u32("word size")?;
    let arch = String::from_utf8_lossy(&r.bytes("arch name")?).into_owned();
    let clock = String::from_utf8_lossy(&r.bytes("clock name")?).into_owned();
    let graph_options = r.u32("graph options")?;
    let trace_options = r.u32("trace options")?;
    let symtab = r.bytes("symbol table")?;
    let mut sections = Vec::new();
    loop {
        let tag = r.take(4, "section tag or END!")?;
        if tag == b"END!" {
            break;
        }
        let tag: [u8; 4] = [tag[0], tag[1], tag[2], tag[3]];
        if &tag != b"FUNC" && &tag != b"GRPH" {
            return Err(PayloadError {
                offset: r.at - 4,
                what: "section tag FUNC, GRPH or END!",
            });
        }
        let n = r.u32("CPU count")?;
        let text_base = r.u64("text base")?;
        let capacity_words = r.u32("buffer size")?;
        let overwrite = r.u32("overwrite flag")? != 0;
        let mut cpus = Vec::new();
        for _ in 0..n {
            let cpu = r.u32("CPU number")?;
            let written = r.u64("written count")?;
            let overwritten = r.u64("overwritten count")?;
            let dropped = r.u64("dropped count")?;
            let head_ts = r.u64("head timestamp")?;
            let head_index = r.u64("head index")?;
            let nw = r.u32("word count")? as usize;
            let raw_words = r.take(nw.saturating_mul(4), "buffer words")?;
            let words: Vec<u32> = raw_words
                .as_chunks::<4>()
                .0
                .iter()
                .map(|c| u32::from_le_bytes(*c))
                .collect();
            cpus.push(DumpCpu {
                cpu,
                raw: RawCpu {
                    head_ts,
                    head_index,
                    words,
                    stats: super::ring::CpuStats {
                        written,
                        in_buffer: 0,
                        overwritten,
                        dropped,
                    },
                },
            });
        }
        sections.push(DumpSection {
            tag,
            text_base,
            capacity_words,
            overwrite,
            cpus,
        });
    }
    Ok(Dump {
        word_bits,
        arch,
        clock,
        graph_options,
        trace_options,
        symtab,
        sections,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::Context;

    #[test]
    fn crc_and_base64_match_the_standards() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        let mut s = String::new();
        base64(b"Man", &mut s);
        base64(b"Ma", &mut s);
        base64(b"M", &mut s);
        assert_eq!(s, "TWFuTWE=TQ==");
    }

    #[test]
    fn payload_round_trips() {
        let ring = RingBuffer::new(2, 256, 0x1000);
        ring.function(0, 10, Context::Normal, false, 0x1010, 0x1020);
        ring.function(1, 20, Context::Irq, false, 0x1030, 0x1040);
        let info = DumpInfo {
            arch: "x86_64",
            clock: "local",
            symtab: b"SYMS",
            graph_options: 0b111,
            trace_options: 1,
        };
        let p = payload(
            &info,
            &[Section {
                tag: *b"FUNC",
                ring: &ring,
            }],
        );
        let d = parse_payload(&p).unwrap();
        assert_eq!(
            (d.arch.as_str(), d.clock.as_str(), d.symtab.as_slice()),
            ("x86_64", "local", &b"SYMS"[..])
        );
        assert_eq!(d.sections[0].cpus.len(), 2);
        assert_eq!(d.sections[0].cpus[1].raw.words, ring.raw(1).unwrap().words);
        assert_eq!(
            parse_payload(&p[..p.len() - 3]).unwrap_err().what,
            "section tag or END!"
        );
        let mut out = String::new();
        write_binary(
            &mut out,
            &info,
            &[Section {
                tag: *b"FUNC",
                ring: &ring,
            }],
        )
        .unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[0].starts_with("ftrace-dump: begin v1 lines="));
        assert_eq!(lines.last(), Some(&"ftrace-dump: end"));
        assert_eq!(lines.len(), p.len().div_ceil(BYTES_PER_LINE) + 2);
    }
}
