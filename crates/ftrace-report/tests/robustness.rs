//! Never a panic: the real kernel's logs damaged at random (deterministic
//! seeds), both in the console lines (checksums catch it) and in the
//! payload itself re-framed with valid checksums (the decoder sees the
//! garbage values: counts, tags, symbol table, events), go through reading
//! and every output.

use ftrace::tracer::dump::{BYTES_PER_LINE, LINE_PREFIX, base64, crc32};
use ftrace_report::console::base64_decode;
use ftrace_report::{Output, read_log};

/// Rounds per fixture (`ROBUSTNESS_ROUNDS` for a longer hunt).
fn rounds() -> usize {
    std::env::var("ROBUSTNESS_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60)
}

/// xorshift64*: small, deterministic.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn fixture(arch: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/data/{arch}.log"));
    std::fs::read_to_string(p).unwrap()
}

/// Reads `log` and renders every output; only panics matter here.
fn exercise(log: &[u8]) {
    if let Ok(r) = read_log(log, &mut |_| {}) {
        for o in Output::ALL {
            let _ = o.render(&r.trace);
        }
        let _ = ftrace_report::check(log, &r);
    }
}

/// The log with its dump's payload replaced, framed with valid checksums.
fn reframed(log: &str, payload: &[u8]) -> String {
    let mut out = String::new();
    let mut in_dump = false;
    for l in log.lines() {
        if l.starts_with("ftrace-dump: begin") {
            in_dump = true;
            out += &format!(
                "{LINE_PREFIX}begin v1 lines={} bytes={} crc={:08x}\n",
                payload.len().div_ceil(BYTES_PER_LINE),
                payload.len(),
                crc32(payload)
            );
            for (i, c) in payload.chunks(BYTES_PER_LINE).enumerate() {
                let mut b = String::new();
                base64(c, &mut b);
                out += &format!("{LINE_PREFIX}{i} {:08x} {b}\n", crc32(c));
            }
            continue;
        }
        if in_dump && l != "ftrace-dump: end" {
            continue;
        }
        in_dump = false;
        out += l;
        out.push('\n');
    }
    out
}

fn payload_of(log: &str) -> Vec<u8> {
    log.lines()
        .filter(|l| {
            l.starts_with("ftrace-dump: ") && !l.contains("begin") && *l != "ftrace-dump: end"
        })
        .flat_map(|l| base64_decode(l.rsplit(' ').next().unwrap().as_bytes()).unwrap())
        .collect()
}

#[test]
fn garbage_values_in_a_valid_frame_never_panic() {
    for (k, arch) in ["x86_64", "i686", "ppc64"].into_iter().enumerate() {
        let log = fixture(arch);
        let payload = payload_of(&log);
        assert_eq!(reframed(&log, &payload), log, "{arch}: framing");
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ k as u64);
        for _ in 0..rounds() {
            let mut p = payload.clone();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(p.len());
                p[at] = rng.next() as u8;
            }
            if rng.below(8) == 0 {
                p.truncate(rng.below(p.len()));
            }
            exercise(reframed(&log, &p).as_bytes());
        }
    }
}

#[test]
fn damaged_lines_never_panic() {
    for (k, arch) in ["x86_64", "i686", "ppc64"].into_iter().enumerate() {
        let log = fixture(arch);
        let lines: Vec<&str> = log.lines().collect();
        let mut rng = Rng(0x1234_5678_9abc_def1 ^ k as u64);
        for _ in 0..rounds() {
            let mut l: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
            for _ in 0..1 + rng.below(3) {
                if l.is_empty() {
                    break;
                }
                let i = rng.below(l.len());
                match rng.below(5) {
                    0 => {
                        l.remove(i);
                    }
                    1 => {
                        let dup = l[i].clone();
                        l.insert(rng.below(l.len()), dup);
                    }
                    2 => {
                        let cut = l[i].floor_char_boundary(rng.below(l[i].len() + 1));
                        l[i].truncate(cut);
                    }
                    3 => l.truncate(i),
                    _ => {
                        let mut b = l[i].clone().into_bytes();
                        if !b.is_empty() {
                            let at = rng.below(b.len());
                            b[at] = b"0A+/ =x"[rng.below(7)];
                        }
                        l[i] = String::from_utf8_lossy(&b).into_owned();
                    }
                }
            }
            exercise((l.join("\n") + "\n").as_bytes());
        }
    }
}
