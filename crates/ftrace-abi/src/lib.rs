//! Layouts shared between the `ftrace` crate, the test kernel and the host
//! tools: section names, reserved sizes, and the format of the symbol table
//! that `ftrace-tools` embeds into a linked kernel.
//!
//! Everything here is plain data and pure functions so that the kernel (which
//! decodes) and the host tool (which encodes) cannot drift apart.
#![no_std]

#[cfg(feature = "alloc")]
extern crate alloc;

/// Section the compiler fills with one pointer per patchable function entry
/// (`-Zpatchable-function-entry`). Linker scripts place it between
/// [`SITES_START_SYMBOL`] and [`SITES_STOP_SYMBOL`].
pub const SITES_SECTION: &str = "__patchable_function_entries";
/// Symbol at the first site-table entry.
pub const SITES_START_SYMBOL: &str = "__ftrace_sites_start";
/// Symbol one past the last site-table entry.
pub const SITES_STOP_SYMBOL: &str = "__ftrace_sites_stop";

/// Symbol the linker defines at the start of [`SITES_SECTION`] when no
/// linker script renames it (lld and GNU ld do this for every section whose
/// name is a C identifier).
pub const LINKER_SITES_START_SYMBOL: &str = "__start___patchable_function_entries";
/// Symbol the linker defines one past the end of [`SITES_SECTION`].
pub const LINKER_SITES_STOP_SYMBOL: &str = "__stop___patchable_function_entries";

/// Section reserved for the embedded symbol table: by
/// `ftrace::reserve_symtab!` in the kernel, or by a linker script.
pub const SYMTAB_SECTION: &str = ".ftrace_symtab";
/// Bytes this repository's test kernel reserves for [`SYMTAB_SECTION`] in
/// its linker scripts (a kernel using `ftrace::reserve_symtab!` chooses its
/// own size). The post-link tool fails with a clear message when the table
/// does not fit.
pub const SYMTAB_RESERVED: usize = 512 * 1024;

/// Section reserved for the site table of `mcount` builds (i686), which the
/// compiler does not emit: the post-link tool finds every `call mcount` and
/// writes their addresses here (Linux's `recordmcount`).
pub const MCOUNT_SITES_SECTION: &str = ".ftrace_mcount_sites";
/// Maximum number of `mcount` call sites [`MCOUNT_SITES_SECTION`] holds.
pub const MCOUNT_SITES_CAPACITY: usize = 16 * 1024;
/// Layout of [`MCOUNT_SITES_SECTION`]: a `u32` count, then that many `u32`
/// site addresses (i686 is the only mcount target).
pub const MCOUNT_SITES_RESERVED: usize = 4 + 4 * MCOUNT_SITES_CAPACITY;

/// Bytes of one ppc64 out-of-line stub: `mflr r0; bl ftrace_caller;
/// mtlr r0; b func+4`. The linker script reserves this many bytes per site.
pub const PPC64_STUB_SIZE: usize = 16;
const _: () = assert!(PPC64_STUB_SIZE == 4 * 4);

pub mod symtab;
