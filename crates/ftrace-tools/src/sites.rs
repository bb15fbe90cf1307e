//! The patchable-function-entry site table of a linked kernel, for tests and
//! debugging.
//!
//! The compiler emits one pointer per patchable function entry into
//! [`ftrace_abi::SITES_SECTION`]. The table is found, in this order,
//! between [`ftrace_abi::SITES_START_SYMBOL`] and
//! [`ftrace_abi::SITES_STOP_SYMBOL`] (this repository's linker scripts),
//! between [`ftrace_abi::LINKER_SITES_START_SYMBOL`] and
//! [`ftrace_abi::LINKER_SITES_STOP_SYMBOL`] (what lld and GNU ld define
//! without a linker script, and what `ftrace::link::patchable_sites`
//! reads), or as the output section [`ftrace_abi::SITES_SECTION`] itself.
//! Each entry is a pointer in the ELF's class (4 or 8 bytes) and byte order.

use object::{Object, ObjectSection};

use crate::elf;
use crate::error::Error;
use crate::symbols::{FunctionSymbol, function_symbols};

/// One site of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    /// Address of the patchable entry.
    pub addr: u64,
    /// The function containing it and the offset into it, if any.
    pub function: Option<(String, u64)>,
}

/// Reads the site table of the ELF image `data`, in table order.
pub fn patchable_sites(data: &[u8]) -> Result<Vec<Site>, Error> {
    let file = elf::parse(data)?;
    let (start, stop) = site_table_range(&file)?;
    let width: u64 = if file.is_64() { 8 } else { 4 };
    let len = stop - start;
    if len % width != 0 {
        return Err(Error::BadSiteTable(format!(
            "{len} bytes between the symbols is not a multiple of the {width}-byte entry"
        )));
    }
    if len == 0 {
        return Ok(Vec::new());
    }
    let bytes = file
        .sections()
        .filter(|s| s.file_range().is_some())
        .find(|s| s.address() <= start && stop - s.address() <= s.size())
        .map(|s| s.data_range(start, len))
        .transpose()?
        .flatten()
        .ok_or_else(|| {
            Error::BadSiteTable(format!(
                "{start:#x}..{stop:#x} is not inside a section with file contents"
            ))
        })?;

    let functions = function_symbols(&file);
    let big = !file.is_little_endian();
    Ok(bytes
        .chunks_exact(width as usize)
        .map(|c| {
            let addr = match (c.len(), big) {
                (4, false) => u64::from(u32::from_le_bytes(c.try_into().unwrap_or_default())),
                (4, true) => u64::from(u32::from_be_bytes(c.try_into().unwrap_or_default())),
                (_, false) => u64::from_le_bytes(c.try_into().unwrap_or_default()),
                (_, true) => u64::from_be_bytes(c.try_into().unwrap_or_default()),
            };
            Site {
                addr,
                function: containing(&functions, addr),
            }
        })
        .collect())
}

/// Where the site table lies (module docs): the first pair of symbols of
/// which at least one is defined (a pair with only one defined names the
/// other as missing), else the section.
fn site_table_range(file: &object::File<'_>) -> Result<(u64, u64), Error> {
    for (start_name, stop_name) in [
        (
            ftrace_abi::SITES_START_SYMBOL,
            ftrace_abi::SITES_STOP_SYMBOL,
        ),
        (
            ftrace_abi::LINKER_SITES_START_SYMBOL,
            ftrace_abi::LINKER_SITES_STOP_SYMBOL,
        ),
    ] {
        let start = elf::symbol_address(file, start_name);
        let stop = elf::symbol_address(file, stop_name);
        match (start, stop) {
            (Err(_), Err(_)) => continue,
            (Ok(start), Ok(stop)) if stop < start => {
                return Err(Error::BadSiteTable(format!(
                    "`{stop_name}` ({stop:#x}) is below `{start_name}` ({start:#x})"
                )));
            }
            (Ok(start), Ok(stop)) => return Ok((start, stop)),
            (Err(e), _) | (_, Err(e)) => return Err(e),
        }
    }
    file.section_by_name(ftrace_abi::SITES_SECTION)
        .map(|s| (s.address(), s.address() + s.size()))
        .ok_or(Error::NoSiteTable)
}

/// The function containing `addr`, with the same rule as the kernel's
/// lookup: the last symbol starting at or below it, within its size.
fn containing(functions: &[FunctionSymbol], addr: u64) -> Option<(String, u64)> {
    let i = functions
        .partition_point(|f| f.addr <= addr)
        .checked_sub(1)?;
    let f = &functions[i];
    let off = addr - f.addr;
    (f.size == 0 || off < u64::from(f.size)).then(|| (f.name.clone(), off))
}

/// The site table as text: a count line, then `address symbol+offset` per
/// site (`?` when no function contains it).
pub fn sites_report(data: &[u8]) -> Result<String, Error> {
    use std::fmt::Write as _;
    let width = if elf::parse(data)?.is_64() { 16 } else { 8 };
    let sites = patchable_sites(data)?;
    let mut out = String::new();
    let _ = writeln!(out, "{} patchable function entry sites", sites.len());
    for s in &sites {
        let _ = match &s.function {
            Some((name, off)) => writeln!(out, "{:0width$x} {name}+{off:#x}", s.addr),
            None => writeln!(out, "{:0width$x} ?", s.addr),
        };
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{Fixture, RODATA, TEXT};
    use object::elf::*;

    fn kernel(is_64: bool, big: bool, machine: u16, base: u64) -> Fixture {
        let mut f = Fixture::new(is_64, big, machine);
        let text = f.section(".text", base, TEXT, vec![0x90; 0x100]);
        let ptr = |a: u64| -> Vec<u8> {
            match (is_64, big) {
                (true, true) => a.to_be_bytes().to_vec(),
                (true, false) => a.to_le_bytes().to_vec(),
                (false, true) => (a as u32).to_be_bytes().to_vec(),
                (false, false) => (a as u32).to_le_bytes().to_vec(),
            }
        };
        let table: Vec<u8> = [base + 0x10, base + 0x48, base + 0xf8]
            .into_iter()
            .flat_map(ptr)
            .collect();
        let w = if is_64 { 8 } else { 4 };
        // Some unrelated data first, then the table.
        let mut rodata = vec![0xaa; 8];
        rodata.extend_from_slice(&table);
        let ro = f.section(".rodata", base + 0x1000, RODATA, rodata);
        f.func("_ZN6kernel1a17h0123456789abcdefE", text, base + 0x10, 0x20)
            .func("b", text, base + 0x40, 0x20)
            .symbol(
                ftrace_abi::SITES_START_SYMBOL,
                Some(ro),
                base + 0x1008,
                0,
                STT_NOTYPE,
                STB_GLOBAL,
            )
            .symbol(
                ftrace_abi::SITES_STOP_SYMBOL,
                Some(ro),
                base + 0x1008 + 3 * w,
                0,
                STT_NOTYPE,
                STB_GLOBAL,
            );
        f
    }

    #[test]
    fn reads_every_class_and_byte_order() {
        for (is_64, big, machine, base) in [
            (true, false, EM_X86_64, 0xffff_ffff_8010_0000u64),
            (false, false, EM_386, 0x10_0000),
            (true, true, EM_PPC64, 0xc000_0000_0000_0000),
        ] {
            let sites = patchable_sites(&kernel(is_64, big, machine, base).build()).unwrap();
            assert_eq!(
                sites,
                [
                    Site {
                        addr: base + 0x10,
                        function: Some(("kernel::a".into(), 0))
                    },
                    Site {
                        addr: base + 0x48,
                        function: Some(("b".into(), 8))
                    },
                    Site {
                        addr: base + 0xf8,
                        function: None
                    },
                ]
            );
        }
    }

    #[test]
    fn report() {
        let report = sites_report(&kernel(false, false, EM_386, 0x10_0000).build()).unwrap();
        assert_eq!(
            report,
            "3 patchable function entry sites\n\
             00100010 kernel::a+0x0\n\
             00100048 b+0x8\n\
             001000f8 ?\n"
        );
    }

    #[test]
    fn errors() {
        let mut f = kernel(true, false, EM_X86_64, 0x1000);
        f.symbols
            .retain(|s| s.name != ftrace_abi::SITES_STOP_SYMBOL);
        assert!(matches!(
            patchable_sites(&f.build()),
            Err(Error::SymbolMissing(s)) if s == "__ftrace_sites_stop"
        ));

        let mut f = kernel(true, false, EM_X86_64, 0x1000);
        f.symbols.last_mut().unwrap().value -= 4;
        assert!(matches!(
            patchable_sites(&f.build()),
            Err(Error::BadSiteTable(_))
        ));

        let mut f = kernel(true, false, EM_X86_64, 0x1000);
        f.symbols.last_mut().unwrap().value = 0x1000;
        assert!(matches!(
            patchable_sites(&f.build()),
            Err(Error::BadSiteTable(_))
        ));

        let mut f = kernel(true, false, EM_X86_64, 0x1000);
        f.symbols.last_mut().unwrap().value += 0x1000;
        assert!(matches!(
            patchable_sites(&f.build()),
            Err(Error::BadSiteTable(_))
        ));

        // Without this project's symbols: the linker's, then the section.
        let mut f = kernel(true, false, EM_X86_64, 0x1000);
        f.symbols[2].name = ftrace_abi::LINKER_SITES_START_SYMBOL.into();
        f.symbols[3].name = ftrace_abi::LINKER_SITES_STOP_SYMBOL.into();
        assert_eq!(patchable_sites(&f.build()).unwrap().len(), 3);
        let mut f = kernel(true, false, EM_X86_64, 0x1000);
        f.symbols.truncate(2);
        assert!(matches!(
            patchable_sites(&f.build()),
            Err(Error::NoSiteTable)
        ));
        f.sections[1].name = ftrace_abi::SITES_SECTION.into();
        let sites = patchable_sites(&f.build()).unwrap();
        assert_eq!(
            sites.len(),
            4,
            "the whole section: 8 bytes of data, then the table"
        );
        assert_eq!(sites[1].addr, 0x1010);

        // An empty table is fine.
        let mut f = kernel(true, false, EM_X86_64, 0x1000);
        let start = f.symbols[2].value;
        f.symbols.last_mut().unwrap().value = start;
        assert_eq!(patchable_sites(&f.build()).unwrap(), []);
    }
}
