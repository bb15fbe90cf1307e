//! PAPR hypercalls (`sc 1`): the hypervisor console, the RTAS entry and the
//! XICS interrupt presentation calls (inter-processor interrupts).
//!
//! Everything here is notrace: the console reports tracing problems, the
//! exit path must work whatever state the tracer is in, and the interrupt
//! handlers and `sync_cores` call the XICS ones.

use core::arch::asm;

/// `H_BUSY`: try the same call again.
const H_BUSY: i64 = 1;
/// `H_SUCCESS`.
const H_SUCCESS: i64 = 0;
/// `H_GET_TERM_CHAR`: read up to 16 bytes from a virtual terminal (length
/// in r4, the bytes in r5 and r6, first byte most significant).
const H_GET_TERM_CHAR: u64 = 0x54;
/// `H_PUT_TERM_CHAR`: write up to 16 bytes to a virtual terminal.
const H_PUT_TERM_CHAR: u64 = 0x58;
/// QEMU's private hypercall that runs an RTAS call (`KVMPPC_H_RTAS`):
/// r4 = physical address of the RTAS argument buffer.
const KVMPPC_H_RTAS: u64 = 0xf000;
/// `H_EOI`: end of interrupt (restores the CPPR from the XIRR's top byte).
const H_EOI: u64 = 0x64;
/// `H_CPPR`: set this CPU's current processor priority.
const H_CPPR: u64 = 0x68;
/// `H_IPI`: set a server's MFRR (an IPI is presented while MFRR < CPPR).
const H_IPI: u64 = 0x6c;
/// `H_XIRR`: accept the pending interrupt; returns the XIRR in r4.
const H_XIRR: u64 = 0x74;
/// `H_CONFER`: give the rest of this virtual processor's time slice to
/// others.
const H_CONFER: u64 = 0xe4;
/// Virtual terminal number 0: QEMU maps it to the first `spapr-vty`.
const VTY_DEFAULT: u64 = 0;
/// Bytes one `H_PUT_TERM_CHAR` carries (in r6 and r7).
const TERM_CHUNK: usize = 16;

/// Makes hypercall `opcode` with up to four arguments in r4-r7 and returns
/// the status from r3.
///
/// # Safety
/// The hypercall and its arguments must be valid for the current state:
/// any memory they name (physical addresses, MMU off) must be valid for the
/// accesses that hypercall performs.
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
unsafe fn hcall(opcode: u64, args: [u64; 4]) -> i64 {
    // SAFETY: passed on from the caller.
    unsafe { hcall_r4(opcode, args).0 }
}

/// Like [`hcall`], also returning the first output register, r4.
///
/// # Safety
/// As for [`hcall`].
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
unsafe fn hcall_r4(opcode: u64, args: [u64; 4]) -> (i64, u64) {
    let status: i64;
    let r4: u64;
    // SAFETY: the caller vouches for the hypercall and its arguments. The
    // PAPR calling convention clobbers at most the volatile registers
    // (r0, r3-r12, cr, ctr, xer), which clobber_abi("C") covers; the
    // stack is untouched.
    unsafe {
        asm!(
            "sc 1",
            inlateout("r3") opcode => status,
            inlateout("r4") args[0] => r4,
            inlateout("r5") args[1] => _,
            inlateout("r6") args[2] => _,
            inlateout("r7") args[3] => _,
            clobber_abi("C"),
            options(nostack),
        );
    }
    (status, r4)
}

/// Like [`hcall`], also returning r4-r6 (the hypercall's outputs).
///
/// # Safety
/// As for [`hcall`].
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
unsafe fn hcall_ret(opcode: u64, args: [u64; 4]) -> (i64, [u64; 3]) {
    let status: i64;
    let (r4, r5, r6): (u64, u64, u64);
    // SAFETY: the caller vouches for the hypercall and its arguments; the
    // clobbers are those of `hcall`, with r4-r6 read back as outputs.
    unsafe {
        asm!(
            "sc 1",
            inlateout("r3") opcode => status,
            inlateout("r4") args[0] => r4,
            inlateout("r5") args[1] => r5,
            inlateout("r6") args[2] => r6,
            inlateout("r7") args[3] => _,
            clobber_abi("C"),
            options(nostack),
        );
    }
    (status, [r4, r5, r6])
}

/// Bytes `H_GET_TERM_CHAR` returned beyond the one handed out, and how many
/// of them are left (from the end).
struct Pending {
    bytes: [u8; TERM_CHUNK],
    next: usize,
    len: usize,
}

/// Input read from the hypervisor but not yet handed out.
static PENDING: spin::Mutex<Pending> = spin::Mutex::new(Pending {
    bytes: [0; TERM_CHUNK],
    next: 0,
    len: 0,
});

/// Reads one byte of console input if any has arrived, without waiting
/// (`H_GET_TERM_CHAR` returns up to 16 bytes at a time; the rest are kept
/// for the next calls).
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
pub fn console_read() -> Option<u8> {
    let mut p = PENDING.lock();
    if p.next == p.len {
        // SAFETY: H_GET_TERM_CHAR only reads its register argument and
        // returns the bytes in registers; no memory is involved.
        let (status, [len, hi, lo]) = unsafe { hcall_ret(H_GET_TERM_CHAR, [VTY_DEFAULT, 0, 0, 0]) };
        if status != H_SUCCESS || len == 0 {
            return None;
        }
        p.bytes[..8].copy_from_slice(&hi.to_be_bytes());
        p.bytes[8..].copy_from_slice(&lo.to_be_bytes());
        p.next = 0;
        p.len = (len as usize).min(TERM_CHUNK);
    }
    let b = p.bytes[p.next];
    p.next += 1;
    Some(b)
}

/// Writes raw bytes to the hypervisor console (`H_PUT_TERM_CHAR`, 16 bytes
/// per call, retried while the hypervisor answers `H_BUSY`). Other errors
/// drop the chunk: there is nowhere to report them.
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
pub fn console_write(bytes: &[u8]) {
    for chunk in bytes.chunks(TERM_CHUNK) {
        // The bytes travel in r6:r7, first byte most significant.
        let mut buf = [0u8; TERM_CHUNK];
        buf[..chunk.len()].copy_from_slice(chunk);
        let hi = u64::from_be_bytes([
            buf[0], buf[1], buf[2], buf[3], buf[4], buf[5], buf[6], buf[7],
        ]);
        let lo = u64::from_be_bytes([
            buf[8], buf[9], buf[10], buf[11], buf[12], buf[13], buf[14], buf[15],
        ]);
        loop {
            // SAFETY: H_PUT_TERM_CHAR only reads its register arguments.
            let status =
                unsafe { hcall(H_PUT_TERM_CHAR, [VTY_DEFAULT, chunk.len() as u64, hi, lo]) };
            if status != H_BUSY {
                break;
            }
        }
    }
}

/// RTAS argument buffer: `{token, nargs, nret, args[nargs], rets[nret]}`,
/// all 32-bit big-endian cells (native on this big-endian kernel).
#[repr(C)]
pub struct RtasArgs {
    /// The service's token, read from the `/rtas` node.
    pub token: u32,
    /// Number of input cells at the start of `cells`.
    pub nargs: u32,
    /// Number of output cells following the inputs.
    pub nret: u32,
    /// Inputs, then outputs.
    pub cells: [u32; 8],
}

/// Runs an RTAS call through QEMU's `KVMPPC_H_RTAS` hypercall and returns
/// the hypercall status (the RTAS status is in the output cells).
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
pub fn rtas_call(args: &mut RtasArgs) -> i64 {
    let addr = core::ptr::from_mut(args) as u64;
    // SAFETY: `args` is a live, exclusively borrowed RtasArgs; with the MMU
    // off its address is the physical address QEMU reads the header and
    // inputs from and writes the outputs to, within `cells` (callers keep
    // nargs + nret <= 8).
    unsafe { hcall(KVMPPC_H_RTAS, [addr, 0, 0, 0]) }
}

/// `H_CPPR(cppr)`: interrupts more favoured (numerically lower) than `cppr`
/// are presented to the calling CPU; 0xff accepts every priority.
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
pub fn h_cppr(cppr: u8) -> i64 {
    // SAFETY: H_CPPR only changes the calling CPU's interrupt presentation
    // state; it names no memory.
    unsafe { hcall(H_CPPR, [u64::from(cppr), 0, 0, 0]) }
}

/// `H_IPI(server, mfrr)`: sets the MFRR of interrupt server `server` (a
/// CPU's hardware id); `mfrr` below that CPU's CPPR raises its IPI, 0xff
/// withdraws it.
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
pub fn h_ipi(server: u32, mfrr: u8) -> i64 {
    // SAFETY: H_IPI only changes interrupt-controller state (the server
    // number is checked by the hypervisor); it names no memory.
    unsafe { hcall(H_IPI, [u64::from(server), u64::from(mfrr), 0, 0]) }
}

/// `H_XIRR`: accepts the most favoured pending interrupt of the calling CPU
/// and returns its XIRR (old CPPR in the top byte, source in the low 24
/// bits, 0 = none, 2 = the IPI); `None` when the hypercall fails.
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
pub fn h_xirr() -> Option<u32> {
    // SAFETY: H_XIRR only changes the calling CPU's interrupt presentation
    // state and returns a value in r4; it names no memory.
    let (status, xirr) = unsafe { hcall_r4(H_XIRR, [0; 4]) };
    (status == 0).then_some(xirr as u32)
}

/// `H_EOI(xirr)`: ends the interrupt [`h_xirr`] returned, restoring the
/// CPPR it saved.
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
pub fn h_eoi(xirr: u32) -> i64 {
    // SAFETY: H_EOI only changes interrupt-controller state; it names no
    // memory.
    unsafe { hcall(H_EOI, [u64::from(xirr), 0, 0, 0]) }
}

/// `H_CONFER(-1, 0)`: lets the other virtual processors run first (QEMU:
/// the vCPU leaves its execution loop; single-threaded TCG, e.g. with
/// `-icount`, moves on to the next vCPU instead of running this one until
/// its time slice ends). Only a hint: it may return at once.
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
pub fn h_confer() {
    // SAFETY: H_CONFER to all (-1) with no dispatch count only yields the
    // processor; it names no memory.
    unsafe { hcall(H_CONFER, [u64::MAX, 0, 0, 0]) };
}
