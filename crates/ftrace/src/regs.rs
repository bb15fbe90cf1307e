//! The register frame trampolines build (Linux's `struct ftrace_regs`).
//!
//! The layout is `#[repr(C)]` and read by assembly through the `OFF_*`
//! constants below (pass them to `global_asm!` as `const` operands; never
//! hard-code offsets).

use core::mem::offset_of;

use crate::platform::Context;

/// [`FtraceRegs::flags`] bit: the full frame was saved
/// ([`Trampoline::RegsCaller`](crate::arch::Trampoline::RegsCaller)); without
/// it only the argument registers and the fixed fields are valid.
pub const FREGS_FULL: usize = 1 << 0;

/// [`FtraceRegs::flags`] bit: the dispatcher that called the callback
/// holds the recursion guard and stored the CPU and context
/// ([`cpu`](FtraceRegs::cpu), [`context`](FtraceRegs::context)). Without
/// it, the callback was called by its own trampoline without the guard
/// ([`OpsFlags::RECURSION`](crate::ops::OpsFlags::RECURSION)), and
/// [`Ops::guard`](crate::ops::Ops::guard) takes one. Every dispatcher that
/// holds the guard sets it (the trampolines' fast path too), so a callback
/// that calls a `RECURSION` callback's function itself (the function
/// tracer's, say) passes it on.
pub const FREGS_GUARDED: usize = 1 << 1;

/// Register state of a traced function at its patch site.
#[repr(C)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FtraceRegs {
    /// General-purpose registers in an order each backend documents. The
    /// caller trampoline saves (and restores) only the argument registers
    /// (the other slots are not written: whatever the stack held, as in
    /// Linux's `ftrace_regs`; read them only when [`is_full`](Self::is_full));
    /// the regs trampoline saves all of them and restores them on return, so
    /// a callback may change arguments.
    pub gpr: [usize; 32],
    /// Resume address. Trampolines set it to where the traced function
    /// continues after the site; a callback registered with
    /// [`OpsFlags::IPMODIFY`](crate::ops::OpsFlags::IPMODIFY) may replace it
    /// (e.g. with another function's entry: live patching) and the regs
    /// trampoline resumes there.
    pub ip: usize,
    /// Return address of the traced function (its caller).
    pub parent_ip: usize,
    /// Stack pointer at the site (value on entry of the traced function).
    pub sp: usize,
    /// Address of the slot holding the traced function's return address
    /// (stack slot or saved link register), so that a graph tracer can
    /// replace it.
    pub ret_slot: usize,
    /// `FREGS_*` bits, e.g. [`FREGS_FULL`].
    pub flags: usize,
    /// `spare[0]` and `spare[1]`: the CPU and the context the dispatcher
    /// found under its recursion guard, stored before it calls a callback
    /// (read them with [`cpu`](Self::cpu) and [`context`](Self::context):
    /// a callback need not ask the platform again). `spare[2]` is
    /// reserved. Trampolines do not initialise them (i686's regs
    /// trampoline reuses `spare[0]` after the callbacks returned).
    pub spare: [usize; 3],
}

/// Offset of [`FtraceRegs::gpr`].
pub const OFF_GPR: usize = offset_of!(FtraceRegs, gpr);
/// Offset of [`FtraceRegs::ip`].
pub const OFF_IP: usize = offset_of!(FtraceRegs, ip);
/// Offset of [`FtraceRegs::parent_ip`].
pub const OFF_PARENT_IP: usize = offset_of!(FtraceRegs, parent_ip);
/// Offset of [`FtraceRegs::sp`].
pub const OFF_SP: usize = offset_of!(FtraceRegs, sp);
/// Offset of [`FtraceRegs::ret_slot`].
pub const OFF_RET_SLOT: usize = offset_of!(FtraceRegs, ret_slot);
/// Offset of [`FtraceRegs::flags`].
pub const OFF_FLAGS: usize = offset_of!(FtraceRegs, flags);
/// Offset of [`FtraceRegs::spare`] (`spare[0]`: the CPU, `spare[1]`: the
/// context, as [`FtraceRegs::cpu`] and [`FtraceRegs::context`] read them).
pub const OFF_SPARE: usize = offset_of!(FtraceRegs, spare);
/// Size of [`FtraceRegs`] (a multiple of the word size; backends round the
/// stack frame up to their alignment).
pub const FREGS_SIZE: usize = core::mem::size_of::<FtraceRegs>();

const _: () = assert!(OFF_GPR == 0 && OFF_IP == 32 * core::mem::size_of::<usize>());

/// Where a backend's argument registers live in [`FtraceRegs::gpr`]:
/// every [`Arch`](crate::Arch) provides it (`Arch::ARG_REGS`).
pub trait ArgRegs {
    /// Indices into [`FtraceRegs::gpr`] of the integer argument registers,
    /// in argument order.
    const ARG_REGS: &'static [usize];
}

impl FtraceRegs {
    /// An all-zero frame.
    pub const fn zeroed() -> Self {
        FtraceRegs {
            gpr: [0; 32],
            ip: 0,
            parent_ip: 0,
            sp: 0,
            ret_slot: 0,
            flags: 0,
            spare: [0; 3],
        }
    }

    /// The CPU the callback runs on, as the dispatcher stored it
    /// ([`spare`](Self::spare)). Meaningful only in a callback the
    /// dispatcher called (a trampoline's frame is not initialised before;
    /// [`zeroed`](Self::zeroed) gives 0); a
    /// [`RECURSION`](crate::ops::OpsFlags::RECURSION) callback reads the
    /// CPU from its [`Ops::guard`](crate::ops::Ops::guard) instead.
    pub fn cpu(&self) -> usize {
        self.spare[0]
    }

    /// The context the callback runs in, as the dispatcher stored it
    /// ([`spare`](Self::spare)); meaningful as [`cpu`](Self::cpu) is
    /// ([`zeroed`](Self::zeroed) gives [`Context::Normal`]).
    pub fn context(&self) -> Context {
        Context::from_index(self.spare[1])
    }

    /// Stores what [`cpu`](Self::cpu) and [`context`](Self::context)
    /// return, and [`FREGS_GUARDED`] (the dispatchers, under their
    /// recursion guard).
    pub(crate) fn set_cpu_context(&mut self, cpu: usize, context: Context) {
        self.spare[0] = cpu;
        self.spare[1] = context as usize;
        self.flags |= FREGS_GUARDED;
    }

    /// True when the dispatcher that called the callback holds the
    /// recursion guard ([`FREGS_GUARDED`]).
    pub fn is_guarded(&self) -> bool {
        self.flags & FREGS_GUARDED != 0
    }

    /// True when the full register frame was saved.
    pub fn is_full(&self) -> bool {
        self.flags & FREGS_FULL != 0
    }

    /// Integer argument `n` (0-based) according to `A::ARG_REGS`; `None` past
    /// the register arguments.
    pub fn arg<A: ArgRegs>(&self, n: usize) -> Option<usize> {
        A::ARG_REGS.get(n).map(|&r| self.gpr[r])
    }

    /// Sets integer argument `n`; returns false past the register arguments.
    /// Effective only on the regs trampoline (or for argument registers the
    /// caller trampoline restores).
    pub fn set_arg<A: ArgRegs>(&mut self, n: usize, v: usize) -> bool {
        match A::ARG_REGS.get(n) {
            Some(&r) => {
                self.gpr[r] = v;
                true
            }
            None => false,
        }
    }
}

impl Default for FtraceRegs {
    fn default() -> Self {
        Self::zeroed()
    }
}
