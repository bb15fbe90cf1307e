//! Address → name resolution for record names and output formatting.

use alloc::vec::Vec;

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

    /// The names of the functions containing `addrs`, which must be in
    /// ascending order: one pass over the table (a lookup per address
    /// would be O(log n) each). Same answers as [`resolve`](Self::resolve).
    pub fn resolve_sorted(&self, addrs: impl Iterator<Item = usize>) -> Vec<Option<&'static str>> {
        let Some(t) = self.table else {
            return addrs.map(|_| None).collect();
        };
        // `j`: number of symbols starting at or below the current address.
        let mut j = 0;
        let mut last = 0;
        addrs
            .map(|a| {
                debug_assert!(a >= last, "addresses out of order");
                last = a;
                let a = a as u64;
                while j < t.len() && t.addr(j) <= a {
                    j += 1;
                }
                let s = t.get(j.checked_sub(1)?);
                (s.size == 0 || a - s.addr < u64::from(s.size)).then_some(s.name)
            })
            .collect()
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
