//! The function symbol table embedded into the kernel (Linux's `kallsyms`,
//! done after linking instead of with a second link).
//!
//! # Which symbols
//!
//! From the ELF `.symtab`, a symbol is kept when it is defined in an
//! executable (`SHF_EXECINSTR`) section and either
//!
//! 1. is `STT_FUNC` (any binding: most Rust functions are local after a
//!    static link), or
//! 2. is `STT_NOTYPE` with global or weak binding: assembly entry points
//!    (`_start`, `ftrace_caller`) often carry no `.type`. Such a label is
//!    dropped when an `STT_FUNC` symbol starts at the same address (the
//!    function names that code better; linker-script markers such as
//!    `_stext` alias functions), or when it lies at or past the end of its
//!    section (end markers such as `_etext`).
//!
//! # Sizes
//!
//! An `STT_FUNC` symbol keeps its `st_size`. A symbol without a size (a
//! label, or a function whose assembly has no `.size`) is given the distance
//! to the next kept symbol at a higher address in the same section, or to
//! the section end: the kernel then never attributes bytes beyond the label's
//! code to it. Sizes above `u32::MAX` saturate.
//!
//! # Names
//!
//! Rust names are demangled with `rustc-demangle`'s alternate format, which
//! leaves out the hash (`kernel::demo::demo_leaf`); other names are kept as
//! they are. Identical `(address, name)` pairs (aliases with different
//! hashes, duplicate symbol entries) are kept once, with the larger size.

use std::collections::BTreeMap;
use std::path::Path;

use object::{Object, ObjectSection, ObjectSymbol};

use crate::elf::{self, Patch};
use crate::error::{Error, FileError};

/// One function as it goes into the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionSymbol {
    /// Start address.
    pub addr: u64,
    /// Size in bytes (see the module docs for symbols without one).
    pub size: u32,
    /// Demangled name without the hash.
    pub name: String,
}

/// Demangles a Rust symbol without its hash; other names are returned as is.
pub fn demangle(raw: &str) -> String {
    match rustc_demangle::try_demangle(raw) {
        Ok(d) => format!("{d:#}"),
        Err(_) => raw.to_owned(),
    }
}

struct Candidate {
    addr: u64,
    size: u64,
    is_func: bool,
    name: String,
}

/// Collects the function symbols of `file` following the rules of the module
/// docs, sorted by address then name.
pub fn function_symbols(file: &object::File<'_>) -> Vec<FunctionSymbol> {
    // Candidates grouped by section, with the section's end address.
    let mut by_section: BTreeMap<usize, (u64, Vec<Candidate>)> = BTreeMap::new();
    for sym in file.symbols() {
        let Some(section) = elf::code_section(file, &sym) else {
            continue;
        };
        let is_func = match elf::st_type(&sym) {
            object::elf::STT_FUNC => true,
            object::elf::STT_NOTYPE if sym.is_global() || sym.is_weak() => false,
            _ => continue,
        };
        let Ok(raw) = sym.name() else { continue };
        if raw.is_empty() || raw.starts_with('$') || raw.starts_with(".L") {
            continue;
        }
        let end = section.address().saturating_add(section.size());
        if !is_func && sym.address() >= end {
            continue;
        }
        let entry = by_section
            .entry(section.index().0)
            .or_insert_with(|| (end, Vec::new()));
        entry.1.push(Candidate {
            addr: sym.address(),
            size: sym.size(),
            is_func,
            name: demangle(raw),
        });
    }

    let mut out: BTreeMap<(u64, String), u32> = BTreeMap::new();
    for (end, mut cands) in by_section.into_values() {
        cands.sort_by_key(|c| c.addr);
        let func_addrs: Vec<u64> = cands.iter().filter(|c| c.is_func).map(|c| c.addr).collect();
        cands.retain(|c| c.is_func || func_addrs.binary_search(&c.addr).is_err());
        let addrs: Vec<u64> = cands.iter().map(|c| c.addr).collect();
        for c in cands {
            let size = if c.is_func && c.size != 0 {
                c.size
            } else {
                // First kept symbol strictly above this one, else the section end.
                let next = addrs[addrs.partition_point(|&a| a <= c.addr)..]
                    .first()
                    .copied()
                    .unwrap_or(end);
                next.saturating_sub(c.addr)
            };
            let size = u32::try_from(size).unwrap_or(u32::MAX);
            let slot = out.entry((c.addr, c.name)).or_insert(0);
            *slot = (*slot).max(size);
        }
    }
    out.into_iter()
        .map(|((addr, name), size)| FunctionSymbol { addr, size, name })
        .collect()
}

/// The symbol table of the ELF image `data`, encoded in the ELF's byte order
/// with [`ftrace_abi::symtab::encode`], and the symbols it holds.
pub fn symbol_table(data: &[u8]) -> Result<(Vec<u8>, Vec<FunctionSymbol>), Error> {
    let file = elf::parse(data)?;
    let symbols = function_symbols(&file);
    if symbols.is_empty() {
        return Err(Error::NoFunctionSymbols);
    }
    let triples: Vec<(u64, u32, &str)> = symbols
        .iter()
        .map(|s| (s.addr, s.size, s.name.as_str()))
        .collect();
    let table = ftrace_abi::symtab::encode(&triples, !file.is_little_endian());
    Ok((table, symbols))
}

/// What [`embed_symtab`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbedSymtab {
    /// The new contents of [`ftrace_abi::SYMTAB_SECTION`].
    pub patch: Patch,
    /// Number of symbols in the table.
    pub count: usize,
}

impl EmbedSymtab {
    /// The one-line summary the CLI prints, e.g.
    /// `embedded 12 symbols (480 bytes of 524288) into kernel.elf`.
    pub fn summary(&self, path: &Path) -> String {
        format!(
            "embedded {} symbols ({} bytes of {}) into {}",
            self.count,
            self.patch.used,
            self.patch.bytes.len(),
            path.display()
        )
    }
}

/// Builds the symbol table of the ELF image `data` and the patch that writes
/// it into [`ftrace_abi::SYMTAB_SECTION`] (zero-filling the rest of it).
pub fn embed_symtab(data: &[u8]) -> Result<EmbedSymtab, Error> {
    let file = elf::parse(data)?;
    let slot = elf::section_slot(&file, data, ftrace_abi::SYMTAB_SECTION)?;
    let (table, symbols) = symbol_table(data)?;
    let patch = Patch::fill(
        &slot,
        &table,
        "the size in `ftrace::reserve_symtab!` (or `ftrace_abi::SYMTAB_RESERVED` for a linker script)",
    )?;
    Ok(EmbedSymtab {
        patch,
        count: symbols.len(),
    })
}

/// [`embed_symtab`] on the file at `path`, written in place.
pub fn embed_symtab_file(path: &Path) -> Result<EmbedSymtab, FileError> {
    let err = |e| FileError::new(path, e);
    let data = std::fs::read(path).map_err(|e| err(Error::Io(e)))?;
    let result = embed_symtab(&data).map_err(err)?;
    result.patch.write_to(path).map_err(|e| err(Error::Io(e)))?;
    Ok(result)
}

/// The table the kernel would get, decoded back with
/// [`ftrace_abi::symtab::SymbolTable::parse`], as text: a header line, then
/// `address size name` per symbol in address order.
pub fn symbols_report(data: &[u8]) -> Result<String, Error> {
    use std::fmt::Write as _;
    let file = elf::parse(data)?;
    let width = if file.is_64() { 16 } else { 8 };
    let (bytes, _) = symbol_table(data)?;
    let table = ftrace_abi::symtab::SymbolTable::parse(&bytes)
        .map_err(|e| Error::Malformed(format!("encoded table does not parse back: {e}")))?;
    let mut out = String::new();
    let order = if !file.is_little_endian() {
        "big"
    } else {
        "little"
    };
    let _ = writeln!(
        out,
        "{} symbols, {} bytes, {order}-endian",
        table.len(),
        bytes.len()
    );
    for s in table.iter() {
        let _ = writeln!(out, "{:0width$x} {:8x} {}", s.addr, s.size, s.name);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{Fixture, RODATA, TEXT};
    use ftrace_abi::symtab::{Symbol, SymbolTable};
    use object::elf::*;

    const LEAF: &str = "_ZN6kernel4demo9demo_leaf17h0123456789abcdefE";
    const OUTER: &str = "_ZN6kernel4demo10demo_outer17hfedcba9876543210E";

    /// A kernel with three Rust functions, an asm label, a marker and the
    /// reserved section.
    fn kernel(is_64: bool, big: bool, machine: u16, base: u64, reserved: usize) -> Fixture {
        let mut f = Fixture::new(is_64, big, machine);
        let text = f.section(".text", base, TEXT, vec![0x90; 0x100]);
        let rodata = f.section(".rodata", base + 0x1000, RODATA, vec![0; 0x20]);
        f.section(
            ftrace_abi::SYMTAB_SECTION,
            base + 0x2000,
            RODATA,
            vec![0; reserved],
        );
        f.func(LEAF, text, base + 0x10, 0x20)
            .func(OUTER, text, base + 0x40, 0x30)
            // A local function, the way most Rust functions end up.
            .symbol(
                "_ZN4core3ptr13drop_in_place17h1111111111111111E",
                Some(text),
                base + 0x80,
                8,
                STT_FUNC,
                STB_LOCAL,
            )
            // Asm label without `.type`: sized up to the next symbol.
            .symbol(
                "ftrace_caller",
                Some(text),
                base + 0xa0,
                0,
                STT_NOTYPE,
                STB_GLOBAL,
            )
            .symbol(
                "ftrace_caller_end",
                Some(text),
                base + 0xb0,
                0,
                STT_NOTYPE,
                STB_GLOBAL,
            )
            // Linker-script markers: aliasing a function, and past the end.
            .symbol("_stext", Some(text), base + 0x10, 0, STT_NOTYPE, STB_GLOBAL)
            .symbol(
                "_etext",
                Some(text),
                base + 0x100,
                0,
                STT_NOTYPE,
                STB_GLOBAL,
            )
            // Not functions.
            .symbol(
                "local_label",
                Some(text),
                base + 0xc0,
                0,
                STT_NOTYPE,
                STB_LOCAL,
            )
            .symbol(
                "DATA",
                Some(rodata),
                base + 0x1000,
                4,
                STT_OBJECT,
                STB_GLOBAL,
            )
            .symbol(
                "rodata_label",
                Some(rodata),
                base + 0x1004,
                0,
                STT_NOTYPE,
                STB_GLOBAL,
            )
            .symbol("ABS", None, 0x1234, 0, STT_NOTYPE, STB_GLOBAL);
        f
    }

    fn expected(base: u64) -> Vec<(u64, u32, &'static str)> {
        vec![
            (base + 0x10, 0x20, "kernel::demo::demo_leaf"),
            (base + 0x40, 0x30, "kernel::demo::demo_outer"),
            (base + 0x80, 8, "core::ptr::drop_in_place"),
            (base + 0xa0, 0x10, "ftrace_caller"),
            (base + 0xb0, 0x50, "ftrace_caller_end"),
        ]
    }

    fn check(is_64: bool, big: bool, machine: u16, base: u64) {
        let mut image = kernel(is_64, big, machine, base, 4096).build();
        let result = embed_symtab(&image).unwrap();
        assert_eq!(result.count, 5);
        assert_eq!(result.patch.bytes.len(), 4096);
        result.patch.apply(&mut image);

        // Read the section back from the patched image, as the kernel would.
        let file = elf::parse(&image).unwrap();
        let section = file.section_by_name(ftrace_abi::SYMTAB_SECTION).unwrap();
        let bytes = section.data().unwrap();
        assert_eq!(bytes[5], big as u8, "byte-order byte");
        assert!(bytes[result.patch.used..].iter().all(|&b| b == 0));
        let table = SymbolTable::parse(bytes).unwrap();
        let got: Vec<_> = table.iter().map(|s| (s.addr, s.size, s.name)).collect();
        assert_eq!(got, expected(base));
        assert_eq!(
            table.lookup(base + 0x14),
            Some((
                Symbol {
                    addr: base + 0x10,
                    size: 0x20,
                    name: "kernel::demo::demo_leaf"
                },
                4
            ))
        );
        assert_eq!(
            table.find("kernel::demo::demo_outer").map(|s| s.addr),
            Some(base + 0x40)
        );
    }

    #[test]
    fn x86_64_little_endian() {
        check(true, false, EM_X86_64, 0xffff_ffff_8010_0000);
    }

    #[test]
    fn i386_32_bit() {
        check(false, false, EM_386, 0x0010_0000);
    }

    #[test]
    fn ppc64_big_endian() {
        check(true, true, EM_PPC64, 0xc000_0000_0000_0000);
    }

    #[test]
    fn dedupes_identical_address_and_name() {
        let mut f = kernel(true, false, EM_X86_64, 0x1000, 4096);
        // Same function under another hash, same address: one entry.
        f.func(
            "_ZN6kernel4demo9demo_leaf17haaaaaaaaaaaaaaaaE",
            0,
            0x1010,
            0x20,
        );
        let (_, syms) = symbol_table(&f.build()).unwrap();
        assert_eq!(
            syms.iter()
                .filter(|s| s.name == "kernel::demo::demo_leaf")
                .count(),
            1
        );
    }

    #[test]
    fn demangles_without_hash() {
        assert_eq!(demangle(LEAF), "kernel::demo::demo_leaf");
        assert_eq!(
            demangle("_RNvNtCs1234_6kernel4demo9demo_leaf"),
            "kernel::demo::demo_leaf"
        );
        assert_eq!(demangle("ftrace_caller"), "ftrace_caller");
    }

    #[test]
    fn report_lists_the_table() {
        let image = kernel(false, false, EM_386, 0x10_0000, 4096).build();
        let report = symbols_report(&image).unwrap();
        let first: Vec<&str> = report.lines().take(3).collect();
        assert_eq!(
            first,
            [
                "5 symbols, 257 bytes, little-endian",
                "00100010       20 kernel::demo::demo_leaf",
                "00100040       30 kernel::demo::demo_outer",
            ]
        );
    }

    #[test]
    fn section_errors() {
        let mut f = kernel(true, false, EM_X86_64, 0x1000, 16);
        match embed_symtab(&f.build()) {
            Err(
                e @ Error::SectionTooSmall {
                    needed: 257,
                    available: 16,
                    ..
                },
            ) => assert_eq!(
                e.to_string(),
                "table needs 257 bytes but section `.ftrace_symtab` holds 16: raise the size in \
                 `ftrace::reserve_symtab!` (or `ftrace_abi::SYMTAB_RESERVED` for a linker script)"
            ),
            other => panic!("{other:?}"),
        }

        f.sections[2].name = ".other".into();
        assert!(matches!(
            embed_symtab(&f.build()),
            Err(Error::SectionMissing(".ftrace_symtab"))
        ));

        f.sections.pop();
        f.nobits(ftrace_abi::SYMTAB_SECTION, 0x9000, 4096);
        assert!(matches!(
            embed_symtab(&f.build()),
            Err(Error::SectionNoBits(".ftrace_symtab"))
        ));
    }

    #[test]
    fn section_beyond_the_end_of_the_file() {
        let mut image = kernel(true, false, EM_X86_64, 0x1000, 4096).build();
        // Point `sh_offset` of section 3 (.ftrace_symtab) past the end.
        let shoff = u64::from_le_bytes(image[0x28..0x30].try_into().unwrap()) as usize;
        let field = shoff + 3 * 64 + 0x18;
        let past = image.len() as u64 - 100;
        image[field..field + 8].copy_from_slice(&past.to_le_bytes());
        match embed_symtab(&image) {
            Err(Error::SectionOutsideFile {
                section: ".ftrace_symtab",
                end,
                file_len,
            }) => {
                assert_eq!((end, file_len), (past + 4096, image.len()));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn no_function_symbols() {
        let mut f = kernel(true, false, EM_X86_64, 0x1000, 4096);
        f.symbols.retain(|s| s.st_type == STT_OBJECT);
        assert!(matches!(
            embed_symtab(&f.build()),
            Err(Error::NoFunctionSymbols)
        ));
    }

    #[test]
    fn malformed_input() {
        assert!(matches!(embed_symtab(&[]), Err(Error::NotElf)));
        let noise: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        assert!(matches!(embed_symtab(&noise), Err(Error::NotElf)));
        let image = kernel(true, false, EM_X86_64, 0x1000, 4096).build();
        for len in [4, 20, 64, image.len() / 2, image.len() - 1] {
            match embed_symtab(&image[..len]) {
                Err(Error::Malformed(_)) => {}
                other => panic!("truncated to {len}: {other:?}"),
            }
        }
    }
}
