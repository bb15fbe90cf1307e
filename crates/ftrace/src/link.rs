//! The two tables a linked kernel hands the tracer, found without a linker
//! script of this project's:
//!
//! * the site table: the compiler puts one pointer per patchable function
//!   entry into the section `__patchable_function_entries`, and the linker
//!   (lld, GNU ld) defines `__start___patchable_function_entries` and
//!   `__stop___patchable_function_entries` around it, because the section
//!   name is a C identifier. [`patchable_sites`] reads them.
//! * the symbol table: [`reserve_symtab!`](crate::reserve_symtab) reserves a
//!   section of the size the kernel chooses, and `ftrace-tools
//!   embed-symtab` fills it in the linked ELF. [`SymtabSpace::table`] parses
//!   it.
//!
//! Each says which build step was skipped when its table is missing.

use core::cell::UnsafeCell;
use core::fmt;

use ftrace_abi::symtab::{HEADER_SIZE, PLACEHOLDER, SymbolTable, SymtabError};

// Weak and hidden: a kernel linked without any patchable entry still links
// (both symbols are then 0 and `patchable_sites` says which step is
// missing), and no dynamic relocation is ever needed for them, even in a
// position-independent kernel.
core::arch::global_asm!(
    ".weak __start___patchable_function_entries",
    ".hidden __start___patchable_function_entries",
    ".weak __stop___patchable_function_entries",
    ".hidden __stop___patchable_function_entries",
);

unsafe extern "C" {
    static __start___patchable_function_entries: usize;
    static __stop___patchable_function_entries: usize;
}

/// No site table was linked in: the kernel's crate was compiled without
/// `-Zpatchable-function-entry`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoSites;

impl fmt::Display for NoSites {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "ftrace: no patchable function entries: the kernel's crate was built without \
             -Zpatchable-function-entry (docs/embedding.md, step 2)",
        )
    }
}

/// The compiler's site table as the linker gathered it, between
/// `__start___patchable_function_entries` and
/// `__stop___patchable_function_entries`: one address per patchable entry,
/// for [`Ftrace::new`](crate::Ftrace::new).
///
/// A kernel whose linker script places the section under other symbols
/// reads them itself; a script that names the output section
/// `__patchable_function_entries` keeps these symbols working.
pub fn patchable_sites() -> Result<&'static [usize], NoSites> {
    let start = core::ptr::addr_of!(__start___patchable_function_entries);
    let stop = core::ptr::addr_of!(__stop___patchable_function_entries);
    // Hidden from the optimiser: a weak symbol's address may be null.
    let (start, stop) = (
        core::hint::black_box(start as usize),
        core::hint::black_box(stop as usize),
    );
    if start == 0 || stop <= start {
        return Err(NoSites);
    }
    let len = (stop - start) / core::mem::size_of::<usize>();
    // SAFETY: the linker defines the two symbols around the output section
    // holding every `__patchable_function_entries` input section, an array
    // of pointer-sized, pointer-aligned addresses that nothing writes.
    Ok(unsafe { core::slice::from_raw_parts(start as *const usize, len) })
}

/// The demangled name of [`symtab_anchor`].
const ANCHOR_NAME: &str = "ftrace::link::symtab_anchor";

/// A function whose link-time address the symbol table holds and whose
/// run-time address [`SymtabSpace::table`] takes: their difference is how
/// far the loader moved the kernel. Never inlined, and [`SymtabSpace::table`]
/// takes its address, so it is always in the image under its own name.
#[inline(never)]
fn symtab_anchor() -> u32 {
    0x4653_594d
}

/// Room for the embedded symbol table, `N` bytes, in the section
/// [`ftrace_abi::SYMTAB_SECTION`]: declare it with
/// [`reserve_symtab!`](crate::reserve_symtab).
///
/// It starts with [`ftrace_abi::symtab::PLACEHOLDER`] (so the section has
/// bytes in the ELF file, which `ftrace-tools embed-symtab` overwrites in
/// place), and its contents are read through an [`UnsafeCell`], so the
/// compiler never assumes the placeholder is still there.
#[repr(C, align(8))]
pub struct SymtabSpace<const N: usize>(UnsafeCell<[u8; N]>);

// SAFETY: the bytes are written only in the ELF file, before the kernel
// runs; at run time they are only read.
unsafe impl<const N: usize> Sync for SymtabSpace<N> {}

impl<const N: usize> SymtabSpace<N> {
    /// The placeholder, then zeros.
    ///
    /// # Panics
    /// At compile time when `N` is smaller than a table header.
    pub const fn new() -> Self {
        assert!(
            N >= HEADER_SIZE,
            "reserve_symtab!: size below the header size"
        );
        let mut b = [0u8; N];
        let mut i = 0;
        while i < HEADER_SIZE {
            b[i] = PLACEHOLDER[i];
            i += 1;
        }
        SymtabSpace(UnsafeCell::new(b))
    }

    /// The reserved bytes as the post-link tool left them.
    pub fn bytes(&'static self) -> &'static [u8] {
        // SAFETY: nothing writes the bytes at run time (see `Sync`).
        unsafe { &*self.0.get() }
    }

    /// The embedded table; [`SymtabError::NotEmbedded`] (whose message
    /// names the missing `ftrace-tools embed-symtab` step) when the tool
    /// was not run on this kernel.
    ///
    /// A kernel relocated by its loader (position-independent, as the
    /// `bootloader` crate loads `x86_64-unknown-none` kernels) runs at other
    /// addresses than the ones the table was built from: the table is
    /// given the difference ([`SymbolTable::with_load_bias`]), measured on
    /// a function of this crate that it always holds.
    pub fn table(&'static self) -> Result<SymbolTable<'static>, SymtabError> {
        let table = SymbolTable::parse(self.bytes())?;
        let here = symtab_anchor as fn() -> u32 as usize as u64;
        let bias = table
            .find(ANCHOR_NAME)
            .map_or(0, |s| here.wrapping_sub(s.addr));
        Ok(table.with_load_bias(bias))
    }
}

impl<const N: usize> Default for SymtabSpace<N> {
    fn default() -> Self {
        Self::new()
    }
}

/// Reserves `SIZE` bytes for the symbol table that `ftrace-tools
/// embed-symtab` writes into the linked kernel, as a static of type
/// [`SymtabSpace`] in the section `.ftrace_symtab`:
///
/// ```
/// ftrace::reserve_symtab!(static SYMTAB: 256 * 1024);
///
/// // Before the tool ran (as in this doc test):
/// let err = SYMTAB.table().unwrap_err();
/// assert!(err.to_string().contains("ftrace-tools embed-symtab"));
/// ```
///
/// The tool says how many bytes it needs when `SIZE` is too small (a debug
/// build of a kernel needs several times more than a release build:
/// `ftrace-tools symbols <kernel ELF>` prints the size). No linker script
/// is needed; one that places `.ftrace_symtab` itself must keep it
/// PROGBITS.
#[macro_export]
macro_rules! reserve_symtab {
    ($vis:vis static $name:ident : $size:expr) => {
        #[unsafe(link_section = ".ftrace_symtab")]
        #[used]
        $vis static $name: $crate::link::SymtabSpace<{ $size }> = $crate::link::SymtabSpace::new();
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    crate::reserve_symtab!(static SPACE: 64);

    #[test]
    fn missing_tables_name_their_step() {
        // The host test binary has no patchable entries.
        let e = patchable_sites().unwrap_err();
        assert!(e.to_string().contains("-Zpatchable-function-entry"));
        assert_eq!(SPACE.bytes().len(), 64);
        assert_eq!(&SPACE.bytes()[..HEADER_SIZE], &PLACEHOLDER);
        assert_eq!(SPACE.table().unwrap_err(), SymtabError::NotEmbedded);
    }
}
