//! The x86 (x86_64 and i686) items the tracer needs from the kernel
//! (listed in `kernel/src/arch/mod.rs`), the x86-only scenario `test=int3`
//! and the dispatch of `test=abi` (`crate::abi`). Every function the tracer
//! calls on its hot path or while patching is compiled without a patchable
//! entry (Linux's `notrace`).

use core::arch::asm;
use core::hint::black_box;
use core::sync::atomic::{AtomicUsize, Ordering};

use ftrace::arch::x86::{Batch, NOP5, emulated_count};
use ftrace::{Arch, Context, FtraceRegs, Insn, Ops, OpsFlags, Platform};

use crate::kprintln;

/// Harmless executable bytes that are not the canonical nop: four operand
/// size prefixes on a one-byte nop (`test=corrupt`).
pub const CORRUPT_SITE: &[u8] = &[0x66, 0x66, 0x66, 0x66, 0x90];

/// Writes kernel text: the kernel identity-maps its image
/// read-write-execute (boot code and linker script), so the crate's plain
/// store helper does (the engine's patch loops recognise it and write in
/// line); x86 keeps instruction fetch coherent with stores, and the engine
/// synchronises cores when the protocol needs it.
pub use ftrace::arch::x86::helpers::text_write;

/// The interrupt flag of EFLAGS.
const FLAGS_IF: usize = 1 << 9;

/// Disables interrupts, returning the previous flags.
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
pub fn irq_save() -> usize {
    let flags: usize;
    // `pushfd`/`pushfq` by name: a bare `pushf` assembles to the 16-bit
    // `pushfw` on i686, which leaves the stack two bytes off.
    #[cfg(target_arch = "x86")]
    // SAFETY: reads the flags and clears IF; no memory is touched besides
    // the push/pop of the flags word.
    unsafe {
        asm!("pushfd", "pop {0}", "cli", out(reg) flags, options(nomem))
    };
    #[cfg(target_arch = "x86_64")]
    // SAFETY: as above.
    unsafe {
        asm!("pushfq", "pop {0}", "cli", out(reg) flags, options(nomem))
    };
    flags
}

/// True when interrupts are disabled on this CPU (the trace's `d` flag).
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
pub fn irqs_disabled() -> bool {
    let flags: usize;
    #[cfg(target_arch = "x86")]
    // SAFETY: reads the flags through the stack; nothing else changes.
    unsafe {
        asm!("pushfd", "pop {0}", out(reg) flags, options(nomem, preserves_flags))
    };
    #[cfg(target_arch = "x86_64")]
    // SAFETY: as above.
    unsafe {
        asm!("pushfq", "pop {0}", out(reg) flags, options(nomem, preserves_flags))
    };
    flags & FLAGS_IF == 0
}

/// Re-enables interrupts if `flags` (from [`irq_save`]) had them enabled.
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
pub fn irq_restore(flags: usize) {
    if flags & FLAGS_IF != 0 {
        // SAFETY: restores the state irq_save captured.
        unsafe { asm!("sti", options(nomem, nostack)) };
    }
}

/// Guest time: the time-stamp counter (one tick per nanosecond of guest
/// time under `-icount shift=0`).
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
pub fn clock_ns() -> u64 {
    super::common::clock_ticks()
}

/// `Irq` while an exception or interrupt handler runs on this CPU (the
/// timer, IPIs, `#BP`), `Normal` otherwise.
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
pub fn context() -> Context {
    crate::platform::note_context_call();
    Context::from_index(super::smp::context_index() as usize)
}

/// Where the tracer's trampolines read the CPU's index and context
/// (`Ftrace::use_cpu_local`): `%gs:0` and `%gs:`[`super::smp::CONTEXT_OFFSET`]
/// (on i686 `%gs` is each CPU's data segment over its `PerCpu`).
pub fn cpu_local() -> Option<ftrace::ops::CpuLocal> {
    Some(ftrace::ops::CpuLocal {
        cpu_offset: 0,
        context_offset: super::smp::CONTEXT_OFFSET,
    })
}

/// Drops the sites of functions the `#BP` path or the platform runs
/// (`kernel::arch`, `kernel::platform`, and trait methods implemented
/// there, e.g. `<kernel::arch::...::BpFrame as TrapFrame>::push`, which
/// rustc will not let us mark notrace; and the inline functions of the
/// `x86` and `volatile` crates the arch code uses, compiled into the
/// kernel's crate): a site the int3 protocol is rewriting must never be
/// executed by the handler that emulates it, nor by `sync_cores`.
pub fn filter_sites(sites: impl IntoIterator<Item = usize>) -> alloc::vec::Vec<usize> {
    let symtab = ftrace_abi::symtab::SymbolTable::parse(crate::platform::symtab_bytes()).ok();
    let excluded = |ip: usize| {
        symtab
            .and_then(|t| t.lookup(ip as u64))
            .is_some_and(|(s, _)| {
                let n = s.name.strip_prefix('<').unwrap_or(s.name);
                [
                    "kernel::arch::",
                    "kernel::platform::",
                    "x86::",
                    "volatile::",
                ]
                .iter()
                .any(|p| n.starts_with(p))
            })
    };
    sites.into_iter().filter(|&a| !excluded(a)).collect()
}

/// The code region `test=region` registers after boot: the `demo_region`
/// crate's site table. x86 sites call the trampolines directly, so the
/// region needs no stub area.
pub fn code_region() -> ftrace::CodeRegion {
    ftrace::CodeRegion {
        name: "demo_region",
        sites: crate::platform::code_region_sites().to_vec(),
        stubs: 0..0,
    }
}

/// Stubs of the code region in use: x86 has none.
pub fn code_region_stubs_in_use() -> usize {
    0
}

/// x86-only `test=` scenarios: `int3` (here) and `abi` (`crate::abi`).
pub fn scenario(name: &str) -> Option<bool> {
    match name {
        "int3" => Some(run_int3()),
        "abi" => Some(crate::abi::run()),
        _ => None,
    }
}

static INT3_CALLS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn count_call(_ip: usize, _parent: usize, _ops: &Ops, _regs: &mut FtraceRegs) {
    INT3_CALLS.fetch_add(1, Ordering::Relaxed);
}

/// Counts `demo_leaf` calls for `test=int3`.
static INT3_OPS: Ops = Ops::new(count_call, OpsFlags::empty());

/// Rewrites `demo_leaf`'s site from `old` to `new` with the int3 protocol;
/// with `probe`, calls `demo_leaf(5)` while the site holds int3 (after
/// phases 1 and 2) and prints what happened.
fn int3_step(what: &str, site: usize, old: Insn, new: Insn, probe: bool) -> bool {
    let p: &dyn Platform = &crate::platform::PLATFORM;
    let batch = Batch::new();
    // SAFETY: `site` is demo_leaf's record site (5 bytes of kernel text),
    // and no engine update runs during test=int3's steps.
    if let Err(e) = unsafe { batch.queue(p, site, &old, &new) } {
        kprintln!("int3: {what}: cannot queue: {e}");
        return false;
    }
    let (calls0, traps0) = (INT3_CALLS.load(Ordering::Relaxed), emulated_count());
    let mut results = [0u64; 2];
    let mut n = 0;
    let mut observe = |phase: u8| {
        if probe && phase < 3 && n < 2 {
            results[n] = crate::demo::demo_leaf(black_box(5));
            n += 1;
        }
    };
    // SAFETY: `site` is demo_leaf's record site, holding `old` (checked by
    // queue), and trap_init installed the #BP handler that calls the
    // crate's helper.
    if let Err(e) = unsafe { batch.commit_observed(p, &mut observe) } {
        kprintln!("int3: {what}: {}", e.error);
        return false;
    }
    if !probe {
        return true;
    }
    let calls = INT3_CALLS.load(Ordering::Relaxed) - calls0;
    let traps = emulated_count() - traps0;
    kprintln!(
        "int3: {what} with int3 in place: demo_leaf(5)={} {}, callback ran {calls} times, {traps} traps emulated",
        results[0],
        results[1]
    );
    results == [11, 11] && traps == 2
}

/// `test=int3`: executes `demo_leaf`'s site while it holds the int3 of a
/// batch in flight, in both directions, and checks that the #BP helper
/// emulated the new instruction (the callback ran, or the nop was skipped)
/// and that `demo_leaf` still returned `2 * 5 + 1`.
fn run_int3() -> bool {
    let leaf = crate::demo::demo_leaf as *const () as usize;
    let found = crate::tracing::with_engine(|e| {
        if let Err(err) = e.set_filter(&INT3_OPS, "kernel::demo::demo_leaf") {
            kprintln!("int3: {err}");
            return None;
        }
        if let Err(err) = e.register(&INT3_OPS) {
            kprintln!("int3: {err}");
            return None;
        }
        let i = e.site_ips().position(|ip| ip >= leaf && ip < leaf + 64)?;
        let rec = *e.site(i).record();
        let call = e.arch().expected_insn(&rec, Some(e.site_target(i))).ok()?;
        Some((rec.ip(), call))
    });
    let Some((site, call)) = found else {
        kprintln!("int3: no enabled site for demo_leaf");
        return false;
    };
    let nop = Insn::new(&NOP5);
    let before = INT3_CALLS.load(Ordering::Relaxed);
    let direct = crate::demo::demo_leaf(black_box(5));
    let traced = INT3_CALLS.load(Ordering::Relaxed) - before;
    kprintln!("int3: traced demo_leaf(5)={direct}, callback ran {traced} times");
    let mut ok = direct == 11 && traced == 1;
    // Engine state: the site calls the trampoline. Take it to the nop
    // quietly, then back to the call with the probe, then to the nop with
    // the probe, and back to the call so the engine's view holds again.
    ok &= int3_step("prepare", site, call, nop, false);
    let c0 = INT3_CALLS.load(Ordering::Relaxed);
    ok &= int3_step("nop->call", site, nop, call, true);
    ok &= INT3_CALLS.load(Ordering::Relaxed) - c0 == 2;
    let c1 = INT3_CALLS.load(Ordering::Relaxed);
    ok &= int3_step("call->nop", site, call, nop, true);
    ok &= INT3_CALLS.load(Ordering::Relaxed) == c1;
    ok &= int3_step("restore", site, nop, call, false);
    let differ = crate::tracing::with_engine(|e| {
        if let Err(err) = e.unregister(&INT3_OPS) {
            kprintln!("int3: {err}");
        }
        e.check_all_nops().max(crate::tracing::sites_changed())
    });
    kprintln!("int3: {differ} sites differ from nop after unregister");
    ok && differ == 0
}
