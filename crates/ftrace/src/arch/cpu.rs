//! What the tracing hot path reads from the CPU itself, in line, instead
//! of calling the platform: the cycle counter (x86 `rdtsc`, ppc64 `mftb`),
//! the interrupt-enable flag (x86 `EFLAGS.IF`, ppc64 `MSR.EE`) and, in a
//! kernel, a `u32` of the running CPU's per-CPU area (x86 `%gs`-relative,
//! ppc64 `r13`-relative, as the trampolines' fast path reads them).
//!
//! Used only as a platform allows it ([`crate::platform::CpuSources`],
//! [`crate::Ftrace::use_cpu_local`]); on an arch without an inline read
//! [`SUPPORTED`] is false and the platform is always called.

/// True where this module's reads exist (x86, x86_64, ppc64).
pub const SUPPORTED: bool = cfg!(any(
    target_arch = "x86_64",
    target_arch = "x86",
    target_arch = "powerpc64"
));

/// The CPU's cycle counter: the time-stamp counter on x86, the timebase on
/// ppc64 (0 elsewhere: never called there, see [`SUPPORTED`]).
#[inline(always)]
pub fn counter() -> u64 {
    #[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
    {
        let (lo, hi): (u32, u32);
        // SAFETY: `rdtsc` only reads the counter into edx:eax.
        unsafe {
            core::arch::asm!("rdtsc", out("eax") lo, out("edx") hi,
                options(nomem, nostack, preserves_flags));
        }
        (u64::from(hi) << 32) | u64::from(lo)
    }
    #[cfg(target_arch = "powerpc64")]
    {
        let tb: u64;
        // SAFETY: `mftb` only reads the timebase.
        unsafe {
            core::arch::asm!("mftb {0}", out(reg) tb, options(nomem, nostack, preserves_flags));
        }
        tb
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "x86", target_arch = "powerpc64")))]
    {
        0
    }
}

/// True when the CPU masks external interrupts: x86 `EFLAGS.IF` clear,
/// ppc64 `MSR.EE` clear (false elsewhere: never called there). On ppc64
/// `mfmsr` is privileged: only a kernel may call this.
#[inline(always)]
pub fn irqs_masked() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        let flags: u64;
        // SAFETY: pushes the flags and pops them into a register; the stack
        // slot is below %rsp only for the two instructions.
        unsafe {
            core::arch::asm!("pushfq", "pop {0}", out(reg) flags, options(nomem, preserves_flags));
        }
        flags & (1 << 9) == 0
    }
    #[cfg(target_arch = "x86")]
    {
        let flags: u32;
        // SAFETY: as on x86_64 (`pushfd` by name: a bare `pushf` would be
        // the 16-bit form).
        unsafe {
            core::arch::asm!("pushfd", "pop {0}", out(reg) flags, options(nomem, preserves_flags));
        }
        flags & (1 << 9) == 0
    }
    #[cfg(target_arch = "powerpc64")]
    {
        let msr: u64;
        // SAFETY: `mfmsr` only reads the machine state register.
        unsafe {
            core::arch::asm!("mfmsr {0}", out(reg) msr, options(nomem, nostack, preserves_flags));
        }
        msr & (1 << 15) == 0
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "x86", target_arch = "powerpc64")))]
    {
        false
    }
}

/// The `u32` at `offset` in the running CPU's per-CPU area: `%gs:offset`
/// on x86, `offset(r13)` on ppc64, where a kernel keeps the area the
/// trampolines' fast path reads ([`crate::ops::CpuLocal`]). Only built for
/// a kernel (`target_os = "none"`): a hosted process's `%gs` is not one.
///
/// # Safety
///
/// The kernel must have described its per-CPU area with
/// [`crate::Ftrace::use_cpu_local`], and `offset` must be one of the
/// offsets it gave.
#[cfg(all(
    target_os = "none",
    any(target_arch = "x86_64", target_arch = "x86", target_arch = "powerpc64")
))]
#[inline(always)]
pub unsafe fn per_cpu_u32(offset: usize) -> u32 {
    let v: u32;
    #[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
    // SAFETY: the caller guarantees `%gs` covers the CPU's area and
    // `offset` lies inside it; the read has no side effect.
    unsafe {
        core::arch::asm!("mov {0:e}, gs:[{1}]", out(reg) v, in(reg) offset,
            options(nostack, readonly, preserves_flags));
    }
    #[cfg(target_arch = "powerpc64")]
    // SAFETY: the caller guarantees r13 points at the CPU's area and
    // `offset` lies inside it; the read has no side effect.
    unsafe {
        core::arch::asm!("lwzx {0}, 13, {1}", out(reg) v, in(reg) offset,
            options(nostack, readonly, preserves_flags));
    }
    v
}
