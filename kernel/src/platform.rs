//! Arch-neutral platform glue: the heap and the linker-provided tables.

use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use ftrace::fgraph::{FrameSlot, ShadowStack};
use linked_list_allocator::LockedHeap;

#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

/// Bytes of the kernel heap.
const HEAP_SIZE: usize = 48 * 1024 * 1024;

#[repr(align(4096))]
struct HeapSpace(#[expect(dead_code, reason = "only its address is used")] [u8; HEAP_SIZE]);

static mut HEAP_SPACE: HeapSpace = HeapSpace([0; HEAP_SIZE]);

/// Hands the static heap region to the allocator. Called once at boot.
pub fn heap_init() {
    // SAFETY: called once, before any allocation; HEAP_SPACE is used by
    // nothing else, so the allocator owns it from here on.
    unsafe {
        HEAP.lock()
            .init(core::ptr::addr_of_mut!(HEAP_SPACE).cast(), HEAP_SIZE)
    }
}

unsafe extern "C" {
    static __ftrace_sites_start: usize;
    static __ftrace_sites_stop: usize;
}

/// The compiler-generated site table: one address per patchable entry.
pub fn sites() -> &'static [usize] {
    // SAFETY: the linker script places the __patchable_function_entries
    // input sections, an array of pointer-sized addresses, between these two
    // symbols; the table is never written.
    unsafe {
        let start = core::ptr::addr_of!(__ftrace_sites_start);
        let stop = core::ptr::addr_of!(__ftrace_sites_stop);
        let len = (stop as usize - start as usize) / core::mem::size_of::<usize>();
        core::slice::from_raw_parts(start, len)
    }
}

unsafe extern "C" {
    static __ftrace_region_sites_start: usize;
    static __ftrace_region_sites_stop: usize;
}

/// The site table of the code region (the `demo_region` crate's functions,
/// `.text.region`), which the linker scripts keep out of [`sites`]: one
/// address per patchable entry, registered after boot by `test=region`.
/// Empty in builds without a compiler table (i686 mcount variants).
pub fn code_region_sites() -> &'static [usize] {
    // SAFETY: the linker script places the demo_region crate's
    // __patchable_function_entries input sections, an array of
    // pointer-sized addresses, between these two symbols (aligned to a
    // pointer); the table is never written.
    unsafe {
        let start = core::ptr::addr_of!(__ftrace_region_sites_start);
        let stop = core::ptr::addr_of!(__ftrace_region_sites_stop);
        let len = (stop as usize - start as usize) / core::mem::size_of::<usize>();
        core::slice::from_raw_parts(start, len)
    }
}

unsafe extern "C" {
    static __ftrace_symtab_start: u8;
    static __ftrace_symtab_stop: u8;
}

/// The reserved `.ftrace_symtab` section, as `ftrace-tools embed-symtab`
/// filled it after linking (all zeros if it was not run).
pub fn symtab_bytes() -> &'static [u8] {
    // SAFETY: the linker script reserves the bytes between these symbols;
    // they are written only by the post-link tool, never at run time.
    unsafe {
        let start = core::ptr::addr_of!(__ftrace_symtab_start);
        let stop = core::ptr::addr_of!(__ftrace_symtab_stop);
        core::slice::from_raw_parts(start, stop as usize - start as usize)
    }
}

/// The kernel's side of the tracer contract: plain functions of the arch
/// backend, all compiled without patchable entries, gathered in the crate's
/// [`ftrace::platform::FnPlatform`] (rustc refuses the notrace attribute on
/// trait methods, and the tracer's hot path must not call traced code
/// before its recursion guard is armed).
pub type KernelPlatform = ftrace::platform::FnPlatform;

/// The one platform instance the tracer holds.
///
/// Guarantees (the `ftrace::Platform` safety contract): `cpu_id` is the
/// running CPU's index, below `smp::online()` (its per-CPU data, set before
/// the CPU runs any traced code); the arch backend reports the context its
/// exception and interrupt entry code tracks on the running CPU;
/// `text_write` is the arch's code-patching write with its cache
/// maintenance; `sync_cores` returns once every online CPU has executed a
/// serialising instruction (x86: an IPI; ppc64: an IPI running `isync`;
/// one CPU: its own serialising instruction).
pub static PLATFORM: KernelPlatform = ftrace::platform::FnPlatform {
    cpu_id: crate::arch::cpu_id,
    nr_cpus: crate::smp::online,
    clock_ns: crate::arch::clock_ns,
    context: crate::arch::context,
    irqs_disabled: crate::arch::irqs_disabled,
    text_write: crate::arch::text_write,
    sync_cores: crate::arch::sync_cores,
    shadow_stack,
    // The hot path reads these in line: `irqs_disabled` is the CPU's
    // interrupt flag on every arch here, and `clock_ns` the raw
    // time-stamp counter on x86, the timebase scaled by the rate read
    // from the device tree on ppc64.
    #[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
    sources: ftrace::platform::CpuSources {
        irq_flag: true,
        clock: ftrace::platform::ClockSource::Counter,
    },
    #[cfg(target_arch = "powerpc64")]
    sources: ftrace::platform::CpuSources {
        irq_flag: true,
        clock: ftrace::platform::ClockSource::Scaled(&crate::arch::NS_PER_TICK_32_32),
    },
};

/// While set, the arch's `context` (the platform's) counts its calls in
/// [`CONTEXT_CALLS`] (`test=direct` checks that the trampolines' fast path
/// never asks).
pub static COUNT_CONTEXT: AtomicBool = AtomicBool::new(false);
/// Calls of the platform's `context` while [`COUNT_CONTEXT`] was set.
pub static CONTEXT_CALLS: AtomicUsize = AtomicUsize::new(0);

/// Counts a call of the platform's `context` when asked to (called by the
/// arch's `context`, inlined: one load and a branch when not counting).
#[inline(always)]
pub fn note_context_call() {
    if COUNT_CONTEXT.load(Ordering::Relaxed) {
        CONTEXT_CALLS.fetch_add(1, Ordering::Relaxed);
    }
}

/// Frames of each CPU's shadow return stack (function_graph): deeper
/// hooked calls are counted as overruns and run unhooked.
pub const SHADOW_STACK_DEPTH: usize = 64;

/// One shadow return stack per CPU: this kernel has no tasks, so the CPU's
/// single thread of execution owns it (interrupts nest on it and leave it
/// as they found it).
static SHADOW_STACKS: [ShadowStack<[FrameSlot; SHADOW_STACK_DEPTH]>; crate::smp::MAX_CPUS] =
    [const { ShadowStack::new() }; crate::smp::MAX_CPUS];

#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
fn shadow_stack() -> Option<&'static ShadowStack> {
    SHADOW_STACKS.get(crate::arch::cpu_id()).map(|s| &**s)
}

/// Calls not hooked because a shadow stack was full, over all CPUs.
pub fn shadow_overruns() -> usize {
    SHADOW_STACKS.iter().map(|s| s.overruns()).sum()
}

/// Forgets the overrun counts (between scenarios; no call may be hooked).
pub fn reset_shadow_overruns() {
    for s in &SHADOW_STACKS {
        if s.depth() == 0 {
            s.reset();
        }
    }
}

/// Puts the original return address back into the slot the graph hook
/// replaced (`regs.ret_slot`), as a stray `longjmp` or a buggy unwinder
/// would: the hooked return is skipped. `test=graph-corrupt`'s deliberate
/// damage; returns whether the slot held the hook.
pub fn undo_return_hook(regs: &ftrace::FtraceRegs) -> bool {
    let slot = regs.ret_slot as *mut usize;
    if slot.is_null() {
        return false;
    }
    // SAFETY: the trampoline that called this callback set `ret_slot` to
    // the live word holding the traced function's return address (the
    // `FtraceRegs` contract); writing the value the shadow stack recorded
    // for it leaves a valid return address there.
    unsafe {
        let cur = slot.read_volatile();
        let mut idx = 0;
        let orig = ftrace::fgraph::ret_addr(cur, &mut idx, Some(slot as usize));
        if orig == cur {
            return false;
        }
        slot.write_volatile(orig);
        true
    }
}

/// Bytes of the heap in use (to check that tracing leaks nothing).
pub fn heap_used() -> usize {
    HEAP.lock().used()
}

/// Reads `buf.len()` bytes of kernel text at `addr`, a site the engine
/// knows (an independent snapshot of what the engine patches).
pub fn read_text(addr: usize, buf: &mut [u8]) {
    for (i, b) in buf.iter_mut().enumerate() {
        // SAFETY: callers pass record addresses of the engine (kernel text,
        // mapped and readable) and lengths within the site or stub.
        *b = unsafe { core::ptr::read_volatile((addr + i) as *const u8) };
    }
}

/// Reads `len` bytes of text at `addr` as an instruction, through the
/// tracer's platform: for checks of sites and stubs apart from the engine.
pub fn read_insn(addr: usize, len: usize) -> Result<ftrace::Insn, ftrace::PatchError> {
    // SAFETY: callers pass addresses of records or stubs the engine and
    // the arch backend handed out: kernel text, mapped and readable.
    unsafe { ftrace::arch::read_text(&PLATFORM, addr, len) }
}

/// Overwrites the site at `addr` with `bytes` without any check: the
/// `test=corrupt` scenario's deliberate damage, done before the tracer
/// initialises so that it must detect it.
pub fn corrupt_text(addr: usize, bytes: &[u8]) {
    use ftrace::Platform;
    // SAFETY: `addr` is a patch site found through the site table and the
    // arch backend; `bytes` is the backend's CORRUPT_SITE, a harmless
    // instruction of the site's length, so the function stays executable.
    let _ = unsafe { PLATFORM.text_write(addr, bytes) };
    PLATFORM.sync_cores();
}
