//! Address → name resolution for record names and output formatting.

use ftrace_abi::symtab::SymbolTable;

/// A view of the embedded symbol table (possibly absent).
#[derive(Debug, Clone, Copy, Default)]
pub struct Symbols {
    table: Option<SymbolTable<'static>>,
}

impl Symbols {
    /// Wraps an optional parsed table.
    pub fn new(table: Option<SymbolTable<'static>>) -> Self {
        Symbols { table }
    }

    /// The underlying table.
    pub fn table(&self) -> Option<&SymbolTable<'static>> {
        self.table.as_ref()
    }

    /// `(name, offset)` of the function containing `addr`.
    pub fn resolve(&self, addr: usize) -> Option<(&'static str, usize)> {
        let (sym, off) = self.table?.lookup(addr as u64)?;
        Some((sym.name, off as usize))
    }

    /// A displayable `name+0xoff`, or the bare address when unknown.
    pub fn display(&self, addr: usize) -> SymAddr {
        SymAddr {
            sym: self.resolve(addr),
            addr,
        }
    }
}

/// An address shown as `name+0xoff` (or `0xaddr` when unknown).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SymAddr {
    /// The resolved `(name, offset)`, if any.
    pub sym: Option<(&'static str, usize)>,
    /// The address.
    pub addr: usize,
}

impl core::fmt::Display for SymAddr {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.sym {
            Some((name, off)) => write!(f, "{name}+{off:#x}"),
            None => write!(f, "{:#x}", self.addr),
        }
    }
}
