//! Finding the binary dump in a console log and putting its payload back
//! together (docs/dump-format.md, "Lines").
//!
//! Every line that does not hold `ftrace-dump: ` is ignored, so other
//! console output may be mixed in anywhere (even before the prefix on a
//! line, as a console that stamps its lines would put it). Each data line is
//! checked on its own (sequence number, CRC-32, base64, length); a line that
//! fails, or is missing, leaves a hole in the payload that the decoder
//! steps around ([`Payload::damage`]), and is reported as a [`Problem`]
//! naming its log line.

use ftrace::tracer::dump::{BYTES_PER_LINE, LINE_PREFIX, VERSION, crc32};

use crate::problem::{Error, Problem};

/// The largest payload the tool accepts (a header announcing more is taken
/// as damaged).
pub const MAX_PAYLOAD: u64 = 1 << 30;

/// One 48-byte chunk of the payload (one dump line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunk {
    /// Read intact from this log line.
    Good(usize),
    /// Lost: damaged or missing; the log line that reports it.
    Lost(usize),
}

impl Chunk {
    /// The log line of the chunk.
    pub fn line(self) -> usize {
        match self {
            Chunk::Good(l) | Chunk::Lost(l) => l,
        }
    }
}

/// The payload as read back, with its holes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    /// The bytes (zeros where a chunk was lost).
    pub bytes: Vec<u8>,
    /// Per dump line.
    pub chunks: Vec<Chunk>,
    /// Log line of `ftrace-dump: begin`.
    pub begin_line: usize,
}

/// The first lost chunk within a byte range: dump line number and the log
/// line reporting it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Damage {
    /// Dump line (sequence number).
    pub seq: usize,
    /// Log line.
    pub line: usize,
    /// Payload offset where the lost bytes start.
    pub offset: usize,
}

impl Payload {
    /// The first lost chunk overlapping `start..end`, if any.
    pub fn damage(&self, start: usize, end: usize) -> Option<Damage> {
        if start >= end {
            return None;
        }
        let first = start / BYTES_PER_LINE;
        let last = (end - 1) / BYTES_PER_LINE;
        (first..=last.min(self.chunks.len().saturating_sub(1))).find_map(|seq| {
            match self.chunks[seq] {
                Chunk::Lost(line) => Some(Damage {
                    seq,
                    line,
                    offset: (seq * BYTES_PER_LINE).max(start),
                }),
                Chunk::Good(_) => None,
            }
        })
    }

    /// The log line holding payload byte `offset` (the `begin` line past the
    /// end).
    pub fn line_of(&self, offset: usize) -> usize {
        self.chunks
            .get(offset / BYTES_PER_LINE)
            .map_or(self.begin_line, |c| c.line())
    }

    /// True when no chunk was lost.
    pub fn is_complete(&self) -> bool {
        self.chunks.iter().all(|c| matches!(c, Chunk::Good(_)))
    }
}

/// The dump's header line, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header {
    lines: usize,
    bytes: usize,
    crc: u32,
}

/// Parses `begin v1 lines=N bytes=B crc=XXXXXXXX` (after the prefix).
fn parse_header(rest: &str, line: usize) -> Result<Header, Error> {
    let bad = |why: &str| {
        Error::Fatal(Problem::at(
            line,
            format!("malformed dump header `{}`: {why}", rest.trim_end()),
        ))
    };
    let mut words = rest.split_ascii_whitespace();
    words.next(); // "begin"
    let version = words
        .next()
        .and_then(|v| v.strip_prefix('v'))
        .ok_or_else(|| bad("expected `v1` after `begin`"))?;
    match version.parse::<u32>() {
        Ok(VERSION) => {}
        Ok(v) => {
            return Err(Error::Fatal(Problem::at(
                line,
                format!("dump format version {v}; this tool reads version {VERSION}"),
            )));
        }
        Err(_) => return Err(bad("the version is not a number")),
    }
    let mut field = |name: &str| -> Result<&str, Error> {
        words
            .next()
            .and_then(|w| w.strip_prefix(name))
            .and_then(|w| w.strip_prefix('='))
            .ok_or_else(|| bad(&format!("expected `{name}=`")))
    };
    let lines: usize = field("lines")?
        .parse()
        .map_err(|_| bad("`lines=` is not a number"))?;
    let bytes: u64 = field("bytes")?
        .parse()
        .map_err(|_| bad("`bytes=` is not a number"))?;
    let crc = field("crc")?;
    let crc = u32::from_str_radix(crc, 16)
        .ok()
        .filter(|_| crc.len() == 8)
        .ok_or_else(|| bad("`crc=` is not 8 hex digits"))?;
    if bytes > MAX_PAYLOAD {
        return Err(bad(&format!(
            "{bytes} bytes is more than this tool accepts ({MAX_PAYLOAD})"
        )));
    }
    let bytes = bytes as usize;
    if lines != bytes.div_ceil(BYTES_PER_LINE) {
        return Err(bad(&format!(
            "{bytes} bytes take {} lines of {BYTES_PER_LINE}, not {lines}",
            bytes.div_ceil(BYTES_PER_LINE)
        )));
    }
    Ok(Header { lines, bytes, crc })
}

/// Standard base64 with `=` padding; `None` when malformed.
pub fn base64_decode(s: &[u8]) -> Option<Vec<u8>> {
    fn val(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    if s.len() % 4 != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    let n = s.len() / 4;
    for (i, q) in s.chunks(4).enumerate() {
        let pad = q.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && i + 1 != n) {
            return None;
        }
        let mut v = 0u32;
        for &c in &q[..4 - pad] {
            v = (v << 6) | val(c)?;
        }
        v <<= 6 * pad as u32;
        let b = [(v >> 16) as u8, (v >> 8) as u8, v as u8];
        out.extend_from_slice(&b[..3 - pad]);
    }
    Some(out)
}

/// What one data line holds.
enum DataLine {
    Ok {
        seq: usize,
        bytes: Vec<u8>,
    },
    /// Numbered but unusable (bad checksum, base64 or length).
    Bad {
        seq: usize,
        why: String,
    },
    /// Not even numbered.
    Malformed(String),
}

fn parse_data(rest: &[u8], expected_len: impl Fn(usize) -> Option<usize>) -> DataLine {
    let text = String::from_utf8_lossy(rest);
    let mut parts = text.split(' ');
    let (Some(seq), Some(crc), Some(b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return DataLine::Malformed(
            "malformed dump line (expected `ftrace-dump: <seq> <crc32> <base64>`)".into(),
        );
    };
    let Ok(seq) = seq.parse::<usize>() else {
        return DataLine::Malformed(format!(
            "malformed dump line: sequence number `{seq}` is not a number"
        ));
    };
    let Some(want) = expected_len(seq) else {
        return DataLine::Bad {
            seq,
            why: String::new(),
        };
    };
    let Some(crc) = u32::from_str_radix(crc, 16).ok().filter(|_| crc.len() == 8) else {
        return DataLine::Bad {
            seq,
            why: format!("dump line {seq}: checksum `{crc}` is not 8 hex digits"),
        };
    };
    let Some(bytes) = base64_decode(b64.as_bytes()) else {
        return DataLine::Bad {
            seq,
            why: format!("dump line {seq} is not valid base64 (cut or garbled)"),
        };
    };
    let got = crc32(&bytes);
    if got != crc {
        return DataLine::Bad {
            seq,
            why: format!(
                "dump line {seq} has a bad checksum (the line says {crc:08x}, its bytes give {got:08x})"
            ),
        };
    }
    if bytes.len() != want {
        return DataLine::Bad {
            seq,
            why: format!(
                "dump line {seq} holds {} bytes, expected {want}",
                bytes.len()
            ),
        };
    }
    DataLine::Ok { seq, bytes }
}

/// Where the scan is.
enum State {
    Before,
    In {
        begin: usize,
        header: Header,
        chunks: Vec<Option<(Chunk, usize)>>,
        payload: Vec<u8>,
    },
}

/// A log scanned for its dump.
#[derive(Debug)]
pub struct Scan {
    /// The payload with its holes.
    pub payload: Payload,
    /// Everything wrong that was seen, in log order.
    pub problems: Vec<Problem>,
}

/// Lines of `log`, numbered from 1, without `\n` or a `\r` before it.
pub fn lines(log: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    let mut parts = log.split(|&b| b == b'\n').enumerate().peekable();
    std::iter::from_fn(move || {
        let (i, l) = parts.next()?;
        // The empty piece after a final newline is not a line.
        if l.is_empty() && parts.peek().is_none() {
            return None;
        }
        Some((i + 1, l.strip_suffix(b"\r").unwrap_or(l)))
    })
}

/// Finds the first dump in `log` and reads it back. `progress` is called
/// with the number of bytes of the log looked at so far, now and then.
pub fn scan(log: &[u8], progress: &mut dyn FnMut(usize)) -> Result<Scan, Error> {
    let prefix = LINE_PREFIX.as_bytes();
    let mut problems = Vec::new();
    let mut state = State::Before;
    let mut orphan: Option<usize> = None;
    let mut end_line = None;
    // A second dump's `begin` before the first one's `end`.
    let mut new_begin = None;
    let mut last_line = 0;
    let mut done = 0usize;
    for (n, raw) in lines(log) {
        last_line = n;
        done += raw.len() + 1;
        if n % 4096 == 0 {
            progress(done);
        }
        let Some(at) = raw.windows(prefix.len()).position(|w| w == prefix) else {
            continue;
        };
        let rest = &raw[at + prefix.len()..];
        let is = |w: &[u8]| rest == w || rest.starts_with(&[w, b" "].concat());
        match &mut state {
            State::Before if is(b"begin") => {
                let header = parse_header(&String::from_utf8_lossy(rest), n)?;
                state = State::In {
                    begin: n,
                    header,
                    chunks: vec![None; header.lines],
                    payload: vec![0; header.bytes],
                };
            }
            State::Before if rest == b"end" => {
                problems.push(Problem::at(
                    n,
                    "`ftrace-dump: end` without a dump before it",
                ));
            }
            State::Before => {
                orphan.get_or_insert(n);
            }
            State::In { .. } if is(b"begin") => {
                new_begin = Some(n);
                break;
            }
            State::In { .. } if rest == b"end" => {
                end_line = Some(n);
                break;
            }
            State::In {
                header,
                chunks,
                payload,
                ..
            } => {
                let h = *header;
                let expected_len = |seq: usize| {
                    (seq < h.lines).then(|| (h.bytes - seq * BYTES_PER_LINE).min(BYTES_PER_LINE))
                };
                match parse_data(rest, expected_len) {
                    DataLine::Malformed(why) => problems.push(Problem::at(n, why)),
                    DataLine::Bad { seq, why } if seq >= h.lines => {
                        let _ = why;
                        problems.push(Problem::at(
                            n,
                            format!(
                                "dump line {seq} is out of range (the dump has {} lines)",
                                h.lines
                            ),
                        ));
                    }
                    DataLine::Bad { seq, why } => {
                        problems.push(Problem::at(n, why));
                        if chunks[seq].is_none() {
                            chunks[seq] = Some((Chunk::Lost(n), n));
                        }
                    }
                    DataLine::Ok { seq, bytes } => {
                        let off = seq * BYTES_PER_LINE;
                        match chunks[seq] {
                            None => {
                                payload[off..off + bytes.len()].copy_from_slice(&bytes);
                                chunks[seq] = Some((Chunk::Good(n), n));
                            }
                            Some((Chunk::Lost(_), first)) => {
                                problems.push(Problem::at(
                                    n,
                                    format!(
                                        "dump line {seq} again (damaged at line {first}); this copy is used"
                                    ),
                                ));
                                payload[off..off + bytes.len()].copy_from_slice(&bytes);
                                chunks[seq] = Some((Chunk::Good(n), n));
                            }
                            Some((Chunk::Good(first), _)) => {
                                let same = payload[off..off + bytes.len()] == bytes[..];
                                problems.push(Problem::at(
                                    n,
                                    if same {
                                        format!("dump line {seq} repeats line {first}")
                                    } else {
                                        format!(
                                            "dump line {seq} again, with other bytes than at line {first}; the first is kept"
                                        )
                                    },
                                ));
                            }
                        }
                    }
                }
            }
        }
    }
    progress(log.len());
    let State::In {
        begin,
        header,
        chunks,
        payload,
    } = state
    else {
        return Err(Error::NoDump {
            orphan_line: orphan,
        });
    };
    if let Some(o) = orphan {
        problems.push(Problem::at(
            o,
            "dump lines before `ftrace-dump: begin` are ignored",
        ));
    }
    // After the end line, a second dump is ignored: say so once.
    if let Some(e) = end_line
        && let Some(second) = lines(log)
            .skip(e)
            .find(|(_, l)| {
                l.windows(prefix.len())
                    .position(|w| w == prefix)
                    .is_some_and(|at| l[at + prefix.len()..].starts_with(b"begin"))
            })
            .map(|(n, _)| n)
    {
        problems.push(Problem::at(
            second,
            format!("another dump begins here; only the dump of line {begin} is read"),
        ));
    }
    let read = chunks.iter().filter(|c| c.is_some()).count();
    // Where the lines after the last one read would have been.
    let tail_from = chunks
        .iter()
        .rposition(|c| c.is_some())
        .map_or(0, |i| i + 1);
    match (end_line, new_begin) {
        (Some(_), _) => {}
        (None, Some(n)) => problems.push(Problem::at(
            n,
            format!(
                "a new dump begins before the end of the dump of line {begin} ({read} of {} lines read); only the first is read",
                header.lines
            ),
        )),
        (None, None) => problems.push(Problem::at(
            last_line,
            format!(
                "the log ends inside the dump of line {begin} (no `ftrace-dump: end`; {read} of {} lines read)",
                header.lines
            ),
        )),
    }
    let report_line = end_line.or(new_begin).unwrap_or(last_line);
    let mut final_chunks = Vec::with_capacity(chunks.len());
    let mut seq = 0;
    while seq < chunks.len() {
        if let Some((c, _)) = chunks[seq] {
            final_chunks.push(c);
            seq += 1;
            continue;
        }
        let start = seq;
        while seq < chunks.len() && chunks[seq].is_none() {
            seq += 1;
        }
        // Reported at the next line read, else at the end (or the log's last line).
        let at = chunks
            .get(seq)
            .and_then(|c| c.map(|(_, l)| l))
            .unwrap_or(report_line);
        let last = seq - 1;
        if end_line.is_some() || seq < tail_from {
            problems.push(Problem::at(
                at,
                if start == last {
                    format!("dump line {start} is missing (expected before this line)")
                } else {
                    format!("dump lines {start}-{last} are missing (expected before this line)")
                },
            ));
        }
        final_chunks.extend((start..seq).map(|_| Chunk::Lost(at)));
    }
    let payload = Payload {
        bytes: payload,
        chunks: final_chunks,
        begin_line: begin,
    };
    if payload.is_complete() {
        let got = crc32(&payload.bytes);
        if got != header.crc {
            problems.push(Problem::at(
                begin,
                format!(
                    "the payload's CRC-32 is {got:08x}, the header says {:08x} (lines in the wrong place?)",
                    header.crc
                ),
            ));
        }
    }
    problems.sort_by_key(|p| p.line);
    Ok(Scan { payload, problems })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ftrace::tracer::dump::base64;

    fn framed(payload: &[u8]) -> Vec<String> {
        let mut s = format!(
            "{LINE_PREFIX}begin v1 lines={} bytes={} crc={:08x}\n",
            payload.len().div_ceil(BYTES_PER_LINE),
            payload.len(),
            crc32(payload)
        );
        for (i, c) in payload.chunks(BYTES_PER_LINE).enumerate() {
            let mut b = String::new();
            base64(c, &mut b);
            s += &format!("{LINE_PREFIX}{i} {:08x} {b}\n", crc32(c));
        }
        s += &format!("{LINE_PREFIX}end\n");
        s.lines().map(str::to_owned).collect()
    }

    fn run(lines: &[String]) -> Result<Scan, Error> {
        scan((lines.join("\n") + "\n").as_bytes(), &mut |_| {})
    }

    fn messages(s: &Scan) -> Vec<String> {
        s.problems.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn base64_round_trips_and_refuses_garbage() {
        for n in 0..10 {
            let data: Vec<u8> = (0..n as u8).map(|b| b.wrapping_mul(37)).collect();
            let mut s = String::new();
            base64(&data, &mut s);
            assert_eq!(base64_decode(s.as_bytes()), Some(data));
        }
        assert_eq!(base64_decode(b"TWE"), None);
        assert_eq!(base64_decode(b"TW=a"), None);
        assert_eq!(base64_decode(b"TQ==TQ=="), None);
        assert_eq!(base64_decode(b"T!E="), None);
    }

    #[test]
    fn reads_a_dump_among_other_lines() {
        let payload: Vec<u8> = (0..100u8).collect();
        let mut l = framed(&payload);
        l.insert(0, "rftrace: booting".into());
        l.insert(2, "some other line".into());
        l[3] = format!("[ 0.1] {}", l[3]);
        l.push("rftrace: success".into());
        let s = run(&l).unwrap();
        assert_eq!(s.payload.bytes, payload);
        assert!(s.payload.is_complete());
        assert_eq!(s.payload.begin_line, 2);
        assert_eq!(messages(&s), Vec::<String>::new());
    }

    #[test]
    fn a_second_dump_cuts_the_first() {
        let payload: Vec<u8> = (0..100u8).collect();
        let mut l = framed(&payload); // begin, dump lines 0..=2, end
        l.truncate(3);
        l.extend(framed(&payload));
        let s = run(&l).unwrap();
        assert_eq!(
            messages(&s),
            [
                "line 4: a new dump begins before the end of the dump of line 1 (2 of 3 lines read); only the first is read"
            ]
        );
        assert_eq!(s.payload.chunks[2], Chunk::Lost(4));
        let mut l = framed(&payload);
        l.extend(framed(&payload));
        let s = run(&l).unwrap();
        assert_eq!(
            messages(&s),
            ["line 6: another dump begins here; only the dump of line 1 is read"]
        );
    }

    #[test]
    fn holes_are_reported_by_line() {
        let payload: Vec<u8> = (0..200u8).collect();
        let mut l = framed(&payload); // begin, dump lines 0..=4, end
        l[2] = l[2].replace(' ', "  "); // dump line 1 garbled
        l.remove(4); // dump line 3 gone
        l.insert(4, l[3].clone()); // in its place, dump line 2 again
        let s = run(&l).unwrap();
        assert_eq!(
            messages(&s),
            [
                "line 3: malformed dump line (expected `ftrace-dump: <seq> <crc32> <base64>`)",
                "line 4: dump line 1 is missing (expected before this line)",
                "line 5: dump line 2 repeats line 4",
                "line 6: dump line 3 is missing (expected before this line)",
            ]
        );
    }
}
