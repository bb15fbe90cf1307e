//! ELF access shared by the tools: parsing with a clear error, locating the
//! file bytes of a reserved section, and the in-place [`Patch`] the tools
//! produce.

use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use object::{Object, ObjectSection, ObjectSymbol, SectionFlags, SectionKind};

use crate::error::Error;

/// Parses `data` as an ELF file (32- or 64-bit, either byte order).
///
/// Bytes without the ELF magic give [`Error::NotElf`]; an ELF whose headers
/// are truncated or inconsistent gives [`Error::Malformed`].
pub fn parse(data: &[u8]) -> Result<object::File<'_>, Error> {
    if data.len() < object::elf::ELFMAG.len() || data[..4] != object::elf::ELFMAG {
        return Err(Error::NotElf);
    }
    let file = object::File::parse(data)?;
    if file.format() != object::BinaryFormat::Elf {
        return Err(Error::NotElf);
    }
    Ok(file)
}

/// True when `section` holds instructions (`SHF_EXECINSTR`).
pub fn is_executable(section: &object::Section<'_, '_>) -> bool {
    match section.flags() {
        SectionFlags::Elf { sh_flags } => sh_flags & u64::from(object::elf::SHF_EXECINSTR) != 0,
        _ => section.kind() == SectionKind::Text,
    }
}

/// The executable section `symbol` is defined in, if any (undefined,
/// absolute and data symbols give `None`).
pub fn code_section<'data, 'file>(
    file: &'file object::File<'data>,
    symbol: &object::Symbol<'data, 'file>,
) -> Option<object::Section<'data, 'file>> {
    let object::SymbolSection::Section(index) = symbol.section() else {
        return None;
    };
    let section = file.section_by_index(index).ok()?;
    is_executable(&section).then_some(section)
}

/// The ELF `st_type` (`STT_*`) of a symbol.
pub fn st_type(symbol: &object::Symbol<'_, '_>) -> u8 {
    match symbol.flags() {
        object::SymbolFlags::Elf { st_info, .. } => st_info & 0xf,
        _ => object::elf::STT_NOTYPE,
    }
}

/// Where a reserved section lives in the file and in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SectionSlot {
    /// Section name.
    pub name: &'static str,
    /// File offset of its first byte.
    pub offset: u64,
    /// Its size in bytes.
    pub size: u64,
    /// Its load address.
    pub address: u64,
}

/// Locates the file bytes of section `name`, checking that it exists, has
/// file contents (is not `SHT_NOBITS`) and lies within `data`.
pub fn section_slot(
    file: &object::File<'_>,
    data: &[u8],
    name: &'static str,
) -> Result<SectionSlot, Error> {
    let section = file
        .section_by_name(name)
        .ok_or(Error::SectionMissing(name))?;
    let (offset, size) = section.file_range().ok_or(Error::SectionNoBits(name))?;
    let end = offset.saturating_add(size);
    if end > data.len() as u64 {
        return Err(Error::SectionOutsideFile {
            section: name,
            end,
            file_len: data.len(),
        });
    }
    Ok(SectionSlot {
        name,
        offset,
        size,
        address: section.address(),
    })
}

/// Address of the defined symbol called exactly `name` (raw, not demangled).
pub fn symbol_address(file: &object::File<'_>, name: &str) -> Result<u64, Error> {
    file.symbols()
        .find(|s| s.name() == Ok(name) && !s.is_undefined())
        .map(|s| s.address())
        .ok_or_else(|| Error::SymbolMissing(name.to_owned()))
}

/// New contents for one whole section of a file, ready to be written in
/// place: the tools never move or resize anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patch {
    /// The section patched.
    pub section: &'static str,
    /// File offset of the section.
    pub offset: u64,
    /// The section's new contents (the table, then zeros to the section end).
    pub bytes: Vec<u8>,
    /// Bytes of `bytes` used by the table; the rest is zero fill.
    pub used: usize,
}

impl Patch {
    /// Builds a patch that puts `table` at the start of `slot` and zeros the
    /// rest, or fails when the table does not fit.
    pub fn fill(slot: &SectionSlot, table: &[u8], constant: &'static str) -> Result<Self, Error> {
        let available = usize::try_from(slot.size).unwrap_or(usize::MAX);
        if table.len() > available {
            return Err(Error::SectionTooSmall {
                section: slot.name,
                needed: table.len(),
                available,
                constant,
            });
        }
        let mut bytes = vec![0u8; available];
        bytes[..table.len()].copy_from_slice(table);
        Ok(Patch {
            section: slot.name,
            offset: slot.offset,
            bytes,
            used: table.len(),
        })
    }

    /// Applies the patch to an in-memory image of the file.
    ///
    /// # Panics
    /// When the patch lies outside `image` (it was made for another file).
    pub fn apply(&self, image: &mut [u8]) {
        let start = self.offset as usize;
        image[start..start + self.bytes.len()].copy_from_slice(&self.bytes);
    }

    /// Writes the patch into the file at `path`, in place, without touching
    /// any other byte.
    pub fn write_to(&self, path: &Path) -> std::io::Result<()> {
        let mut f = OpenOptions::new().write(true).open(path)?;
        f.seek(SeekFrom::Start(self.offset))?;
        f.write_all(&self.bytes)?;
        f.sync_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_non_elf() {
        assert!(matches!(parse(&[]), Err(Error::NotElf)));
        assert!(matches!(parse(b"\x7fEL"), Err(Error::NotElf)));
        assert!(matches!(
            parse(b"MZ\x90\x00 not an elf at all"),
            Err(Error::NotElf)
        ));
        assert!(matches!(parse(b"\x7fELF"), Err(Error::Malformed(_))));
    }

    #[test]
    fn patch_fills_with_zeros() {
        let slot = SectionSlot {
            name: ".x",
            offset: 2,
            size: 4,
            address: 0,
        };
        let p = Patch::fill(&slot, &[7, 8], "C").unwrap();
        assert_eq!((p.bytes.as_slice(), p.used), (&[7, 8, 0, 0][..], 2));
        let mut image = [1u8; 8];
        p.apply(&mut image);
        assert_eq!(image, [1, 1, 7, 8, 0, 0, 1, 1]);
        let e = Patch::fill(&slot, &[0; 5], "`ftrace_abi::X`").unwrap_err();
        assert_eq!(
            e.to_string(),
            "table needs 5 bytes but section `.x` holds 4: raise `ftrace_abi::X`"
        );
    }
}
