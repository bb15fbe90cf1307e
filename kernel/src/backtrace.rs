//! The panic backtrace: the arch's frame walk ([`arch::walk_stack`]), each
//! return address mapped back through [`ftrace::fgraph::ret_addr`] when the
//! function_graph tracer hooked that return, resolved with the embedded
//! symbol table. Runs in the panic path: no locks, no allocation.

use core::fmt::Write;

use ftrace_abi::symtab::SymbolTable;

use crate::arch;
use crate::platform;

/// Frames printed at most.
pub const MAX_FRAMES: usize = 32;

/// The walk ends after this function's frame: what called it is boot code.
const LAST_FUNCTION: &str = "kernel::kmain";

/// Prints `backtrace:` and one line per frame, innermost first:
/// `  #<i> <name>+0x<off>`, or `  #<i> 0x<addr>` without a symbol. Each
/// address is the return address minus one, inside the call instruction,
/// so a call at the very end of a function resolves to that function.
/// Builds without frame pointers (the i686 `nofp` variant, `--cfg nofp`
/// from scripts/rustc-wrapper.sh) print one line saying so instead.
pub fn print(w: &mut dyn Write) {
    if cfg!(nofp) {
        let _ = writeln!(w, "backtrace: unavailable (built without frame pointers)");
        return;
    }
    let _ = writeln!(w, "backtrace:");
    let symbols = SymbolTable::parse(platform::symtab_bytes()).ok();
    let mut graph_idx = 0;
    let mut n = 0;
    let mut hooked = 0;
    let hook = ftrace::fgraph::return_hook();
    arch::walk_stack(&mut |ret, slot| {
        if Some(ret) == hook {
            hooked += 1;
        }
        let ret = ftrace::fgraph::ret_addr(ret, &mut graph_idx, slot);
        if ret == 0 {
            return false;
        }
        let site = ret - 1;
        let sym = symbols.and_then(|t| t.lookup(site as u64));
        let _ = match sym {
            Some((s, off)) => writeln!(w, "  #{n} {}+{off:#x}", s.name),
            None => writeln!(w, "  #{n} {site:#x}"),
        };
        n += 1;
        n < MAX_FRAMES && sym.is_none_or(|(s, _)| s.name != LAST_FUNCTION)
    });
    if hooked > 0 {
        let _ = writeln!(
            w,
            "backtrace: {hooked} returns hooked by function_graph shown as their callers"
        );
    }
}

/// `addr` displayed as `name+0xoff` from the embedded symbol table, or as
/// a bare address without one (for panic messages about a faulting
/// address). Allocates nothing: usable from a fault in the allocator.
pub fn symbolize(addr: usize) -> impl core::fmt::Display {
    struct Symbolized(usize);
    impl core::fmt::Display for Symbolized {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            let symbols = SymbolTable::parse(platform::symtab_bytes()).ok();
            match symbols.and_then(|t| t.lookup(self.0 as u64)) {
                Some((s, off)) => write!(f, "{}+{off:#x}", s.name),
                None => write!(f, "{:#x}", self.0),
            }
        }
    }
    Symbolized(addr)
}
