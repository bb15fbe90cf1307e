//! The x86 calling conventions as `test=abi` ([`crate::abi`]) checks the
//! tracer's register frame against them, and the stack accesses it needs
//! (the only unsafe code of that scenario).
//!
//! The facts here are written down from the ABIs, not taken from the
//! `ftrace` crate (whose `ARG_REGS` and trampolines are what is tested):
//!
//! * x86_64 (System V; Rust's ABI passes integers the same way): integer
//!   arguments 0-5 in `rdi rsi rdx rcx r8 r9`, the 7th onwards on the stack
//!   right above the return address: argument `n` at `sp + 8 * (n - 5)`,
//!   `sp` being the stack pointer at function entry ([`FtraceRegs::sp`],
//!   the address of the return address). A two-word result comes back in
//!   `rax:rdx`, so a `u128` is `retval` (low) and `retval2` (high).
//! * i686 (cdecl; Rust's ABI too): every argument on the stack, argument
//!   `n` at `sp + 4 * (n + 1)`. A `u64` result comes back in `edx:eax`
//!   (`retval` low, `retval2` high). A `u128` result goes through memory:
//!   the caller passes a hidden pointer to it before the arguments (so they
//!   start one word higher), the callee stores the result there, returns the
//!   pointer in `eax` and pops it (`ret $4`).

use core::mem::size_of;

use ftrace::FtraceRegs;

/// Bytes of a stack word.
pub const WORD: usize = size_of::<usize>();

/// Integer arguments passed in registers.
#[cfg(target_arch = "x86_64")]
pub const REG_ARGS: usize = 6;
/// Integer arguments passed in registers: none.
#[cfg(target_arch = "x86")]
pub const REG_ARGS: usize = 0;

/// Hidden arguments before the visible ones of a function returning `u128`
/// (i686: the pointer to the result).
pub const U128_HIDDEN_ARGS: usize = if cfg!(target_arch = "x86") { 1 } else { 0 };

/// Bytes of the `call rel32` at a site: the traced function continues at
/// `site + SITE_CALL_LEN` ([`FtraceRegs::ip`]).
pub const SITE_CALL_LEN: usize = 5;

/// True in the mcount builds (i686 `mcount`, `nodynamic`): the site is the
/// `call mcount` the compiler placed after the prologue, and the prologue
/// may already have loaded stack arguments into registers (LLVM treats the
/// incoming argument slots as immutable and may schedule their loads before
/// the call), so a callback changing an argument's stack word there may not
/// reach the function. fentry sites come before any instruction of it.
pub const SITE_AFTER_PROLOGUE: bool = cfg!(any(feature = "mcount", feature = "nodynamic"));

/// Index of the stack pointer in [`FtraceRegs::gpr`] of a full frame (the
/// hardware register number of `rsp`/`esp`).
pub const SP_GPR: usize = 4;

/// The stack word, counted from the entry stack pointer (word 0 is the
/// return address), that holds integer argument `n` (0-based) of a function
/// with `hidden` hidden leading arguments; `None` when it is passed in a
/// register.
pub fn stack_arg_slot(n: usize, hidden: usize) -> Option<usize> {
    (n + hidden).checked_sub(REG_ARGS).map(|k| k + 1)
}

unsafe extern "C" {
    static boot_stack: u8;
    static boot_stack_top: u8;
}

/// True when `len` bytes at `addr` lie inside the kernel's stack (the boot
/// stack of boot/*.S: the only stack, exceptions run on it too) and `addr`
/// is word-aligned.
fn on_stack(addr: usize, len: usize) -> bool {
    let start = core::ptr::addr_of!(boot_stack) as usize;
    let end = core::ptr::addr_of!(boot_stack_top) as usize;
    addr.is_multiple_of(WORD) && addr >= start && addr.checked_add(len).is_some_and(|e| e <= end)
}

/// Reads the stack word at `addr`; `None` off the stack.
fn read_word(addr: usize) -> Option<usize> {
    if !on_stack(addr, WORD) {
        return None;
    }
    // SAFETY: `addr` is an aligned word inside the boot stack, which is
    // mapped and writable for the kernel's whole life; any bit pattern is a
    // valid `usize`, and the kernel runs on one CPU with interrupts off, so
    // nothing writes the word meanwhile.
    Some(unsafe { core::ptr::read_volatile(addr as *const usize) })
}

/// Word `slot` above the traced function's entry stack pointer (`slot` 0:
/// its return address; then its stack arguments). For the frame a
/// trampoline passed to a callback (like the crate's own graph entry, which
/// trusts `ret_slot`); `None` off the kernel stack, so a wrong frame reads
/// stack words, never unmapped memory.
pub fn entry_word(regs: &FtraceRegs, slot: usize) -> Option<usize> {
    read_word(regs.sp.checked_add(slot.checked_mul(WORD)?)?)
}

/// The word at [`FtraceRegs::ret_slot`] (the return address the graph
/// tracer would replace); `None` off the kernel stack.
pub fn ret_slot_word(regs: &FtraceRegs) -> Option<usize> {
    read_word(regs.ret_slot)
}

/// Writes `value` to stack argument word `slot` (1 or more: never the
/// return address) above the traced function's entry stack pointer: how a
/// callback changes an argument the ABI passes on the stack, where
/// [`FtraceRegs::set_arg`] cannot. Only for a frame a trampoline passed to
/// a callback, at a slot holding an argument of the traced function (the
/// callee owns its stack arguments under both conventions, so this changes
/// nothing but the argument). False, writing nothing, for slot 0 or off the
/// kernel stack.
pub fn set_entry_word(regs: &FtraceRegs, slot: usize, value: usize) -> bool {
    let Some(addr) = slot
        .checked_mul(WORD)
        .and_then(|o| regs.sp.checked_add(o))
        .filter(|&a| slot >= 1 && on_stack(a, WORD))
    else {
        return false;
    };
    // SAFETY: an aligned word inside the boot stack (mapped, writable),
    // above the traced function's return address: by the caller's contract
    // one of its stack arguments, which the function has not read yet (the
    // callback runs at its entry site) and which belongs to the callee.
    unsafe { core::ptr::write_volatile(addr as *mut usize, value) };
    true
}

/// A `u64` result from the graph tracer's return-value registers
/// ([`ftrace::GraphReturn`]: `retval`, `retval2`).
pub fn u64_result(retval: usize, retval2: usize) -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        let _ = retval2;
        retval as u64
    }
    #[cfg(target_arch = "x86")]
    {
        (retval as u64) | ((retval2 as u64) << 32)
    }
}

/// A `u128` result from the graph tracer's return-value registers: both
/// registers on x86_64; on i686 `retval` is the hidden result pointer and
/// the value is read there (`None` when it does not point into the kernel
/// stack, where the caller keeps its result).
pub fn u128_result(retval: usize, retval2: usize) -> Option<u128> {
    #[cfg(target_arch = "x86_64")]
    {
        Some((retval as u128) | ((retval2 as u128) << 64))
    }
    #[cfg(target_arch = "x86")]
    {
        let _ = retval2;
        if !on_stack(retval, size_of::<u128>()) {
            return None;
        }
        // SAFETY: 16 bytes inside the boot stack (mapped), word-aligned,
        // read unaligned as a `u128` (any bit pattern is valid); called
        // from the exit handler, when the callee has stored its result
        // there and the caller has not used it yet.
        Some(unsafe { core::ptr::read_unaligned(retval as *const u128) })
    }
}
