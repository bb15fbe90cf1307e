//! The embedded symbol table: function address → name and name → address
//! without relying on the bootloader to hand symbols over.
//!
//! Layout (every integer in the byte order named by the header):
//!
//! ```text
//! offset  size          field
//! 0       4             magic  b"FSYM"
//! 4       1             version (1)
//! 5       1             byte order: 0 little-endian, 1 big-endian
//! 6       2             reserved, 0
//! 8       4             count: number of symbols
//! 12      4             names_len: bytes of the name pool
//! 16      24 * count    entries sorted by address: addr u64, size u32,
//!                       name_off u32, name_len u32, reserved u32
//! ..      4 * count     by_name: entry indices sorted by name
//! ..      names_len     name pool (UTF-8, no terminators)
//! ```
//!
//! The table is written after linking into a section of fixed size
//! ([`crate::SYMTAB_RESERVED`]); an all-zero section means "not embedded".

/// Magic bytes at the start of an embedded table.
pub const MAGIC: [u8; 4] = *b"FSYM";
/// Format version this crate reads and writes.
pub const VERSION: u8 = 1;
/// Bytes of the header.
pub const HEADER_SIZE: usize = 16;
/// What a reserved, not yet filled table holds (`ftrace::reserve_symtab!`
/// writes it so that the section has bytes in the file): the magic with
/// version 0, then zeros. Parsing it gives [`SymtabError::NotEmbedded`].
pub const PLACEHOLDER: [u8; HEADER_SIZE] = {
    let mut h = [0u8; HEADER_SIZE];
    h[0] = MAGIC[0];
    h[1] = MAGIC[1];
    h[2] = MAGIC[2];
    h[3] = MAGIC[3];
    h
};
/// Bytes of one entry.
pub const ENTRY_SIZE: usize = 24;

/// Why a byte slice is not a valid symbol table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SymtabError {
    /// The section is all zeros or holds [`PLACEHOLDER`]: the post-link
    /// tool was not run.
    NotEmbedded,
    /// The magic bytes are wrong.
    BadMagic,
    /// The version is not [`VERSION`].
    BadVersion(u8),
    /// The byte-order byte is neither 0 nor 1.
    BadByteOrder(u8),
    /// The header announces more bytes than the slice holds.
    Truncated {
        /// Bytes the header requires.
        needed: usize,
        /// Bytes available.
        available: usize,
    },
    /// An entry's name lies outside the name pool or is not UTF-8.
    BadName(u32),
    /// A `by_name` index is out of range.
    BadIndex(u32),
    /// Entries are not sorted by address.
    Unsorted(u32),
}

impl core::fmt::Display for SymtabError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            SymtabError::NotEmbedded => write!(
                f,
                "symbol table not embedded: run `ftrace-tools embed-symtab <kernel ELF>` after \
                 linking (docs/embedding.md)"
            ),
            SymtabError::BadMagic => write!(f, "symbol table has a bad magic"),
            SymtabError::BadVersion(v) => write!(f, "symbol table version {v} unsupported"),
            SymtabError::BadByteOrder(b) => write!(f, "symbol table byte-order byte {b} invalid"),
            SymtabError::Truncated { needed, available } => {
                write!(
                    f,
                    "symbol table truncated: needs {needed} bytes, has {available}"
                )
            }
            SymtabError::BadName(i) => write!(f, "symbol {i} has a name outside the pool"),
            SymtabError::BadIndex(i) => write!(f, "by-name index {i} out of range"),
            SymtabError::Unsorted(i) => write!(f, "symbol {i} is out of address order"),
        }
    }
}

/// One symbol of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Symbol<'a> {
    /// Start address.
    pub addr: u64,
    /// Size in bytes (0 when the ELF gave none).
    pub size: u32,
    /// Demangled name without the hash, e.g. `kernel::demo::demo_leaf`.
    pub name: &'a str,
}

/// A validated, zero-copy view of an embedded symbol table.
#[derive(Debug, Clone, Copy)]
pub struct SymbolTable<'a> {
    big_endian: bool,
    /// Added to every stored address ([`with_load_bias`](Self::with_load_bias)).
    bias: u64,
    count: usize,
    entries: &'a [u8],
    by_name: &'a [u8],
    names: &'a [u8],
}

fn rd32(b: &[u8], big: bool) -> u32 {
    let a = [b[0], b[1], b[2], b[3]];
    if big {
        u32::from_be_bytes(a)
    } else {
        u32::from_le_bytes(a)
    }
}

fn rd64(b: &[u8], big: bool) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    if big {
        u64::from_be_bytes(a)
    } else {
        u64::from_le_bytes(a)
    }
}

impl<'a> SymbolTable<'a> {
    /// Validates `bytes` (the whole reserved section may be passed: trailing
    /// bytes are ignored) and returns a view of the table.
    ///
    /// Every name is checked once here so that lookups never fail later.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, SymtabError> {
        if bytes.len() < HEADER_SIZE {
            return Err(SymtabError::Truncated {
                needed: HEADER_SIZE,
                available: bytes.len(),
            });
        }
        if bytes[..HEADER_SIZE].iter().all(|&b| b == 0) || bytes[..HEADER_SIZE] == PLACEHOLDER {
            return Err(SymtabError::NotEmbedded);
        }
        if bytes[0..4] != MAGIC {
            return Err(SymtabError::BadMagic);
        }
        if bytes[4] != VERSION {
            return Err(SymtabError::BadVersion(bytes[4]));
        }
        let big = match bytes[5] {
            0 => false,
            1 => true,
            b => return Err(SymtabError::BadByteOrder(b)),
        };
        let count = rd32(&bytes[8..], big) as usize;
        let names_len = rd32(&bytes[12..], big) as usize;
        let needed = count
            .checked_mul(ENTRY_SIZE + 4)
            .and_then(|n| n.checked_add(HEADER_SIZE))
            .and_then(|n| n.checked_add(names_len))
            .unwrap_or(usize::MAX);
        if needed > bytes.len() {
            return Err(SymtabError::Truncated {
                needed,
                available: bytes.len(),
            });
        }
        let entries_end = HEADER_SIZE + count * ENTRY_SIZE;
        let by_name_end = entries_end + count * 4;
        let table = SymbolTable {
            big_endian: big,
            bias: 0,
            count,
            entries: &bytes[HEADER_SIZE..entries_end],
            by_name: &bytes[entries_end..by_name_end],
            names: &bytes[by_name_end..by_name_end + names_len],
        };
        let mut prev = 0u64;
        for i in 0..count {
            let e = &table.entries[i * ENTRY_SIZE..];
            let addr = rd64(e, big);
            if addr < prev {
                return Err(SymtabError::Unsorted(i as u32));
            }
            prev = addr;
            let off = rd32(&e[12..], big) as usize;
            let len = rd32(&e[16..], big) as usize;
            let name = off
                .checked_add(len)
                .and_then(|end| table.names.get(off..end))
                .ok_or(SymtabError::BadName(i as u32))?;
            if core::str::from_utf8(name).is_err() {
                return Err(SymtabError::BadName(i as u32));
            }
            let idx = rd32(&table.by_name[i * 4..], big);
            if idx as usize >= count {
                return Err(SymtabError::BadIndex(idx));
            }
        }
        Ok(table)
    }

    /// The same table for a kernel that runs `bias` bytes above the
    /// addresses it was linked at (a position-independent kernel relocated
    /// by its loader): every address given and returned is a run-time one.
    pub fn with_load_bias(mut self, bias: u64) -> Self {
        self.bias = bias;
        self
    }

    /// Number of symbols.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Bytes the table occupies from the start of its section (the rest of
    /// a reserved section is unused).
    pub fn encoded_len(&self) -> usize {
        HEADER_SIZE + self.count * (ENTRY_SIZE + 4) + self.names.len()
    }

    /// True when the table holds no symbol.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The `i`-th symbol in address order.
    ///
    /// # Panics
    /// When `i >= self.len()`.
    pub fn get(&self, i: usize) -> Symbol<'a> {
        let e = &self.entries[i * ENTRY_SIZE..];
        let off = rd32(&e[12..], self.big_endian) as usize;
        let len = rd32(&e[16..], self.big_endian) as usize;
        let bytes = &self.names[off..off + len];
        // SAFETY: `parse` checked that every entry's name range is valid
        // UTF-8, and the table is an immutable view of those same bytes
        // (its fields are private; `with_load_bias` changes only the
        // bias), so checking again on every lookup is wasted work.
        let name = unsafe { core::str::from_utf8_unchecked(bytes) };
        Symbol {
            addr: rd64(e, self.big_endian).wrapping_add(self.bias),
            size: rd32(&e[8..], self.big_endian),
            name,
        }
    }

    /// Start address of the `i`-th symbol (cheaper than [`get`](Self::get):
    /// the name is not looked at).
    ///
    /// # Panics
    /// When `i >= self.len()`.
    pub fn addr(&self, i: usize) -> u64 {
        rd64(&self.entries[i * ENTRY_SIZE..], self.big_endian).wrapping_add(self.bias)
    }

    /// Iterates over the symbols in address order.
    pub fn iter(&self) -> impl Iterator<Item = Symbol<'a>> + '_ {
        (0..self.count).map(move |i| self.get(i))
    }

    /// Index of the symbol containing `addr`: the last symbol starting at or
    /// below `addr`, provided `addr` lies within its size (or the symbol has
    /// no size). O(log n).
    pub fn index_of(&self, addr: u64) -> Option<usize> {
        // Number of symbols with start <= addr.
        let (mut lo, mut hi) = (0usize, self.count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.addr(mid) <= addr {
                lo = mid + 1
            } else {
                hi = mid
            }
        }
        if lo == 0 {
            return None;
        }
        let s = self.get(lo - 1);
        if s.size == 0 || addr - s.addr < u64::from(s.size) {
            Some(lo - 1)
        } else {
            None
        }
    }

    /// Resolves an address to `(symbol, offset into it)`. O(log n).
    pub fn lookup(&self, addr: u64) -> Option<(Symbol<'a>, u64)> {
        self.index_of(addr).map(|i| {
            let s = self.get(i);
            (s, addr - s.addr)
        })
    }

    /// Finds a symbol by its exact name. O(log n) through the by-name index.
    /// When several symbols share a name, the one with the lowest address is
    /// returned.
    pub fn find(&self, name: &str) -> Option<Symbol<'a>> {
        let by = |k: usize| self.get(rd32(&self.by_name[k * 4..], self.big_endian) as usize);
        let (mut lo, mut hi) = (0usize, self.count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if by(mid).name < name {
                lo = mid + 1
            } else {
                hi = mid
            }
        }
        (lo < self.count && by(lo).name == name).then(|| by(lo))
    }
}

/// Builds a table from `(addr, size, name)` triples in any order.
///
/// Used by the host tool; the kernel only parses.
#[cfg(feature = "alloc")]
pub fn encode(symbols: &[(u64, u32, &str)], big_endian: bool) -> alloc::vec::Vec<u8> {
    use alloc::vec::Vec;
    let mut sorted: Vec<(u64, u32, &str)> = symbols.to_vec();
    sorted.sort_by(|a, b| a.0.cmp(&b.0).then(a.2.cmp(b.2)));
    let w32 = |v: &mut Vec<u8>, x: u32| {
        v.extend_from_slice(&if big_endian {
            x.to_be_bytes()
        } else {
            x.to_le_bytes()
        })
    };
    let mut names = Vec::new();
    let mut out = Vec::new();
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.push(big_endian as u8);
    out.extend_from_slice(&[0, 0]);
    w32(&mut out, sorted.len() as u32);
    let names_len: usize = sorted.iter().map(|s| s.2.len()).sum();
    w32(&mut out, names_len as u32);
    for &(addr, size, name) in &sorted {
        out.extend_from_slice(&if big_endian {
            addr.to_be_bytes()
        } else {
            addr.to_le_bytes()
        });
        w32(&mut out, size);
        w32(&mut out, names.len() as u32);
        w32(&mut out, name.len() as u32);
        w32(&mut out, 0);
        names.extend_from_slice(name.as_bytes());
    }
    let mut by_name: Vec<u32> = (0..sorted.len() as u32).collect();
    // Stable sort: equal names keep address order, so `find` returns the lowest.
    by_name.sort_by(|&a, &b| sorted[a as usize].2.cmp(sorted[b as usize].2));
    for i in by_name {
        w32(&mut out, i);
    }
    out.extend_from_slice(&names);
    out
}

#[cfg(all(test, feature = "alloc"))]
mod tests {
    use super::*;

    #[test]
    fn round_trip_both_byte_orders() {
        let syms = [
            (0x2000, 0x10, "b::leaf"),
            (0x1000, 0x20, "a::start"),
            (0x3000, 0, "c"),
        ];
        for big in [false, true] {
            let bytes = encode(&syms, big);
            let t = SymbolTable::parse(&bytes).unwrap();
            assert_eq!(t.len(), 3);
            assert_eq!(
                t.get(0),
                Symbol {
                    addr: 0x1000,
                    size: 0x20,
                    name: "a::start"
                }
            );
            assert_eq!(
                t.lookup(0x1004).map(|(s, o)| (s.name, o)),
                Some(("a::start", 4))
            );
            assert_eq!(t.lookup(0x1020), None, "past the end of a sized symbol");
            assert_eq!(t.lookup(0x0fff), None);
            assert_eq!(
                t.lookup(0x9999).map(|(s, o)| (s.name, o)),
                Some(("c", 0x6999))
            );
            assert_eq!(t.find("b::leaf").map(|s| s.addr), Some(0x2000));
            assert_eq!(t.find("b::lea"), None);
            assert_eq!(t.find("zzz"), None);
        }
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(
            SymbolTable::parse(&[0u8; 64]).unwrap_err(),
            SymtabError::NotEmbedded
        );
        let mut reserved = [0u8; 64];
        reserved[..HEADER_SIZE].copy_from_slice(&PLACEHOLDER);
        assert_eq!(
            SymbolTable::parse(&reserved).unwrap_err(),
            SymtabError::NotEmbedded
        );
        assert!(matches!(
            SymbolTable::parse(&[1u8; 4]),
            Err(SymtabError::Truncated { .. })
        ));
        let mut b = encode(&[(1, 1, "x")], false);
        b[0] = b'X';
        assert_eq!(SymbolTable::parse(&b).unwrap_err(), SymtabError::BadMagic);
        let mut b = encode(&[(1, 1, "x")], false);
        b[4] = 9;
        assert_eq!(
            SymbolTable::parse(&b).unwrap_err(),
            SymtabError::BadVersion(9)
        );
        let b = encode(&[(1, 1, "x"), (2, 1, "y")], false);
        assert!(matches!(
            SymbolTable::parse(&b[..b.len() - 1]),
            Err(SymtabError::Truncated { .. })
        ));
        let mut b = encode(&[(1, 1, "x")], false);
        b[HEADER_SIZE + 16] = 200; // name_len
        assert_eq!(SymbolTable::parse(&b).unwrap_err(), SymtabError::BadName(0));
    }
}
