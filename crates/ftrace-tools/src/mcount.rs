//! The `mcount` site finder for i686 `-Zinstrument-mcount` builds (Linux's
//! `recordmcount`, run on the linked kernel instead of on each object).
//!
//! # What counts as a site
//!
//! A site is a direct near call, `e8 <rel32>`, whose target
//! (`address + 5 + rel32`) is the `mcount` symbol and which starts within the
//! first [`MCOUNT_WINDOW`] bytes of an `STT_FUNC` symbol in an executable
//! section (and within its `st_size`, when it has one). Only the first such
//! call of each function is taken.
//!
//! Why not a plain byte scan, and why not require a fixed prologue:
//!
//! * A byte scan of all text would also match an `e8` that is part of
//!   another instruction (an immediate, a displacement, a ModRM byte).
//!   Patching such a "site" would corrupt the kernel.
//! * The compiler inserts the `mcount` call in the function's entry block,
//!   after the whole prologue: `push %ebp; mov %esp,%ebp`, then pushes of
//!   callee-saved registers, `sub $N,%esp`, and moves of arguments into
//!   callee-saved registers, so the call does not always follow `55 89 e5`
//!   directly, nor sit within 16 bytes. [`MCOUNT_WINDOW`] covers such
//!   prologues.
//! * Within that window a false match needs the four displacement bytes to
//!   equal exactly `mcount - (address + 5)`, which code does not contain
//!   by chance, and at most one site per function is recorded.
//!
//! A function whose call lies beyond the window is simply not traceable;
//! nothing is patched wrongly. Position-independent code calls `mcount`
//! through the PLT and is not found (the kernel is linked statically).
//!
//! # Table format
//!
//! [`ftrace_abi::MCOUNT_SITES_SECTION`] receives a little-endian `u32` count,
//! then that many `u32` addresses in ascending order, then zeros.

use std::path::Path;

use object::{Architecture, Object, ObjectSection, ObjectSymbol};

use crate::elf::{self, Patch};
use crate::error::{Error, FileError};

/// The symbol the compiler calls by default.
pub const DEFAULT_MCOUNT_SYMBOL: &str = "mcount";

/// How many bytes from a function's start a `call mcount` may begin at.
pub const MCOUNT_WINDOW: u64 = 64;

/// Opcode of `call rel32`.
const CALL_REL32: u8 = 0xe8;
/// Length of `call rel32`.
const CALL_LEN: u64 = 5;

/// Finds the `call <symbol>` sites of the ELF image `data` (see the module
/// docs), sorted and without duplicates.
pub fn mcount_sites(data: &[u8], symbol: &str) -> Result<Vec<u32>, Error> {
    let file = elf::parse(data)?;
    match file.architecture() {
        Architecture::I386 | Architecture::X86_64 | Architecture::X86_64_X32 => {}
        other => {
            return Err(Error::UnsupportedMachine(format!(
                "{other:?} (mcount sites are found on x86 only)"
            )));
        }
    }
    let target = elf::symbol_address(&file, symbol)?;
    let wrap = |a: u64| if file.is_64() { a } else { a & 0xffff_ffff };

    let mut sites = Vec::new();
    for sym in file.symbols() {
        if elf::st_type(&sym) != object::elf::STT_FUNC || sym.address() == target {
            continue;
        }
        let Some(section) = elf::code_section(&file, &sym) else {
            continue;
        };
        // Section bytes from the function start; empty for NOBITS or an
        // address outside the section.
        let code = section.data()?;
        let Some(start) = sym.address().checked_sub(section.address()) else {
            continue;
        };
        let Some(code) = code.get(start as usize..) else {
            continue;
        };
        let mut window = MCOUNT_WINDOW;
        if sym.size() != 0 {
            window = window.min(sym.size().saturating_sub(CALL_LEN - 1));
        }
        for off in 0..window {
            let Some(insn) = code.get(off as usize..(off + CALL_LEN) as usize) else {
                break;
            };
            if insn[0] != CALL_REL32 {
                continue;
            }
            let rel = i32::from_le_bytes([insn[1], insn[2], insn[3], insn[4]]);
            let addr = sym.address() + off;
            if wrap((addr + CALL_LEN).wrapping_add(rel as i64 as u64)) == target {
                sites.push(u32::try_from(addr).map_err(|_| Error::AddressTooWide(addr))?);
                break;
            }
        }
    }
    sites.sort_unstable();
    sites.dedup();
    if sites.is_empty() {
        return Err(Error::NoMcountSites(symbol.to_owned()));
    }
    if sites.len() > ftrace_abi::MCOUNT_SITES_CAPACITY {
        return Err(Error::TooManyMcountSites {
            found: sites.len(),
            capacity: ftrace_abi::MCOUNT_SITES_CAPACITY,
        });
    }
    Ok(sites)
}

/// Encodes a site list in the [`ftrace_abi::MCOUNT_SITES_SECTION`] format.
pub fn encode_mcount_sites(sites: &[u32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + 4 * sites.len());
    out.extend_from_slice(&(sites.len() as u32).to_le_bytes());
    for s in sites {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

/// What [`embed_mcount_sites`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbedMcount {
    /// The new contents of [`ftrace_abi::MCOUNT_SITES_SECTION`].
    pub patch: Patch,
    /// The sites written, ascending.
    pub sites: Vec<u32>,
}

impl EmbedMcount {
    /// The one-line summary the CLI prints, e.g.
    /// `recorded 42 mcount sites (172 bytes of 65540) into kernel.elf`.
    pub fn summary(&self, path: &Path) -> String {
        format!(
            "recorded {} mcount sites ({} bytes of {}) into {}",
            self.sites.len(),
            self.patch.used,
            self.patch.bytes.len(),
            path.display()
        )
    }
}

/// Finds the sites of `data` and builds the patch that writes them into
/// [`ftrace_abi::MCOUNT_SITES_SECTION`] (zero-filling the rest of it).
pub fn embed_mcount_sites(data: &[u8], symbol: &str) -> Result<EmbedMcount, Error> {
    let file = elf::parse(data)?;
    let slot = elf::section_slot(&file, data, ftrace_abi::MCOUNT_SITES_SECTION)?;
    let sites = mcount_sites(data, symbol)?;
    let table = encode_mcount_sites(&sites);
    let patch = Patch::fill(&slot, &table, "`ftrace_abi::MCOUNT_SITES_RESERVED`")?;
    Ok(EmbedMcount { patch, sites })
}

/// [`embed_mcount_sites`] on the file at `path`, written in place.
pub fn embed_mcount_sites_file(path: &Path, symbol: &str) -> Result<EmbedMcount, FileError> {
    let err = |e| FileError::new(path, e);
    let data = std::fs::read(path).map_err(|e| err(Error::Io(e)))?;
    let result = embed_mcount_sites(&data, symbol).map_err(err)?;
    result.patch.write_to(path).map_err(|e| err(Error::Io(e)))?;
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{Fixture, RODATA, TEXT};
    use object::elf::*;

    const BASE: u64 = 0x0010_0000;
    const MCOUNT: u64 = BASE + 0x200;

    /// `call` from `at` to `to`.
    fn call(at: u64, to: u64) -> [u8; 5] {
        let rel = (to as i64 - (at as i64 + 5)) as i32;
        let r = rel.to_le_bytes();
        [0xe8, r[0], r[1], r[2], r[3]]
    }

    fn put(text: &mut [u8], at: u64, bytes: &[u8]) {
        let off = (at - BASE) as usize;
        text[off..off + bytes.len()].copy_from_slice(bytes);
    }

    /// An i386 kernel; returns it with the expected sites.
    fn kernel() -> (Fixture, Vec<u32>) {
        let mut code = vec![0x90u8; 0x300];
        let mut f = Fixture::new(false, false, EM_386);
        // f1: push %ebp; mov %esp,%ebp; call mcount.
        put(&mut code, BASE + 0x10, &[0x55, 0x89, 0xe5]);
        put(&mut code, BASE + 0x13, &call(BASE + 0x13, MCOUNT));
        // f2: a longer prologue: push %ebx/%edi/%esi; sub $0x1000,%esp;
        // mov 8(%ebp),%esi; then call mcount at offset 15.
        put(
            &mut code,
            BASE + 0x40,
            &[0x55, 0x89, 0xe5, 0x53, 0x57, 0x56],
        );
        put(
            &mut code,
            BASE + 0x46,
            &[0x81, 0xec, 0x00, 0x10, 0x00, 0x00],
        );
        put(&mut code, BASE + 0x4c, &[0x8b, 0x75, 0x08]);
        put(&mut code, BASE + 0x4f, &call(BASE + 0x4f, MCOUNT));
        // f2 calls mcount again later (not at entry): only the first counts.
        put(&mut code, BASE + 0x60, &call(BASE + 0x60, MCOUNT));
        // f3: calls another function, not mcount.
        put(&mut code, BASE + 0x90, &[0x55, 0x89, 0xe5]);
        put(&mut code, BASE + 0x93, &call(BASE + 0x93, BASE + 0x10));
        // f4: call mcount beyond the window: not a site.
        put(
            &mut code,
            BASE + 0xa0 + MCOUNT_WINDOW,
            &call(BASE + 0xa0 + MCOUNT_WINDOW, MCOUNT),
        );
        // Unsymbolized code (no FUNC covers it) calling mcount: not a site.
        put(&mut code, BASE + 0x180, &call(BASE + 0x180, MCOUNT));
        // mcount itself: `ret`.
        put(&mut code, MCOUNT, &[0xc3]);
        let text = f.section(".text", BASE, TEXT, code);
        f.section(
            ftrace_abi::MCOUNT_SITES_SECTION,
            BASE + 0x1000,
            RODATA,
            vec![0; 64],
        );
        f.func("_ZN6kernel2f117h0000000000000001E", text, BASE + 0x10, 0x20)
            .func("f2", text, BASE + 0x40, 0x40)
            .func("f3", text, BASE + 0x90, 0x10)
            .func("f4", text, BASE + 0xa0, 0x80)
            .func("mcount", text, MCOUNT, 1);
        (f, vec![(BASE + 0x13) as u32, (BASE + 0x4f) as u32])
    }

    #[test]
    fn finds_exact_sites() {
        let (f, expected) = kernel();
        let mut image = f.build();
        let result = embed_mcount_sites(&image, DEFAULT_MCOUNT_SYMBOL).unwrap();
        assert_eq!(result.sites, expected);
        assert_eq!(result.patch.used, 12);
        result.patch.apply(&mut image);
        let file = elf::parse(&image).unwrap();
        let bytes = file
            .section_by_name(ftrace_abi::MCOUNT_SITES_SECTION)
            .unwrap()
            .data()
            .unwrap();
        let mut want = encode_mcount_sites(&expected);
        want.resize(64, 0);
        assert_eq!(bytes, want.as_slice());
        assert_eq!(
            &bytes[..12],
            &[2, 0, 0, 0, 0x13, 0, 0x10, 0, 0x4f, 0, 0x10, 0]
        );
    }

    #[test]
    fn call_must_fit_in_the_function() {
        let (mut f, _) = kernel();
        // f1 shrunk to end before its call completes.
        f.symbols[0].size = 0x6;
        let sites = mcount_sites(&f.build(), "mcount").unwrap();
        assert_eq!(sites, [(BASE + 0x4f) as u32]);
    }

    #[test]
    fn other_symbol_name() {
        let (mut f, expected) = kernel();
        f.symbols
            .iter_mut()
            .find(|s| s.name == "mcount")
            .unwrap()
            .name = "__fentry__".into();
        let image = f.build();
        assert!(matches!(
            embed_mcount_sites(&image, "mcount"),
            Err(Error::SymbolMissing(s)) if s == "mcount"
        ));
        assert_eq!(
            embed_mcount_sites(&image, "__fentry__").unwrap().sites,
            expected
        );
    }

    #[test]
    fn errors() {
        let (mut f, _) = kernel();
        assert!(matches!(
            embed_mcount_sites(&[], "mcount"),
            Err(Error::NotElf)
        ));

        // Missing symbol.
        let image = {
            let mut g = kernel().0;
            g.symbols.retain(|s| s.name != "mcount");
            g.build()
        };
        assert!(matches!(
            embed_mcount_sites(&image, "mcount"),
            Err(Error::SymbolMissing(s)) if s == "mcount"
        ));

        // No sites: every function calls something else.
        let mut g = kernel().0;
        g.symbols.retain(|s| s.name == "f3" || s.name == "mcount");
        let e = embed_mcount_sites(&g.build(), "mcount").unwrap_err();
        assert!(matches!(e, Error::NoMcountSites(_)), "{e:?}");

        // Table too small: 2 sites need 12 bytes.
        f.sections[1].data = Some(vec![0; 8]);
        match embed_mcount_sites(&f.build(), "mcount") {
            Err(Error::SectionTooSmall {
                needed: 12,
                available: 8,
                ..
            }) => {}
            other => panic!("{other:?}"),
        }

        // Missing section.
        f.sections[1].name = ".data".into();
        assert!(matches!(
            embed_mcount_sites(&f.build(), "mcount"),
            Err(Error::SectionMissing(".ftrace_mcount_sites"))
        ));

        // Not x86.
        let mut g = kernel().0;
        g.machine = EM_PPC64;
        assert!(matches!(
            mcount_sites(&g.build(), "mcount"),
            Err(Error::UnsupportedMachine(_))
        ));
    }
}
