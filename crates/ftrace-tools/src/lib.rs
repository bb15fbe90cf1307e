#![doc = include_str!("../README.md")]

pub mod elf;
pub mod error;
pub mod mcount;
pub mod sites;
pub mod symbols;

#[cfg(test)]
mod testutil;

pub use elf::Patch;
pub use error::{Error, FileError};
pub use mcount::{
    DEFAULT_MCOUNT_SYMBOL, EmbedMcount, MCOUNT_WINDOW, embed_mcount_sites, embed_mcount_sites_file,
    encode_mcount_sites, mcount_sites,
};
pub use sites::{Site, patchable_sites, sites_report};
pub use symbols::{
    EmbedSymtab, FunctionSymbol, demangle, embed_symtab, embed_symtab_file, function_symbols,
    symbol_table, symbols_report,
};
