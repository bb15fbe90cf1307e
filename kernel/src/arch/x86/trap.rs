//! The interrupt table of the x86 test kernel: an IDT whose `#BP` entry
//! lets the tracer's `int3` patching protocol emulate half-patched sites
//! ([`ftrace::arch::x86::poke_int3`]), with the local APIC's
//! vectors (timer, `sync_cores` IPI, idle wake-up, spurious: see
//! `smp.rs`); every other exception vector reports itself and fails the
//! run. One table, shared by every CPU.
//!
//! The entry code is in `trap_64.S` / `trap_32.S`; the frame layouts below
//! mirror what it pushes. Every entry counts itself in the running CPU's
//! nesting depth (`%gs`-relative, [`super::smp::TRAP_DEPTH_OFFSET`]), so
//! that the tracer sees another context ([`super::tracer::context`]) on that CPU only;
//! on i686 every entry also saves and clears the CPU's mcount busy flag of
//! the `ftrace` crate's trampolines and restores it on the way out.

use core::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use ftrace::arch::x86::{Int3, TrapFrame, poke_int3};

/// `int3` traps whose `int3` was already gone (see `x86_bp_handler`).
static STALE_INT3: AtomicUsize = AtomicUsize::new(0);

use super::smp::{
    CONTEXT_IRQ, CONTEXT_OFFSET, TRAP_DEPTH_OFFSET, VECTOR_SPURIOUS, VECTOR_SYNC, VECTOR_TIMER,
    VECTOR_WAKE,
};

#[cfg(target_arch = "x86_64")]
core::arch::global_asm!(
    concat!(include_str!("trap_ctx.S"), include_str!("trap_64.S")),
    trap_depth = const TRAP_DEPTH_OFFSET,
    trap_context = const CONTEXT_OFFSET,
    ctx_irq = const CONTEXT_IRQ,
    options(att_syntax)
);
#[cfg(target_arch = "x86")]
core::arch::global_asm!(
    concat!(include_str!("trap_ctx.S"), include_str!("trap_32.S")),
    trap_depth = const TRAP_DEPTH_OFFSET,
    trap_context = const CONTEXT_OFFSET,
    ctx_irq = const CONTEXT_IRQ,
    options(att_syntax)
);

unsafe extern "C" {
    fn x86_bp_entry();
    fn x86_timer_entry();
    fn x86_sync_entry();
    fn x86_wake_entry();
    fn x86_spurious_entry();
    static x86_fatal_entries: u8;
}

/// Distance between the per-vector stubs of `x86_fatal_entries`.
const FATAL_STUB_STRIDE: usize = 32;
/// Every vector has a gate slot; exceptions (0..32) and the local APIC's
/// vectors are present.
const VECTORS: usize = 256;
/// Exceptions: vectors 0..32.
const EXCEPTIONS: usize = 32;
/// `#BP`, raised by `int3`.
const VECTOR_BP: usize = 3;

/// What `x86_bp_entry` saved on x86_64: padding and the caller-saved
/// registers (pushed by the entry), then the copy of the CPU's frame.
#[cfg(target_arch = "x86_64")]
#[repr(C)]
pub struct BpFrame {
    _pad: usize,
    _regs: [usize; 9],
    rip: usize,
    _cs: usize,
    _rflags: usize,
    rsp: usize,
    _ss: usize,
}

#[cfg(target_arch = "x86_64")]
impl TrapFrame for BpFrame {
    fn ip(&self) -> usize {
        self.rip
    }
    fn set_ip(&mut self, ip: usize) {
        self.rip = ip;
    }
    fn push(&mut self, value: usize) {
        self.rsp -= 8;
        // SAFETY: the entry copied the CPU's frame 40 bytes lower before
        // using the stack, so the 8 bytes below the interrupted rsp are a
        // gap nothing else uses; the kernel has no red zone.
        unsafe { core::ptr::write_volatile(self.rsp as *mut usize, value) }
    }
}

/// What `x86_bp_entry` saved on i686: the helper's push request, `pusha`'s
/// registers, and the CPU's frame (no esp: no privilege change).
#[cfg(target_arch = "x86")]
#[repr(C)]
pub struct BpFrame {
    has_push: usize,
    pushed: usize,
    _regs: [usize; 8],
    eip: usize,
    _cs: usize,
    _eflags: usize,
}

#[cfg(target_arch = "x86")]
impl TrapFrame for BpFrame {
    fn ip(&self) -> usize {
        self.eip
    }
    fn set_ip(&mut self, ip: usize) {
        self.eip = ip;
    }
    /// Recorded here; the entry code moves the frame down and stores it.
    fn push(&mut self, value: usize) {
        assert!(self.has_push == 0, "int3: two pushes requested");
        self.has_push = 1;
        self.pushed = value;
    }
}

/// `#BP` handler body, called by `x86_bp_entry` with interrupts disabled.
#[unsafe(no_mangle)]
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
extern "C" fn x86_bp_handler(frame: &mut BpFrame) {
    let site = frame.ip() - 1;
    match poke_int3(frame) {
        Int3::Emulated => {}
        Int3::Gone { byte } => {
            // Another CPU finished the patch after this CPU executed the
            // int3 (under QEMU's multi-threaded TCG: from a stale
            // translation); the frame re-executes the site. An atomic
            // write of the same value makes the emulator drop the stale
            // translation; if a new batch wrote int3 meanwhile, the write
            // does nothing and the re-execution traps into that batch.
            // SAFETY: the CPU just executed an int3 at `site`: mapped text.
            let b = unsafe { &*core::ptr::with_exposed_provenance::<AtomicU8>(site) };
            let _ = b.compare_exchange(byte, byte, Ordering::SeqCst, Ordering::SeqCst);
            STALE_INT3.fetch_add(1, Ordering::Relaxed);
        }
        Int3::NotOurs => panic!("unexpected int3 at {site:#x}: not a site being patched"),
    }
}

/// Any other exception: report it and fail (the panic handler exits QEMU).
#[unsafe(no_mangle)]
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
extern "C" fn x86_fatal_exception(vector: usize, sp: usize) -> ! {
    super::smp::trap_enter();
    // SAFETY: `sp` is the stack pointer at the exception, which points at
    // the CPU-pushed frame (at least three words).
    let (w0, w1) = unsafe {
        (
            core::ptr::read_volatile(sp as *const usize),
            core::ptr::read_volatile((sp + core::mem::size_of::<usize>()) as *const usize),
        )
    };
    // The faulting instruction: the first word the CPU pushed, or the
    // second for the exceptions that push an error code first.
    let ip = if matches!(vector, 8 | 10..=14 | 17 | 21 | 29 | 30) {
        w1
    } else {
        w0
    };
    panic!(
        "exception {vector} at {} (stack {sp:#x}: {w0:#x} {w1:#x})",
        crate::backtrace::symbolize(ip)
    );
}

/// One IDT gate.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
#[repr(C)]
struct Gate {
    off_lo: u16,
    selector: u16,
    ist: u8,
    attr: u8,
    off_mid: u16,
    off_hi: u32,
    _zero: u32,
}

#[cfg(target_arch = "x86")]
#[derive(Clone, Copy)]
#[repr(C)]
struct Gate {
    off_lo: u16,
    selector: u16,
    _zero: u8,
    attr: u8,
    off_hi: u16,
}

/// Present, ring 0, interrupt gate (interrupts stay disabled in handlers).
const GATE_INTERRUPT: u8 = 0x8e;

impl Gate {
    const EMPTY: Gate = Gate::new(0, 0);

    #[cfg(target_arch = "x86_64")]
    const fn new(handler: usize, selector: u16) -> Gate {
        Gate {
            off_lo: handler as u16,
            selector,
            ist: 0,
            attr: if handler == 0 { 0 } else { GATE_INTERRUPT },
            off_mid: (handler >> 16) as u16,
            off_hi: (handler >> 32) as u32,
            _zero: 0,
        }
    }

    #[cfg(target_arch = "x86")]
    const fn new(handler: usize, selector: u16) -> Gate {
        Gate {
            off_lo: handler as u16,
            selector,
            _zero: 0,
            attr: if handler == 0 { 0 } else { GATE_INTERRUPT },
            off_hi: (handler >> 16) as u16,
        }
    }
}

#[repr(C, align(16))]
struct Idt([Gate; VECTORS]);

static mut IDT: Idt = Idt([Gate::EMPTY; VECTORS]);

/// Built once, by the first [`trap_init`].
static IDT_BUILT: spin::Once<()> = spin::Once::new();

/// The operand of `lidt`.
#[repr(C, packed)]
struct IdtPointer {
    limit: u16,
    base: usize,
}

/// Builds the IDT (the first time) and loads it on this CPU. Called at
/// boot before the tracer patches anything, and by `smp_start` before the
/// secondary CPUs, which load the same table ([`load_idt`]).
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
pub fn trap_init() {
    IDT_BUILT.call_once(build_idt);
    load_idt();
}

fn build_idt() {
    let cs: u16;
    // SAFETY: reading the code segment selector has no side effects.
    unsafe {
        core::arch::asm!("mov {0:x}, cs", out(reg) cs, options(nomem, nostack, preserves_flags))
    };
    let fatal = core::ptr::addr_of!(x86_fatal_entries) as usize;
    // SAFETY: runs once (IDT_BUILT), before any CPU loads the table; no
    // other code accesses IDT mutably.
    let idt = unsafe { &mut *core::ptr::addr_of_mut!(IDT) };
    for (v, gate) in idt.0.iter_mut().enumerate() {
        let handler = match v {
            VECTOR_BP => x86_bp_entry as *const () as usize,
            _ if v < EXCEPTIONS => fatal + v * FATAL_STUB_STRIDE,
            _ if v == usize::from(VECTOR_TIMER) => x86_timer_entry as *const () as usize,
            _ if v == usize::from(VECTOR_SYNC) => x86_sync_entry as *const () as usize,
            _ if v == usize::from(VECTOR_WAKE) => x86_wake_entry as *const () as usize,
            _ if v == usize::from(VECTOR_SPURIOUS) => x86_spurious_entry as *const () as usize,
            _ => 0,
        };
        *gate = Gate::new(handler, cs);
    }
}

/// Loads the (built) IDT on this CPU.
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
pub fn load_idt() {
    let ptr = IdtPointer {
        limit: (core::mem::size_of::<Idt>() - 1) as u16,
        base: core::ptr::addr_of!(IDT) as usize,
    };
    // SAFETY: `lidt` gets a pointer to the static table, built before any
    // CPU loads it (trap_init) and never written afterwards.
    unsafe {
        core::arch::asm!("lidt [{0}]", in(reg) &ptr, options(readonly, nostack, preserves_flags));
    }
}
