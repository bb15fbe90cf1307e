//! What every ppc64 kernel embedding the tracer would otherwise copy:
//! writing text with the cache maintenance instruction fetch needs, and
//! the context synchronisation of [`Platform::sync_cores`]. ppc64 needs no
//! trap handler: each site changes with one aligned word store.
//!
//! Like everything in this crate, never instrumented, so never traced.
//! Interrupt-context marks are arch-neutral: [`crate::context`].
//!
//! [`Platform::sync_cores`]: crate::Platform::sync_cores

use crate::platform::TextFault;

/// Writes `bytes` (whole, aligned 4-byte words) to text at `addr`: for
/// each word one aligned store, then `dcbst; sync; icbi; sync; isync`, so
/// that instruction fetch sees it. For a
/// [`Platform::text_write`](crate::Platform::text_write) on a kernel whose
/// text is writable where it runs (real mode, or a writable mapping).
/// Fails, writing nothing, on an unaligned address or length.
///
/// # Safety
///
/// `addr..addr + bytes.len()` is kernel text the caller may change, and
/// every word written leaves the code executable (the `Platform::text_write`
/// contract).
pub unsafe fn text_write(addr: usize, bytes: &[u8]) -> Result<(), TextFault> {
    // SAFETY: the caller's guarantees are `text_store`'s.
    unsafe { text_store(addr, bytes) }
}

/// [`text_write`]'s body, for the engine to inline (`text_write` itself
/// is not inlined, so that its address is one and the same everywhere).
///
/// # Safety
///
/// As for [`text_write`].
#[inline(always)]
pub(crate) unsafe fn text_store(addr: usize, bytes: &[u8]) -> Result<(), TextFault> {
    if addr % 4 != 0 || bytes.len() % 4 != 0 {
        return Err(TextFault);
    }
    for (i, w) in bytes.chunks_exact(4).enumerate() {
        let p = (addr + 4 * i) as *mut u32;
        let word = u32::from_be_bytes([w[0], w[1], w[2], w[3]]);
        // SAFETY: 1. `p` is aligned kernel text the caller may write. 2. The
        // flush sequence pushes the store to memory (dcbst), invalidates the
        // stale instruction cache block (icbi) and discards prefetched
        // instructions (isync); it touches no other state.
        unsafe {
            core::ptr::write_volatile(p, word);
            core::arch::asm!(
                "dcbst 0, {p}",
                "sync",
                "icbi 0, {p}",
                "sync",
                "isync",
                p = in(reg_nonzero) p,
                options(nostack, preserves_flags),
            );
        }
    }
    Ok(())
}

/// A context-synchronising `isync` on this CPU: what
/// [`Platform::sync_cores`](crate::Platform::sync_cores) does on a kernel
/// with one CPU (an SMP kernel also makes every other CPU run one).
pub fn sync_core() {
    // SAFETY: isync only discards prefetched instructions.
    unsafe { core::arch::asm!("isync", options(nostack, preserves_flags)) }
}
