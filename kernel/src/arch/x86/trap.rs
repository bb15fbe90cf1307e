//! The exception table of the x86 test kernel: an IDT whose `#BP` entry
//! lets the tracer's `int3` patching protocol emulate half-patched sites
//! ([`ftrace::arch::x86::poke_int3_handler`]); every other exception vector
//! reports itself and fails the run.
//!
//! The entry code is in `trap_64.S` / `trap_32.S`; the frame layouts below
//! mirror what it pushes.

use core::sync::atomic::{AtomicUsize, Ordering};

use ftrace::arch::x86::{TrapFrame, poke_int3_handler};

#[cfg(target_arch = "x86_64")]
core::arch::global_asm!(include_str!("trap_64.S"), options(att_syntax));
#[cfg(target_arch = "x86")]
core::arch::global_asm!(include_str!("trap_32.S"), options(att_syntax));

unsafe extern "C" {
    fn x86_bp_entry();
    static x86_fatal_entries: u8;
}

/// Distance between the per-vector stubs of `x86_fatal_entries`.
const FATAL_STUB_STRIDE: usize = 32;
/// Exceptions (vectors 0..32) get entries; no hardware interrupt is used.
const VECTORS: usize = 32;
/// `#BP`, raised by `int3`.
const VECTOR_BP: usize = 3;

/// Nesting depth of exception handlers on the (only) CPU: non-zero while a
/// handler runs, so the tracer's recursion guard sees another context.
static TRAP_DEPTH: AtomicUsize = AtomicUsize::new(0);

/// True while an exception handler runs.
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
pub fn in_trap() -> bool {
    TRAP_DEPTH.load(Ordering::Relaxed) != 0
}

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
    TRAP_DEPTH.fetch_add(1, Ordering::Relaxed);
    let handled = poke_int3_handler(frame);
    TRAP_DEPTH.fetch_sub(1, Ordering::Relaxed);
    if !handled {
        panic!("unexpected int3 at {:#x}", frame.ip() - 1);
    }
}

/// Any other exception: report it and fail (the panic handler exits QEMU).
#[unsafe(no_mangle)]
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
extern "C" fn x86_fatal_exception(vector: usize, sp: usize) -> ! {
    TRAP_DEPTH.fetch_add(1, Ordering::Relaxed);
    // SAFETY: `sp` is the stack pointer at the exception, which points at
    // the CPU-pushed frame (at least three words).
    let (w0, w1) = unsafe {
        (
            core::ptr::read_volatile(sp as *const usize),
            core::ptr::read_volatile((sp + core::mem::size_of::<usize>()) as *const usize),
        )
    };
    panic!("exception {vector} (stack {sp:#x}: {w0:#x} {w1:#x})");
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

/// The operand of `lidt`.
#[repr(C, packed)]
struct IdtPointer {
    limit: u16,
    base: usize,
}

/// Installs the IDT. Called once at boot, before the tracer patches
/// anything.
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
pub fn trap_init() {
    let cs: u16;
    // SAFETY: reading the code segment selector has no side effects.
    unsafe {
        core::arch::asm!("mov {0:x}, cs", out(reg) cs, options(nomem, nostack, preserves_flags))
    };
    let fatal = core::ptr::addr_of!(x86_fatal_entries) as usize;
    // SAFETY: called once at boot on the only CPU with interrupts disabled;
    // nothing else accesses IDT, and `lidt` gets a pointer to the static
    // table, which lives for ever.
    unsafe {
        let idt = &mut *core::ptr::addr_of_mut!(IDT);
        for (v, gate) in idt.0.iter_mut().enumerate() {
            let handler = if v == VECTOR_BP {
                x86_bp_entry as *const () as usize
            } else {
                fatal + v * FATAL_STUB_STRIDE
            };
            *gate = Gate::new(handler, cs);
        }
        let ptr = IdtPointer {
            limit: (core::mem::size_of::<Idt>() - 1) as u16,
            base: idt as *const Idt as usize,
        };
        core::arch::asm!("lidt [{0}]", in(reg) &ptr, options(readonly, nostack, preserves_flags));
    }
}
