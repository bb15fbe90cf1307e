//! Code shared by the x86_64 and i686 backends: port I/O, the COM1 UART and
//! QEMU's isa-debug-exit device.

use super::super::ExitStatus;
use core::arch::asm;

/// Writes a byte to an I/O port.
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
fn outb(port: u16, value: u8) {
    // SAFETY: port I/O to the UART and the debug-exit device, which QEMU
    // provides at these ports; it has no memory effects.
    unsafe { x86::io::outb(port, value) }
}

/// Reads a byte from an I/O port.
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
fn inb(port: u16) -> u8 {
    // SAFETY: reading the UART's status register has no memory effects.
    unsafe { x86::io::inb(port) }
}

const COM1: u16 = 0x3f8;

/// Programs COM1 for 115200 8N1, interrupts off. The FIFOs stay as reset
/// left them (off): turning them on empties the receiver, which would drop
/// console input that arrived while the kernel booted (QEMU hands piped
/// input over at once, one byte held at a time without FIFOs, the rest
/// waiting in QEMU until the kernel reads).
pub fn serial_init() {
    outb(COM1 + 1, 0x00); // no interrupts
    outb(COM1 + 3, 0x80); // DLAB on
    outb(COM1, 0x01); // divisor 1: 115200 baud
    outb(COM1 + 1, 0x00);
    outb(COM1 + 3, 0x03); // 8N1, DLAB off
    outb(COM1 + 4, 0x03); // DTR, RTS
}

/// Writes raw bytes to COM1, waiting for room in the transmitter.
///
/// Not traced: the console is what reports tracing problems.
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
pub fn console_write(bytes: &[u8]) {
    for &b in bytes {
        while inb(COM1 + 5) & 0x20 == 0 {}
        outb(COM1, b);
    }
}

/// Reads one byte from COM1 if one has arrived (line status bit 0, data
/// ready), without waiting: the shell polls it.
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
pub fn console_read() -> Option<u8> {
    (inb(COM1 + 5) & 0x01 != 0).then(|| inb(COM1))
}

/// The isa-debug-exit device (`-device isa-debug-exit,iobase=0xf4`): QEMU
/// exits with `(value << 1) | 1`, so 0x10 gives 33 (success) and 0x11 gives
/// 35 (failure). Anything else, a triple fault included, is not 33.
pub fn exit(status: ExitStatus) -> ! {
    let v = match status {
        ExitStatus::Success => 0x10,
        ExitStatus::Failure => 0x11,
    };
    outb(0xf4, v);
    // Only reached without the device: stop here rather than return.
    loop {
        // SAFETY: halting with interrupts disabled stops this CPU for good.
        unsafe { asm!("cli; hlt", options(nomem, nostack)) }
    }
}

/// Reads the time-stamp counter.
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
pub fn clock_ticks() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: rdtsc only reads the counter.
    unsafe { asm!("rdtsc", out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags)) }
    (u64::from(hi) << 32) | u64::from(lo)
}

/// Instructions one iteration of [`calibration_loop`] retires (`dec`, `jnz`).
pub const CALIBRATION_INSNS_PER_ITER: u64 = 2;

/// Retires exactly `iters` iterations of a two-instruction register loop
/// (`dec; jnz`), plus a fixed entry and exit cost: the benchmark's
/// calibration of the cycle counter against a known instruction count
/// (the fixed part cancels out between two lengths).
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
pub fn calibration_loop(iters: usize) {
    if iters == 0 {
        return;
    }
    // SAFETY: a loop on one register the asm owns; it reads and writes no
    // memory and ends because `iters` is non-zero and decreases to zero.
    unsafe { asm!("2:", "dec {n}", "jnz 2b", n = inout(reg) iters => _, options(nomem, nostack)) }
}

/// Reads `len` bytes of kernel memory at `addr` into a fixed buffer.
///
/// # Safety
/// `addr..addr + N` must be mapped and readable.
pub unsafe fn read_bytes<const N: usize>(addr: usize) -> [u8; N] {
    let mut out = [0u8; N];
    for (i, b) in out.iter_mut().enumerate() {
        // SAFETY: the caller guarantees the range is readable.
        *b = unsafe { core::ptr::read_volatile((addr + i) as *const u8) };
    }
    out
}

/// Returns the NUL-terminated string at physical address `addr` (identity
/// mapped), at most `max` bytes.
///
/// # Safety
/// `addr` must point to readable memory holding a NUL within `max` bytes, or
/// `max` readable bytes, that stay unchanged for the kernel's lifetime.
pub unsafe fn c_string(addr: usize, max: usize) -> &'static [u8] {
    let mut len = 0;
    // SAFETY: the caller guarantees these bytes are readable.
    while len < max && unsafe { core::ptr::read_volatile((addr + len) as *const u8) } != 0 {
        len += 1;
    }
    // SAFETY: `len` bytes at `addr` were just read and stay valid.
    unsafe { core::slice::from_raw_parts(addr as *const u8, len) }
}

/// Walks the frame-pointer chain (`push %rbp; mov %rsp,%rbp` prologues,
/// the target's `frame-pointer: always`): in each frame the caller's frame
/// pointer is at `[fp]` and the return address at `[fp + word]`, the slot
/// the function_graph tracer records and may have replaced. Starts at this
/// function's own frame, so the first address returns into its caller; the
/// boot code's `xor %ebp,%ebp` ends the chain (on a secondary CPU, its
/// entry's). Every read stays within the running CPU's stack. See
/// `crate::arch` for the contract. Only meaningful in builds with frame
/// pointers (not `nofp`); elsewhere the bounds checks still keep every
/// read on the stack.
#[inline(never)]
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
pub fn walk_stack(visit: &mut dyn FnMut(usize, Option<usize>) -> bool) {
    const WORD: usize = core::mem::size_of::<usize>();
    let (lo, hi) = super::smp::stack_bounds();
    let mut fp: usize;
    // SAFETY: copies the frame-pointer register; no memory is touched.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        asm!("mov {}, rbp", out(reg) fp, options(nomem, nostack, preserves_flags))
    }
    // SAFETY: as above.
    #[cfg(target_arch = "x86")]
    unsafe {
        asm!("mov {}, ebp", out(reg) fp, options(nomem, nostack, preserves_flags))
    }
    while fp != 0 && fp % WORD == 0 && fp >= lo && fp <= hi - 2 * WORD {
        let slot = fp + WORD;
        // SAFETY: `fp` is word-aligned and `fp..fp + 2 * WORD` lies within
        // this CPU's stack (checked just above), which is mapped and readable
        // for the kernel's lifetime; reading stale words there is harmless.
        let (next, ret) = unsafe {
            (
                core::ptr::read_volatile(fp as *const usize),
                core::ptr::read_volatile(slot as *const usize),
            )
        };
        if !visit(ret, Some(slot)) || next <= fp {
            break;
        }
        fp = next;
    }
}
