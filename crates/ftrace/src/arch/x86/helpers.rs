//! What every x86 kernel embedding the tracer would otherwise copy: the
//! `#BP` helper for an ordinary interrupt handler, text writes to
//! read-only kernel text, interrupt masking, core serialisation and a
//! calibrated time-stamp-counter clock.
//!
//! All of it lives in this crate, which is never instrumented, so none of
//! these functions can be traced, and none is generic or `#[inline]`
//! (nothing of it is compiled into the kernel's own crate, where it would
//! get a patchable entry).
//!
//! # The `#BP` handler
//!
//! While the engine rewrites sites, a CPU executing one traps on the `int3`
//! it holds; the handler must emulate the site's new instruction. A nop is
//! emulated by moving the saved instruction pointer, but a `call` must also
//! push a return address onto the *interrupted* stack, and when the handler
//! runs on that same stack (no IST, no privilege change) the CPU's own
//! interrupt frame lies just below the interrupted stack pointer: a store
//! there can overwrite the frame the handler returns through. Linux makes
//! room in its entry code; a handler written with `extern "x86-interrupt"`
//! has no entry code of its own.
//!
//! [`handle_int3`] therefore never writes the interrupted stack. It sends
//! the interrupted code to one of [`INT3_SLOTS`] small stubs instead, after
//! storing the return address and the call target in that stub's slot;
//! the stub runs after `iret`, when the frame is gone, and does the `call`:
//! `push ret; push target; release the slot; ret`. Flags and registers are
//! untouched, interrupts may arrive at any point (a nested trap takes
//! another slot), and it works the same from a handler on the interrupted
//! stack and from one on an IST stack.
//!
//! ```ignore
//! // With the `x86_64` crate (idt.breakpoint.set_handler_fn(breakpoint)):
//! #[patchable_function_entry(prefix_nops = 0, entry_nops = 0)] // never traced
//! extern "x86-interrupt" fn breakpoint(mut frame: InterruptStackFrame) {
//!     MARKS.irq_enter(0);
//!     let frame = &mut frame as *mut InterruptStackFrame as *mut InterruptFrame;
//!     // SAFETY: the CPU's frame of a #BP taken in kernel mode.
//!     let handled = unsafe { ftrace::arch::x86::helpers::handle_int3(frame) };
//!     MARKS.irq_exit(0);
//!     assert!(handled, "unexpected int3");
//! }
//! ```

use core::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};

use super::{TrapFrame, poke_int3_handler};
use crate::platform::TextFault;

/// The frame the CPU pushes for an exception taken in kernel mode, lowest
/// address first: the `x86_64` crate's `InterruptStackFrame` has this
/// layout on x86_64 (five words); on i686 without a privilege change the
/// CPU pushes only the first three.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InterruptFrame {
    /// Where the interrupted code resumes (`int3`: the byte after it).
    pub ip: usize,
    /// Code segment selector.
    pub cs: usize,
    /// RFLAGS / EFLAGS.
    pub flags: usize,
    /// Interrupted stack pointer (x86_64 only).
    #[cfg(target_arch = "x86_64")]
    pub sp: usize,
    /// Interrupted stack segment (x86_64 only).
    #[cfg(target_arch = "x86_64")]
    pub ss: usize,
}

/// Call emulations that can be in flight at once, over all CPUs and
/// nesting levels (each lasts from the trap until its stub's third
/// instruction). A trap finding all of them taken waits for one.
pub const INT3_SLOTS: usize = 64;

/// Bytes between two stubs in `ftrace_int3_stubs`.
const STUB_STRIDE: usize = 32;

/// One stub's data: the return address it pushes and where it goes.
#[repr(C)]
struct EmuSlot {
    ret: AtomicUsize,
    target: AtomicUsize,
}

/// The stubs' data, read by the assembly below (`ftrace_int3_slots + 2 *
/// word * i`).
#[unsafe(export_name = "ftrace_int3_slots")]
static SLOTS: [EmuSlot; INT3_SLOTS] = [const {
    EmuSlot {
        ret: AtomicUsize::new(0),
        target: AtomicUsize::new(0),
    }
}; INT3_SLOTS];

/// 1 while slot `i` is taken; the stub clears it once it pushed both words.
#[unsafe(export_name = "ftrace_int3_busy")]
static BUSY: [AtomicU8; INT3_SLOTS] = [const { AtomicU8::new(0) }; INT3_SLOTS];

// Stub i: push the return address, push the target, free the slot, and
// `ret` to the target, which leaves the return address on the stack as the
// emulated `call` would. No register or flag changes.
#[cfg(all(target_arch = "x86_64", target_os = "none"))]
core::arch::global_asm!(
    ".pushsection .text.ftrace_int3_stubs, \"ax\", @progbits",
    ".balign {stride}",
    ".globl ftrace_int3_stubs",
    "ftrace_int3_stubs:",
    ".set i, 0",
    ".rept {n}",
    ".balign {stride}",
    "pushq ftrace_int3_slots + 16 * i(%rip)",
    "pushq ftrace_int3_slots + 16 * i + 8(%rip)",
    "movb $0, ftrace_int3_busy + i(%rip)",
    "ret",
    ".set i, i + 1",
    ".endr",
    ".popsection",
    n = const INT3_SLOTS,
    stride = const STUB_STRIDE,
    options(att_syntax)
);

// The same for i686 (absolute addresses: the kernel is not PIC).
#[cfg(all(target_arch = "x86", target_os = "none"))]
core::arch::global_asm!(
    ".pushsection .text.ftrace_int3_stubs, \"ax\", @progbits",
    ".balign {stride}",
    ".globl ftrace_int3_stubs",
    "ftrace_int3_stubs:",
    ".set i, 0",
    ".rept {n}",
    ".balign {stride}",
    "pushl ftrace_int3_slots + 8 * i",
    "pushl ftrace_int3_slots + 8 * i + 4",
    "movb $0, ftrace_int3_busy + i",
    "ret",
    ".set i, i + 1",
    ".endr",
    ".popsection",
    n = const INT3_SLOTS,
    stride = const STUB_STRIDE,
    options(att_syntax)
);

/// Address of the first stub (stub `i` is `STUB_STRIDE * i` further);
/// `None` where the stubs are not assembled (host builds).
fn stub_base() -> Option<usize> {
    #[cfg(target_os = "none")]
    {
        unsafe extern "C" {
            static ftrace_int3_stubs: u8;
        }
        Some(core::ptr::addr_of!(ftrace_int3_stubs) as usize)
    }
    #[cfg(not(target_os = "none"))]
    None
}

/// Takes a free slot, fills it and returns its index.
fn claim_slot(ret: usize, target: usize) -> usize {
    loop {
        for (i, b) in BUSY.iter().enumerate() {
            if b.load(Ordering::Relaxed) == 0
                && b.compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                SLOTS[i].ret.store(ret, Ordering::Relaxed);
                // Release: the stub may run on another CPU only after iret,
                // which serialises, but keep the order explicit.
                SLOTS[i].target.store(target, Ordering::Release);
                return i;
            }
        }
        core::hint::spin_loop();
    }
}

/// The CPU's frame seen through [`TrapFrame`]: a `push` is held back and
/// done by a stub together with the `set_ip` that follows it.
struct CpuFrame {
    frame: *mut InterruptFrame,
    stubs: usize,
    pending: Option<usize>,
}

impl TrapFrame for CpuFrame {
    fn ip(&self) -> usize {
        // SAFETY: `frame` is the live CPU frame (handle_int3's contract).
        unsafe { core::ptr::addr_of!((*self.frame).ip).read_volatile() }
    }

    fn set_ip(&mut self, ip: usize) {
        let ip = match self.pending.take() {
            Some(ret) => self.stubs + STUB_STRIDE * claim_slot(ret, ip),
            None => ip,
        };
        // SAFETY: as in `ip`; volatile because the write is only seen by
        // the CPU's `iret`.
        unsafe { core::ptr::addr_of_mut!((*self.frame).ip).write_volatile(ip) }
    }

    fn push(&mut self, value: usize) {
        // poke_int3_handler pushes once, then sets the target.
        debug_assert!(self.pending.is_none(), "int3: two pushes");
        self.pending = Some(value);
    }
}

/// The `#BP` helper for a kernel's breakpoint handler (any kind: an
/// `extern "x86-interrupt"` function, or assembly entry code passing the
/// CPU's frame, on the interrupted stack or on an IST stack).
///
/// Returns true when the trap came from a site the engine is rewriting: the
/// new instruction was emulated (a nop: `ip` moved past the site; a
/// `call`: `ip` sent to a stub that makes the call once the handler has
/// returned, see the module docs), or the `int3` was already gone and `ip`
/// points back at the site to run what is there now
/// ([`Int3::Gone`](super::Int3::Gone)). Returns false, changing nothing,
/// for anyone else's `int3`.
///
/// The handler must not be traced (mark it with
/// `#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]`), must
/// call nothing traced before this, and should mark its context
/// ([`crate::context::ContextMarks::irq_enter`]) so that traced code it
/// calls shows as interrupt context.
///
/// # Safety
///
/// `frame` points to the frame the CPU pushed for this `#BP`, taken in
/// kernel mode (ring 0), which the handler returns through with `iret`.
pub unsafe fn handle_int3(frame: *mut InterruptFrame) -> bool {
    let Some(stubs) = stub_base() else {
        return false;
    };
    let mut f = CpuFrame {
        frame,
        stubs,
        pending: None,
    };
    poke_int3_handler(&mut f)
}

/// The interrupt flag of RFLAGS / EFLAGS.
pub const FLAGS_IF: usize = 1 << 9;

/// Disables interrupts on this CPU and returns the previous flags (Linux's
/// `local_irq_save`).
pub fn local_irq_save() -> usize {
    let flags: usize;
    // SAFETY: reads the flags through the stack and clears IF; ring 0.
    unsafe { core::arch::asm!("pushf", "pop {0}", "cli", out(reg) flags, options(nomem)) };
    flags
}

/// Re-enables interrupts when `flags` (from [`local_irq_save`]) had them
/// enabled.
pub fn local_irq_restore(flags: usize) {
    if flags & FLAGS_IF != 0 {
        // SAFETY: restores the state local_irq_save captured.
        unsafe { core::arch::asm!("sti", options(nomem, nostack)) };
    }
}

/// Executes a serialising instruction (`cpuid`) on this CPU: what
/// [`Platform::sync_cores`](crate::Platform::sync_cores) does on a kernel
/// with one CPU (an SMP kernel also makes every other CPU run it).
pub fn sync_core() {
    let _ = cpuid(0);
}

/// `CR0.WP`: supervisor writes honour read-only pages.
const CR0_WP: usize = 1 << 16;

/// Writes kernel text that is mapped read-only (as the `bootloader` crate
/// and most kernels map it): with interrupts masked on this CPU, clears
/// `CR0.WP`, stores the bytes, and sets `CR0.WP` back. x86 keeps
/// instruction fetch coherent with stores; the engine synchronises cores
/// when its protocol needs it. Never fails.
///
/// For a [`Platform::text_write`](crate::Platform::text_write). Another CPU
/// is never given a writable window: only this CPU's `CR0` changes.
///
/// # Safety
///
/// `addr..addr + bytes.len()` is mapped kernel text, and the new bytes keep
/// every CPU able to execute it (the arch backend's job when the engine
/// calls it).
pub unsafe fn text_write_cr0(addr: usize, bytes: &[u8]) -> Result<(), TextFault> {
    let flags = local_irq_save();
    let cr0: usize;
    // SAFETY: ring 0; reading CR0 has no side effects.
    unsafe {
        core::arch::asm!("mov {}, cr0", out(reg) cr0, options(nomem, nostack, preserves_flags))
    };
    // SAFETY: clearing WP only lets this CPU's supervisor writes ignore
    // read-only pages; interrupts are masked until it is set again.
    unsafe {
        core::arch::asm!("mov cr0, {}", in(reg) cr0 & !CR0_WP, options(nostack, preserves_flags))
    };
    for (i, &b) in bytes.iter().enumerate() {
        // SAFETY: the caller guarantees the range is mapped kernel text and
        // the bytes are a valid replacement; WP is clear.
        unsafe { core::ptr::write_volatile((addr + i) as *mut u8, b) };
    }
    // SAFETY: puts back the CR0 read above.
    unsafe { core::arch::asm!("mov cr0, {}", in(reg) cr0, options(nostack, preserves_flags)) };
    local_irq_restore(flags);
    Ok(())
}

/// Writes `bytes` to kernel text at `addr` with plain stores: the
/// [`Platform::text_write`](crate::Platform::text_write) of a kernel whose
/// text is mapped writable where it runs (x86 keeps instruction fetch
/// coherent with stores; the engine synchronises cores when the protocol
/// needs it). One volatile store for the sizes the `int3` protocol writes
/// (a first byte, a 4-byte tail, a whole site at boot).
///
/// When a [`FnPlatform`](crate::platform::FnPlatform)'s `text_write` is
/// this function, the engine's patch loops inline it instead of calling
/// through the pointer. Kernels with read-only text use
/// [`text_write_cr0`] or their own alias mapping instead.
///
/// # Safety
///
/// `addr..addr + bytes.len()` is kernel text mapped writable, and the new
/// bytes keep every CPU able to execute it at every step (the arch
/// backend's job when the engine calls it).
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
    /// One volatile store of `N` bytes.
    ///
    /// # Safety
    /// `addr..addr + N` is writable text; `bytes.len() == N`.
    #[inline(always)]
    unsafe fn put<const N: usize>(addr: usize, bytes: &[u8]) {
        let mut v = [0u8; N];
        v.copy_from_slice(bytes);
        // SAFETY: guaranteed by the caller; `[u8; N]` has alignment 1.
        unsafe { core::ptr::write_volatile(addr as *mut [u8; N], v) };
    }
    // SAFETY: the caller guarantees the range is writable kernel text and
    // the bytes a valid replacement; each arm writes exactly
    // `bytes.len()` bytes at `addr`.
    unsafe {
        match bytes.len() {
            // The int3 protocol's first-byte and tail writes: one store
            // each straight from a register (a volatile store of an array
            // goes through the stack).
            1 => core::ptr::write_volatile(addr as *mut u8, bytes[0]),
            4 => {
                let v = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
                // One 4-byte store, unaligned as a tail is; written in asm
                // because `write_volatile` requires an aligned pointer.
                core::arch::asm!(
                    "mov dword ptr [{addr}], {v:e}",
                    addr = in(reg) addr,
                    v = in(reg) v,
                    options(nostack, preserves_flags)
                );
            }
            5 => put::<5>(addr, bytes),
            _ => {
                for (i, &b) in bytes.iter().enumerate() {
                    core::ptr::write_volatile((addr + i) as *mut u8, b);
                }
            }
        }
    }
    Ok(())
}

/// Reads the time-stamp counter.
pub fn rdtsc() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: rdtsc only reads the counter.
    unsafe {
        core::arch::asm!("rdtsc", out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags))
    };
    (u64::from(hi) << 32) | u64::from(lo)
}

/// `cpuid` leaf `leaf`, returned as `(eax, ebx, ecx, edx)`.
/// Serialising, like every `cpuid`. Written out (not `core::arch`'s
/// `__cpuid`, whose safety changed between compiler versions); rbx/ebx,
/// which LLVM may reserve, is saved by hand.
fn cpuid(leaf: u32) -> (u32, u32, u32, u32) {
    let (a, b, c, d): (u32, u32, u32, u32);
    // SAFETY: cpuid exists on every CPU these targets run on and only
    // reads identification registers; the bx register is restored.
    unsafe {
        #[cfg(target_arch = "x86_64")]
        core::arch::asm!("mov {t:r}, rbx", "cpuid", "xchg {t:r}, rbx", t = out(reg) b,
            inout("eax") leaf => a, inout("ecx") 0 => c, out("edx") d,
            options(nostack, preserves_flags));
        #[cfg(target_arch = "x86")]
        core::arch::asm!("mov {t}, ebx", "cpuid", "xchg {t}, ebx", t = out(reg) b,
            inout("eax") leaf => a, inout("ecx") 0 => c, out("edx") d,
            options(nostack, preserves_flags));
    }
    (a, b, c, d)
}

/// The TSC frequency the CPU reports, in Hz: `cpuid` leaf 0x15 (crystal
/// clock times the TSC/crystal ratio), else leaf 0x16's base frequency
/// (Linux's fallback order); `None` when neither is there (QEMU's default
/// CPU models, older CPUs).
pub fn tsc_hz_cpuid() -> Option<u64> {
    let (max, ..) = cpuid(0);
    if max >= 0x15 {
        let (den, num, crystal, _) = cpuid(0x15);
        if den != 0 && num != 0 && crystal != 0 {
            return Some(u64::from(crystal) * u64::from(num) / u64::from(den));
        }
    }
    if max >= 0x16 {
        let (mhz, ..) = cpuid(0x16);
        if mhz != 0 {
            return Some(u64::from(mhz) * 1_000_000);
        }
    }
    None
}

fn outb(port: u16, value: u8) {
    // SAFETY: port I/O to the PIT and the speaker port, as documented on
    // `tsc_hz_pit`; no memory effects.
    unsafe {
        core::arch::asm!("out dx, al", in("dx") port, in("al") value, options(nomem, nostack, preserves_flags))
    }
}

fn inb(port: u16) -> u8 {
    let v: u8;
    // SAFETY: as in `outb`.
    unsafe {
        core::arch::asm!("in al, dx", out("al") v, in("dx") port, options(nomem, nostack, preserves_flags))
    }
    v
}

/// Input clock of the 8254 PIT.
const PIT_HZ: u64 = 1_193_182;
/// PIT ticks of the calibration window (10 ms).
const PIT_TICKS: u64 = PIT_HZ / 100;

/// Measures the TSC frequency against the PIT (Linux's
/// `pit_calibrate_tsc`): counts TSC ticks while PIT channel 2 counts down
/// 10 ms with interrupts masked. Takes 10 ms.
///
/// # Safety
///
/// PIT channel 2 and the speaker gate (port 0x61) are not in use (they are
/// left gated off), and the machine has a PIT (every PC and QEMU's `pc`
/// and `q35`).
pub unsafe fn tsc_hz_pit() -> u64 {
    let flags = local_irq_save();
    // Gate channel 2 on, speaker off.
    outb(0x61, (inb(0x61) & !0x02) | 0x01);
    // Channel 2, lobyte/hibyte, mode 0 (interrupt on terminal count).
    outb(0x43, 0xb0);
    outb(0x42, PIT_TICKS as u8);
    outb(0x42, (PIT_TICKS >> 8) as u8);
    let t0 = rdtsc();
    // OUT2 (bit 5) goes high when the count reaches zero.
    while inb(0x61) & 0x20 == 0 {
        core::hint::spin_loop();
    }
    let t1 = rdtsc();
    outb(0x61, inb(0x61) & !0x03);
    local_irq_restore(flags);
    (t1 - t0) * PIT_HZ / PIT_TICKS
}

/// A nanosecond clock over the TSC for
/// [`Platform::clock_ns`](crate::Platform::clock_ns): time since
/// [`set_hz`](Self::set_hz) (or since the TSC started, before it), with a
/// 32.32 fixed-point multiplier so each reading is one multiply.
/// Uncalibrated, one tick counts as one nanosecond.
#[derive(Debug)]
pub struct TscClock {
    base: AtomicU64,
    /// Nanoseconds per tick, times 2^32.
    mult: AtomicU64,
}

impl TscClock {
    /// An uncalibrated clock (one tick per nanosecond, from TSC zero).
    pub const fn new() -> Self {
        TscClock {
            base: AtomicU64::new(0),
            mult: AtomicU64::new(1 << 32),
        }
    }

    /// Sets the rate to `hz` ticks per second and starts counting from
    /// now. Ignored for `hz == 0`.
    pub fn set_hz(&self, hz: u64) {
        if hz == 0 {
            return;
        }
        let mult = ((1_000_000_000u128 << 32) / u128::from(hz)) as u64;
        self.mult.store(mult, Ordering::Relaxed);
        self.base.store(rdtsc(), Ordering::Relaxed);
    }

    /// Calibrates from `cpuid` ([`tsc_hz_cpuid`]) or else the PIT
    /// ([`tsc_hz_pit`]) and returns the frequency found, in Hz.
    ///
    /// # Safety
    ///
    /// As for [`tsc_hz_pit`] (used only when `cpuid` does not tell).
    pub unsafe fn calibrate(&self) -> u64 {
        // SAFETY: guaranteed by the caller.
        let hz = tsc_hz_cpuid().unwrap_or_else(|| unsafe { tsc_hz_pit() });
        self.set_hz(hz);
        hz
    }

    /// Nanoseconds since calibration.
    pub fn now_ns(&self) -> u64 {
        self.ticks_to_ns(rdtsc().wrapping_sub(self.base.load(Ordering::Relaxed)))
    }

    /// Converts a tick count with the current rate.
    pub fn ticks_to_ns(&self, ticks: u64) -> u64 {
        ((u128::from(ticks) * u128::from(self.mult.load(Ordering::Relaxed))) >> 32) as u64
    }
}

/// One clock for the whole kernel, for kernels that need no other:
/// calibrate it once at boot (`unsafe { TSC_CLOCK.calibrate() }`).
pub static TSC_CLOCK: TscClock = TscClock::new();

/// [`TSC_CLOCK`]'s time: a ready
/// [`FnPlatform::clock_ns`](crate::platform::FnPlatform::clock_ns).
pub fn tsc_clock_ns() -> u64 {
    TSC_CLOCK.now_ns()
}

impl Default for TscClock {
    fn default() -> Self {
        Self::new()
    }
}

/// [`Platform::irqs_disabled`](crate::Platform::irqs_disabled) for x86:
/// the interrupt flag of EFLAGS is clear. Never traced.
#[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
pub fn irqs_disabled() -> bool {
    crate::arch::cpu::irqs_masked()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_goes_through_a_stub_and_nop_does_not() {
        let mut frame = InterruptFrame {
            ip: 0x1001,
            cs: 8,
            flags: FLAGS_IF,
            #[cfg(target_arch = "x86_64")]
            sp: 0x8000,
            #[cfg(target_arch = "x86_64")]
            ss: 0,
        };
        let before = frame;
        let mut f = CpuFrame {
            frame: &mut frame,
            stubs: 0x10_0000,
            pending: None,
        };
        assert_eq!(f.ip(), 0x1001);
        f.push(0x1005);
        f.set_ip(0x4000);
        let slot = (frame.ip - 0x10_0000) / STUB_STRIDE;
        assert_eq!((frame.ip - 0x10_0000) % STUB_STRIDE, 0);
        assert_eq!(SLOTS[slot].ret.load(Ordering::Relaxed), 0x1005);
        assert_eq!(SLOTS[slot].target.load(Ordering::Relaxed), 0x4000);
        assert_eq!(BUSY[slot].load(Ordering::Relaxed), 1);
        // Nothing but ip changed: the interrupted stack is not written.
        assert_eq!(
            InterruptFrame {
                ip: before.ip,
                ..frame
            },
            before
        );
        // The next emulation takes another slot while this one is busy.
        let mut f = CpuFrame {
            frame: &mut frame,
            stubs: 0x10_0000,
            pending: None,
        };
        f.push(0x2005);
        f.set_ip(0x5000);
        assert_ne!((frame.ip - 0x10_0000) / STUB_STRIDE, slot);
        // A nop emulation just moves ip.
        let mut f = CpuFrame {
            frame: &mut frame,
            stubs: 0x10_0000,
            pending: None,
        };
        f.set_ip(0x1005);
        assert_eq!(frame.ip, 0x1005);
    }

    #[test]
    fn tsc_clock_conversion() {
        let c = TscClock::new();
        assert_eq!(c.ticks_to_ns(1234), 1234);
        c.set_hz(2_000_000_000);
        assert_eq!(c.ticks_to_ns(2_000_000_000), 1_000_000_000);
        c.set_hz(3_000_000_000);
        assert_eq!(c.ticks_to_ns(3_000), 999);
        c.set_hz(0);
        assert_eq!(c.ticks_to_ns(3_000), 999, "hz 0 ignored");
    }
}
