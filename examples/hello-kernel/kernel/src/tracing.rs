//! The whole ftrace glue of this kernel, step by step as in
//! docs/embedding.md. Everything else in the kernel only uses the engine.

use alloc::string::{String, ToString};


use ftrace::Ftrace;
use ftrace::arch::x86::{X86_64, helpers};
use ftrace::fgraph::{FrameSlot, ShadowStack};
use ftrace::platform::FnPlatform;
use ftrace::tracer::{function, graph};
use x86_64::structures::idt::{InterruptDescriptorTable, InterruptStackFrame};

// Step 4: room for the symbol table `ftrace-tools embed-symtab` writes
// into the linked ELF (debug builds need about 800 KiB).
ftrace::reserve_symtab!(static SYMTAB: 2 * 1024 * 1024);

/// Step 6: the platform, all of it from the crate's never-traced helpers
/// but the shadow stack (one CPU, read-only text written with CR0.WP
/// cleared, the TSC calibrated against the PIT).
pub static PLATFORM: FnPlatform = FnPlatform {
    cpu_id: ftrace::platform::uniprocessor_cpu_id,
    nr_cpus: ftrace::platform::uniprocessor_nr_cpus,
    clock_ns: helpers::tsc_clock_ns,
    context: ftrace::context::cpu0_context,
    text_write: helpers::text_write_cr0,
    sync_cores: helpers::sync_core,
    shadow_stack,
};

/// The function_graph tracer's return stack: this kernel has no tasks.
static SHADOW: ShadowStack<[FrameSlot; 64]> = ShadowStack::new();

// Step 3: never traced (the hot path calls it).
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
fn shadow_stack() -> Option<&'static ShadowStack> {
    Some(&SHADOW)
}

/// Step 7: the `#BP` handler the `int3` patching protocol needs. Never
/// traced, marks interrupt context, lets the crate emulate the site.
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
extern "x86-interrupt" fn breakpoint(mut frame: InterruptStackFrame) {
    ftrace::context::MARKS.irq_enter(0);
    let cpu_frame = &mut frame as *mut InterruptStackFrame as *mut helpers::InterruptFrame;
    // SAFETY: `frame` is the frame the CPU pushed for this #BP (the
    // x86-interrupt ABI passes it in place), taken in ring 0.
    let handled = unsafe { helpers::handle_int3(cpu_frame) };
    ftrace::context::MARKS.irq_exit(0);
    assert!(
        handled,
        "unexpected int3 at {:#x}",
        frame.instruction_pointer
    );
}

/// The engine of this kernel.
pub type Engine = Ftrace<X86_64, FnPlatform>;

/// The engine, once [`init`] built it.
pub static ENGINE: spin::Once<spin::Mutex<Engine>> = spin::Once::new();

/// Step 8: installs `#BP` (with the kernel's other handlers, `idt`),
/// calibrates the clock, builds the engine over the linked tables and
/// readies both tracers. Errors name the build step that was skipped.
pub fn init(
    idt: &'static spin::Once<InterruptDescriptorTable>,
    more: fn(&mut InterruptDescriptorTable),
) -> Result<String, String> {
    idt.call_once(|| {
        let mut t = InterruptDescriptorTable::new();
        t.breakpoint.set_handler_fn(breakpoint);
        more(&mut t);
        t
    })
    .load();
    // SAFETY: nothing else in this kernel uses PIT channel 2.
    unsafe { helpers::TSC_CLOCK.calibrate() };
    let sites = ftrace::link::patchable_sites().map_err(|e| e.to_string())?;
    let symtab = SYMTAB.table().map_err(|e| e.to_string())?;
    let mut engine = Ftrace::new(
        X86_64::new(),
        &PLATFORM,
        sites.iter().copied(),
        Some(symtab),
    )
    .only_crates(&[env!("CARGO_CRATE_NAME")]);
    let report = alloc::format!("sites: {} patchable\n{}", sites.len(), engine.init());
    function::init(&PLATFORM, 4096);
    graph::init(&PLATFORM, 4096);
    ENGINE.call_once(|| spin::Mutex::new(engine));
    Ok(report)
}
