//! ppc64 backend (64-bit big-endian PowerPC, ELFv2): QEMU `pseries` with
//! the VOF firmware. Entry in boot/ppc64.S, console through the
//! `H_PUT_TERM_CHAR` hypercall (input: `H_GET_TERM_CHAR`), command line,
//! RTAS tokens and CPU ids from the Open Firmware client interface, exit
//! through RTAS, secondary CPUs, decrementer and IPIs in `smp.rs`.
//!
//! How to boot it (what the runner passes):
//!
//! ```text
//! qemu-system-ppc64 \
//!   -M pseries,x-vof=on,ic-mode=xics,usb=off,cap-cfpc=broken,cap-sbbc=broken,cap-ibs=broken,cap-ccf-assist=off \
//!   -nodefaults -nographic -chardev stdio,id=con -device spapr-vty,chardev=con \
//!   -no-reboot -action panic=exit-failure \
//!   -kernel <kernel ELF> -append "<command line>"
//! ```
//!
//! - `x-vof=on`: QEMU's built-in minimal firmware (boots in well under a
//!   second; SLOF, the default, takes seconds). It provides the client
//!   interface this backend uses at boot; nothing else of it is needed, and
//!   its memory at real address 0 takes the exception vectors afterwards.
//! - `ic-mode=xics`: the interrupt controller the IPIs use (`smp.rs`).
//! - `-smp N` (`run-qemu.sh --smp N`): the secondary CPUs wait stopped
//!   until RTAS `start-cpu` (`smp.rs`).
//! - `usb=off,cap-*`: silence the TCG warnings about unsupported
//!   mitigations and the default USB controller.
//! - `-nodefaults ... spapr-vty`: the one console, on stdio.
//! - `-action panic=exit-failure`: `ibm,os-term` (how [`exit`] reports
//!   [`ExitStatus::Failure`]) makes QEMU exit with status 1. Without it QEMU
//!   treats the guest panic as a shutdown and exits 0, indistinguishable
//!   from success on the exit code alone.
//!
//! Exit codes: 0 = success (RTAS `power-off`), 1 = failure (`ibm,os-term`).
//! If RTAS itself fails the kernel spins: the runner's timeout catches it.

mod hcall;
mod of;
mod scenarios;
mod smp;
mod tracer;

use super::ExitStatus;
use core::sync::atomic::{AtomicU32, Ordering};

pub use hcall::{console_read, console_write};
pub use smp::{context, cpu_id, cpu_idle, irqs_disabled, smp_start, sync_cores, timer_start};
pub use tracer::{
    CORRUPT_SITE, FtraceArch, NS_PER_TICK_32_32, clock_ns, code_region, code_region_stubs_in_use,
    cpu_local, ftrace_arch, ftrace_sites, scenario, text_write, trap_init,
};

core::arch::global_asm!(include_str!("../../../../boot/ppc64.S"));

/// Printed at boot.
pub const NAME: &str = "ppc64";

/// `nop` (`ori r0,r0,0`): what rustc emits at every
/// `-Zpatchable-function-entry=1` site.
pub const NOP: u32 = 0x6000_0000;
/// `addis r2,r12,hi`, opcode and registers only (the immediate varies).
const ADDIS_R2_R12: u32 = 0x3c4c;
/// `addi r2,r2,lo`, opcode and registers only.
const ADDI_R2_R2: u32 = 0x3842;

/// Longest command line kept (longer ones are cut here; the parser reports
/// anything beyond its own limit as truncated).
const CMDLINE_MAX: usize = 8 * 1024;

/// The command line, copied out of the firmware's `/chosen` at boot.
static mut CMDLINE: [u8; CMDLINE_MAX] = [0; CMDLINE_MAX];

/// Marks an RTAS token not found in `/rtas`.
const NO_TOKEN: u32 = u32::MAX;
/// RTAS `power-off` token, read at boot.
static RTAS_POWER_OFF: AtomicU32 = AtomicU32::new(NO_TOKEN);
/// RTAS `ibm,os-term` token, read at boot.
static RTAS_OS_TERM: AtomicU32 = AtomicU32::new(NO_TOKEN);

/// Does the site-table entry at `addr` hold the pattern rustc emits?
///
/// ELFv2 functions have two entry points. Functions that use the TOC start
/// with a global entry that derives r2 from r12 (the caller's branch
/// target), and callers within the kernel enter 8 bytes later at the local
/// entry. The table holds the GLOBAL entry; the nop sits at the local entry,
/// so both kinds of caller execute it:
///
/// ```text
/// global: addis r2,r12,.TOC.-global@ha    3c 4c xx xx
///         addi  r2,r2,.TOC.-global@l      38 42 xx xx
/// local:  nop                             60 00 00 00
/// ```
///
/// Functions that do not touch the TOC have one entry and the nop first:
/// `60 00 00 00` at `addr`. (Checked with llvm-objdump on this kernel.)
pub fn compiler_site_ok(addr: usize) -> bool {
    if addr % 4 != 0 {
        return false;
    }
    let word = |i: usize| {
        // SAFETY: site addresses come from the linker's table and point at
        // a function in the kernel's text (MMU off: always accessible); a
        // word is read beyond the first only when the first is the TOC
        // prologue, so the function is at least three words long.
        unsafe { core::ptr::read_volatile((addr + 4 * i) as *const u32) }
    };
    let first = word(0);
    if first == NOP {
        return true;
    }
    first >> 16 == ADDIS_R2_R12 && word(1) >> 16 == ADDI_R2_R2 && word(2) == NOP
}

/// Reads the timebase. On QEMU pseries it ticks at 512 MHz (QEMU's fixed
/// `timebase-frequency`), so one tick is 1.953125 ns of guest time, not one
/// nanosecond as on x86 with `-icount shift=0`.
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
pub fn clock_ticks() -> u64 {
    let tb: u64;
    // SAFETY: mftb only reads the timebase register.
    unsafe { core::arch::asm!("mftb {}", out(reg) tb, options(nomem, nostack, preserves_flags)) }
    tb
}

/// The raw cycle counter benchmarks read: the timebase (`mftb`), not
/// converted. Under `-icount shift=0` it does not tick once per instruction
/// (512 MHz against QEMU's one virtual nanosecond per instruction): the
/// benchmark converts with [`calibration_loop`].
pub use self::clock_ticks as cycles;

/// Instructions one iteration of [`calibration_loop`] retires (`bdnz`).
pub const CALIBRATION_INSNS_PER_ITER: u64 = 1;

/// Retires exactly `iters` iterations of a one-instruction loop (`mtctr`,
/// then `bdnz` to itself), plus a fixed entry and exit cost: the benchmark's
/// calibration of the timebase against a known instruction count (the
/// fixed part cancels out between two lengths).
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
pub fn calibration_loop(iters: usize) {
    if iters == 0 {
        return;
    }
    // SAFETY: only CTR (declared clobbered) changes; no memory is touched;
    // the loop ends because CTR starts at a non-zero `iters`.
    unsafe {
        core::arch::asm!(
            "mtctr {n}",
            "2:",
            "bdnz 2b",
            n = in(reg) iters,
            out("ctr") _,
            options(nomem, nostack, preserves_flags),
        )
    }
}

/// Leaves QEMU through RTAS: `power-off` for success (QEMU exits 0),
/// `ibm,os-term` for failure (QEMU exits 1 with `-action panic=exit-failure`).
/// If the call returns (RTAS missing or refusing), spins forever: never
/// fall back from a failure to `power-off`, which would read as success.
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
pub fn exit(status: ExitStatus) -> ! {
    /// Passed to `ibm,os-term`; QEMU prints it ("OS terminated: ...").
    static OS_TERM_MESSAGE: &[u8] = b"rftrace: failure\0";
    let mut args = match status {
        ExitStatus::Success => hcall::RtasArgs {
            token: RTAS_POWER_OFF.load(Ordering::Relaxed),
            nargs: 2,
            nret: 1,
            // Power-on event mask (high, low): none.
            cells: [0; 8],
        },
        ExitStatus::Failure => {
            let mut cells = [0; 8];
            // The message's address; the kernel lies below 4 GiB.
            cells[0] = OS_TERM_MESSAGE.as_ptr() as usize as u32;
            hcall::RtasArgs {
                token: RTAS_OS_TERM.load(Ordering::Relaxed),
                nargs: 1,
                nret: 1,
                cells,
            }
        }
    };
    if args.token != NO_TOKEN {
        hcall::rtas_call(&mut args);
    }
    loop {
        core::hint::spin_loop();
    }
}

unsafe extern "C" {
    /// Lowest byte of the boot stack (boot/ppc64.S), CPU 0's stack.
    static ppc64_boot_stack: u8;
    /// One past its highest byte.
    static ppc64_boot_stack_top: u8;
}

/// The boot stack (CPU 0's): lowest byte and one past the highest.
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
fn boot_stack_bounds() -> (usize, usize) {
    (
        core::ptr::addr_of!(ppc64_boot_stack) as usize,
        core::ptr::addr_of!(ppc64_boot_stack_top) as usize,
    )
}

/// Walks the ELFv2 back chain on the running CPU's stack (an interrupt
/// frame chains to the interrupted one): the frame at r1 holds the caller's frame
/// address (back chain) at 0, and a function saves its return address (LR)
/// in its *caller's* frame, at 16(back chain). Starts at this function's
/// own frame, so the first address returns into its caller; `_start`'s
/// initial frame, whose back chain is 0, ends the walk. The slot read is
/// not passed on: the function_graph tracer records the trampoline's saved
/// LR, not this one. See `crate::arch` for the contract.
#[inline(never)]
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
pub fn walk_stack(visit: &mut dyn FnMut(usize, Option<usize>) -> bool) {
    /// ELFv2 keeps r1 quadword-aligned.
    const ALIGN: usize = 16;
    /// Offset of the LR save doubleword in a frame.
    const LR_SAVE: usize = 16;
    let (lo, hi) = smp::stack_bounds();
    let in_stack = |a: usize| a != 0 && a % ALIGN == 0 && a >= lo && a <= hi - (LR_SAVE + 8);
    let mut sp: usize;
    // SAFETY: copies the stack pointer; no memory is touched. This function
    // calls `visit`, so its prologue saved LR and stored a back chain.
    unsafe { core::arch::asm!("mr {}, 1", out(reg) sp, options(nomem, nostack, preserves_flags)) }
    while in_stack(sp) {
        // SAFETY: `sp` is aligned and `sp..sp + 24` lies within this CPU's
        // stack (in_stack), mapped and readable for the kernel's lifetime
        // (MMU off); stale words there are harmless.
        let chain = unsafe { core::ptr::read_volatile(sp as *const usize) };
        if !in_stack(chain) || chain <= sp {
            break;
        }
        // SAFETY: as above for `chain`: `chain + 16..chain + 24` is within
        // this CPU's stack.
        let ret = unsafe { core::ptr::read_volatile((chain + LR_SAVE) as *const usize) };
        if !visit(ret, None) {
            break;
        }
        sp = chain;
    }
}

/// Reads `bootargs` from `/chosen` into [`CMDLINE`]; empty if absent.
/// Trailing NULs (the firmware's string terminator) are dropped.
fn read_cmdline() -> &'static [u8] {
    let Some(chosen) = of::finddevice(b"/chosen\0") else {
        return &[];
    };
    // SAFETY: runs once at boot, before anything else refers to CMDLINE;
    // from here on it is only read, through the slice returned below.
    let buf = unsafe { &mut *core::ptr::addr_of_mut!(CMDLINE) };
    let Some(len) = of::getprop(chosen, b"bootargs\0", buf) else {
        return &[];
    };
    let mut line: &'static [u8] = &buf[..len.min(CMDLINE_MAX)];
    while let [rest @ .., 0] = line {
        line = rest;
    }
    line
}

/// Reads the RTAS tokens used by [`exit`] from `/rtas`, and those
/// `smp` needs with the CPUs' ids.
fn read_rtas_tokens() {
    let rtas = of::finddevice(b"/rtas\0");
    smp::read_boot_info(rtas);
    let Some(rtas) = rtas else {
        return;
    };
    if let Some(t) = of::getprop_u32(rtas, b"power-off\0") {
        RTAS_POWER_OFF.store(t, Ordering::Relaxed);
    }
    if let Some(t) = of::getprop_u32(rtas, b"ibm,os-term\0") {
        RTAS_OS_TERM.store(t, Ordering::Relaxed);
    }
}

/// Called from boot/ppc64.S in 64-bit mode, MMU off, on the boot stack, with
/// `client_interface` = the Open Firmware client-interface entry (r5 at
/// entry). Every client-interface call happens here, before `kmain`:
/// `smp::smp_start` later puts exception vectors over the firmware.
#[unsafe(no_mangle)]
extern "C" fn ppc64_entry(client_interface: usize) -> ! {
    of::init(client_interface);
    read_rtas_tokens();
    tracer::read_timebase_frequency();
    crate::kmain(read_cmdline())
}
