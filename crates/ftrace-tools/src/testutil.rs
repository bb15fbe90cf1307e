//! Synthesized "linked kernel" ELF files for the tests: executables with
//! sections at real addresses and a symbol table, written with
//! `object::write::elf::Writer` so that no fixture file is committed.
//!
//! Shared by the unit tests (`#[cfg(test)] mod testutil`) and the CLI test
//! (`#[path]`-included from `tests/cli.rs`).
#![allow(dead_code, reason = "each test binary uses a different subset")]

use object::Endianness;
use object::elf;
use object::write::elf::{FileHeader, SectionHeader, Sym, Writer};

/// One section of a fixture.
pub struct FxSection {
    /// Section name.
    pub name: String,
    /// `sh_addr`.
    pub addr: u64,
    /// `sh_flags`.
    pub flags: u64,
    /// Contents; `None` makes a `SHT_NOBITS` section of `nobits_size` bytes.
    pub data: Option<Vec<u8>>,
    /// Size of a `SHT_NOBITS` section.
    pub nobits_size: u64,
}

/// One symbol of a fixture.
pub struct FxSymbol {
    /// Raw (mangled) name.
    pub name: String,
    /// Index into [`Fixture::sections`]; `None` is `SHN_ABS`.
    pub section: Option<usize>,
    /// `st_value`.
    pub value: u64,
    /// `st_size`.
    pub size: u64,
    /// `STT_*`.
    pub st_type: u8,
    /// `STB_*`.
    pub bind: u8,
}

/// An ELF executable to synthesize.
pub struct Fixture {
    /// ELFCLASS64 when true.
    pub is_64: bool,
    /// Big-endian when true.
    pub big_endian: bool,
    /// `e_machine`.
    pub machine: u16,
    /// Sections in header order (after the null section).
    pub sections: Vec<FxSection>,
    /// Symbols, in any order (locals are moved first).
    pub symbols: Vec<FxSymbol>,
}

/// Flags of a text section.
pub const TEXT: u64 = (elf::SHF_ALLOC | elf::SHF_EXECINSTR) as u64;
/// Flags of a read-only data section.
pub const RODATA: u64 = elf::SHF_ALLOC as u64;

impl Fixture {
    /// An empty fixture for a machine.
    pub fn new(is_64: bool, big_endian: bool, machine: u16) -> Self {
        Fixture {
            is_64,
            big_endian,
            machine,
            sections: Vec::new(),
            symbols: Vec::new(),
        }
    }

    /// Adds a `SHT_PROGBITS` section and returns its index.
    pub fn section(&mut self, name: &str, addr: u64, flags: u64, data: Vec<u8>) -> usize {
        self.sections.push(FxSection {
            name: name.into(),
            addr,
            flags,
            data: Some(data),
            nobits_size: 0,
        });
        self.sections.len() - 1
    }

    /// Adds a `SHT_NOBITS` section and returns its index.
    pub fn nobits(&mut self, name: &str, addr: u64, size: u64) -> usize {
        self.sections.push(FxSection {
            name: name.into(),
            addr,
            flags: (elf::SHF_ALLOC | elf::SHF_WRITE) as u64,
            data: None,
            nobits_size: size,
        });
        self.sections.len() - 1
    }

    /// Adds a symbol.
    pub fn symbol(
        &mut self,
        name: &str,
        section: Option<usize>,
        value: u64,
        size: u64,
        st_type: u8,
        bind: u8,
    ) -> &mut Self {
        self.symbols.push(FxSymbol {
            name: name.into(),
            section,
            value,
            size,
            st_type,
            bind,
        });
        self
    }

    /// Adds a global `STT_FUNC` symbol.
    pub fn func(&mut self, name: &str, section: usize, value: u64, size: u64) -> &mut Self {
        self.symbol(
            name,
            Some(section),
            value,
            size,
            elf::STT_FUNC,
            elf::STB_GLOBAL,
        )
    }

    /// Writes the ELF image.
    pub fn build(&self) -> Vec<u8> {
        let endian = if self.big_endian {
            Endianness::Big
        } else {
            Endianness::Little
        };
        let mut buf = Vec::new();
        let mut w = Writer::new(endian, self.is_64, &mut buf);
        w.reserve_file_header();

        w.reserve_null_section_index();
        let mut idx = Vec::new();
        let mut names = Vec::new();
        let mut offsets = Vec::new();
        for s in &self.sections {
            names.push(w.add_section_name(s.name.as_bytes()));
            idx.push(w.reserve_section_index());
        }
        for s in &self.sections {
            offsets.push(match &s.data {
                Some(d) => w.reserve(d.len(), 16),
                None => w.reserved_len(),
            });
        }

        // Locals first, as ELF requires.
        let mut order: Vec<&FxSymbol> = self.symbols.iter().collect();
        order.sort_by_key(|s| s.bind != elf::STB_LOCAL);
        let num_local = 1 + order.iter().filter(|s| s.bind == elf::STB_LOCAL).count() as u32;
        w.reserve_null_symbol_index();
        let mut sym_names = Vec::new();
        for s in &order {
            sym_names.push(w.add_string(s.name.as_bytes()));
            w.reserve_symbol_index(s.section.map(|i| idx[i]));
        }
        w.reserve_symtab_section_index();
        w.reserve_symtab();
        w.reserve_strtab_section_index();
        w.reserve_strtab();
        w.reserve_shstrtab_section_index();
        w.reserve_shstrtab();
        w.reserve_section_headers();

        w.write_file_header(&FileHeader {
            os_abi: elf::ELFOSABI_NONE,
            abi_version: 0,
            e_type: elf::ET_EXEC,
            e_machine: self.machine,
            e_entry: self.sections.first().map_or(0, |s| s.addr),
            // ppc64: ELFv2 ABI.
            e_flags: if self.machine == elf::EM_PPC64 { 2 } else { 0 },
        })
        .unwrap();
        for s in &self.sections {
            if let Some(d) = &s.data {
                w.write_align(16);
                w.write(d);
            }
        }
        w.write_null_symbol();
        for (s, &name) in order.iter().zip(&sym_names) {
            w.write_symbol(&Sym {
                name: Some(name),
                section: s.section.map(|i| idx[i]),
                st_info: (s.bind << 4) | s.st_type,
                st_other: 0,
                st_shndx: if s.section.is_none() { elf::SHN_ABS } else { 0 },
                st_value: s.value,
                st_size: s.size,
            });
        }
        w.write_strtab();
        w.write_shstrtab();
        w.write_null_section_header();
        for (i, s) in self.sections.iter().enumerate() {
            w.write_section_header(&SectionHeader {
                name: Some(names[i]),
                sh_type: if s.data.is_some() {
                    elf::SHT_PROGBITS
                } else {
                    elf::SHT_NOBITS
                },
                sh_flags: s.flags,
                sh_addr: s.addr,
                sh_offset: offsets[i] as u64,
                sh_size: s.data.as_ref().map_or(s.nobits_size, |d| d.len() as u64),
                sh_link: 0,
                sh_info: 0,
                sh_addralign: 16,
                sh_entsize: 0,
            });
        }
        w.write_symtab_section_header(num_local);
        w.write_strtab_section_header();
        w.write_shstrtab_section_header();
        debug_assert_eq!(w.reserved_len(), w.len());
        buf
    }
}
