//! The whole ftrace glue of this kernel, step by step as in
//! docs/embedding.md; the rest of the kernel only uses the engine.

use alloc::string::{String, ToString};

use ftrace::Ftrace;
use ftrace::arch::x86::{X86_64, helpers};
use ftrace::fgraph::{FrameSlot, ShadowStack};
use ftrace::platform::{ClockSource, CpuSources, FnPlatform};
use ftrace::tracer::{function, graph};
use x86_64::structures::idt::InterruptStackFrame;

// Step 4: room for the table `ftrace-tools embed-symtab` writes after
// linking (this kernel needs 34 KB in release, 578 KB in debug builds).
ftrace::reserve_symtab!(static SYMTAB: 2 * 1024 * 1024);

/// Step 6: the platform, from the crate's never-traced helpers (one CPU,
/// read-only text written with CR0.WP cleared, the TSC calibrated against
/// the PIT) but for the shadow stack.
pub static PLATFORM: FnPlatform = FnPlatform {
    cpu_id: ftrace::platform::uniprocessor_cpu_id,
    nr_cpus: ftrace::platform::uniprocessor_nr_cpus,
    clock_ns: helpers::tsc_clock_ns,
    context: ftrace::context::cpu0_context,
    irqs_disabled: helpers::irqs_disabled,
    text_write: helpers::text_write_cr0,
    sync_cores: helpers::sync_core,
    shadow_stack,
    // `irqs_disabled` above is the CPU's interrupt flag: read it in line.
    // The clock is not the bare counter (calibrated, from a base): called.
    sources: CpuSources {
        irq_flag: true,
        clock: ClockSource::Platform,
    },
};

/// function_graph's return stack: this kernel has no tasks.
static SHADOW: ShadowStack<[FrameSlot; 64]> = ShadowStack::new();

#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)] // step 3: notrace
fn shadow_stack() -> Option<&'static ShadowStack> {
    Some(&SHADOW)
}

/// Step 7: the `#BP` handler of the `int3` patching protocol: never
/// traced, in interrupt context, the crate emulates the site.
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
pub extern "x86-interrupt" fn breakpoint(mut frame: InterruptStackFrame) {
    ftrace::context::MARKS.irq_enter(0);
    let cpu_frame = &mut frame as *mut InterruptStackFrame as *mut helpers::InterruptFrame;
    // SAFETY: the x86-interrupt ABI passes the frame the CPU pushed for
    // this #BP in place; the trap came from ring 0.
    let handled = unsafe { helpers::handle_int3(cpu_frame) };
    ftrace::context::MARKS.irq_exit(0);
    assert!(
        handled,
        "unexpected int3 at {:#x}",
        frame.instruction_pointer
    );
}

/// The engine, once [`init`] built it.
pub static ENGINE: spin::Once<spin::Mutex<Ftrace<X86_64, FnPlatform>>> = spin::Once::new();

/// Step 8 (the IDT with [`breakpoint`] is loaded): calibrates the clock,
/// builds the engine over the linked tables (only this crate's functions)
/// and readies both tracers. Errors name the build step that was skipped.
pub fn init() -> Result<String, String> {
    // SAFETY: nothing else in this kernel uses PIT channel 2.
    unsafe { helpers::TSC_CLOCK.calibrate() };
    let sites = ftrace::link::patchable_sites().map_err(|e| e.to_string())?;
    let symtab = SYMTAB.table().map_err(|e| e.to_string())?;
    let arch = X86_64::new();
    let mut engine = Ftrace::new(arch, &PLATFORM, sites.iter().copied(), Some(symtab))
        .map_err(|e| e.to_string())?
        .only_crates(&[env!("CARGO_CRATE_NAME")]);
    let report = alloc::format!("sites: {} patchable\n{}", sites.len(), engine.init());
    // Events are stored as offsets from the text's first page: the
    // relocated (PIE) kernel may sit anywhere.
    let text_base = engine.site_ips().next().map_or(0, |ip| ip & !0xfff);
    function::init(&PLATFORM, 4096, text_base);
    graph::init(&PLATFORM, 4096, text_base);
    ENGINE.call_once(|| spin::Mutex::new(engine));
    Ok(report)
}
