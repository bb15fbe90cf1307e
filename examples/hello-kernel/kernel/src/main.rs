//! hello-kernel: a small x86_64 kernel, booted from a BIOS disk image by the
//! `bootloader` crate, that embeds the `ftrace` crate through its public API
//! only (docs/embedding.md; the glue is [`tracing`]) and traces its own
//! functions with Linux's function and function_graph tracers.
//!
//! The command line comes in the ramdisk (the image tool writes it there):
//! `ftrace=function` or `ftrace=function_graph`, `ftrace_filter=GLOBS`,
//! `test=int3` (run `demo::leaf` while its site holds the `int3` of a
//! patch in flight, so the `#BP` handler must emulate it), and
//! `bp_stack=ist` (the `#BP` handler on its own stack, IST 1, instead of the
//! interrupted one).
//! The trace goes to COM1; QEMU's isa-debug-exit device ends the run.
#![no_std]
#![no_main]
// `extern "x86-interrupt"` handlers (the x86_64 crate's IDT).
#![feature(abi_x86_interrupt)]
// Step 3 of docs/embedding.md: the notrace attribute.
#![feature(patchable_function_entry)]

extern crate alloc;

mod demo;
mod tracing;

use alloc::string::String;
use core::fmt::Write;
use core::hint::black_box;

use bootloader_api::config::BootloaderConfig;
use bootloader_api::{BootInfo, entry_point};
use ftrace::tracer::{function, graph};
use linked_list_allocator::LockedHeap;
use x86_64::VirtAddr;
use x86_64::instructions::port::Port;
use x86_64::instructions::segmentation::{CS, SS, Segment};
use x86_64::instructions::tables::load_tss;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable, SegmentSelector};
use x86_64::structures::idt::{InterruptDescriptorTable, InterruptStackFrame};
use x86_64::structures::tss::TaskStateSegment;

const CONFIG: BootloaderConfig = {
    let mut c = BootloaderConfig::new_default();
    // Debug builds with tracing on need more than the default 80 KiB.
    c.kernel_stack_size = 512 * 1024;
    c
};
entry_point!(kmain, config = &CONFIG);

#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();
const HEAP_SIZE: usize = 4 * 1024 * 1024;
static mut HEAP_SPACE: [u8; HEAP_SIZE] = [0; HEAP_SIZE];

static IDT: spin::Once<InterruptDescriptorTable> = spin::Once::new();
/// The software interrupt `int $0x40` raises.
const VECTOR_DEMO: u8 = 0x40;

/// The GDT with a TSS whose IST 1 is [`IST_STACK`], for `bp_stack=ist`.
static GDT: spin::Once<(GlobalDescriptorTable, [SegmentSelector; 3])> = spin::Once::new();
static TSS: spin::Once<TaskStateSegment> = spin::Once::new();
const IST_SIZE: usize = 64 * 1024;
static mut IST_STACK: [u8; IST_SIZE] = [0; IST_SIZE];

/// Loads a GDT of our own with a TSS whose first IST entry is a separate
/// stack (the bootloader's GDT has no TSS).
fn load_ist() {
    let tss = TSS.call_once(|| {
        let mut tss = TaskStateSegment::new();
        tss.interrupt_stack_table[0] =
            VirtAddr::from_ptr(core::ptr::addr_of!(IST_STACK)) + IST_SIZE as u64;
        tss
    });
    let (gdt, [code, data, tss_sel]) = GDT.call_once(|| {
        let mut gdt = GlobalDescriptorTable::new();
        let code = gdt.append(Descriptor::kernel_code_segment());
        let data = gdt.append(Descriptor::kernel_data_segment());
        let tss_sel = gdt.append(Descriptor::tss_segment(tss));
        (gdt, [code, data, tss_sel])
    });
    gdt.load();
    // SAFETY: the selectors index the GDT just loaded, which lives for
    // ever; the TSS descriptor is loaded once.
    unsafe {
        CS::set_reg(*code);
        SS::set_reg(*data);
        load_tss(*tss_sel);
    }
}

/// COM1, written byte by byte.
struct Serial;

impl Write for Serial {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for b in s.bytes() {
            // SAFETY: COM1's data port; QEMU's serial device is there.
            unsafe { Port::<u8>::new(0x3f8).write(b) };
        }
        Ok(())
    }
}

macro_rules! println {
    ($($arg:tt)*) => {{ let _ = writeln!(Serial, $($arg)*); }};
}

/// Leaves QEMU through isa-debug-exit: status 33 for success, 35 otherwise.
fn exit(ok: bool) -> ! {
    println!("hello-kernel: {}", if ok { "success" } else { "FAILURE" });
    // SAFETY: the debug-exit port; writing it ends the VM.
    unsafe { Port::<u32>::new(0xf4).write(if ok { 0x10 } else { 0x11 }) };
    loop {
        x86_64::instructions::hlt();
    }
}

/// A hardware-interrupt-style handler: its traced callee shows `h`.
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
extern "x86-interrupt" fn demo_interrupt(_frame: InterruptStackFrame) {
    ftrace::context::MARKS.irq_enter(0);
    demo::in_irq();
    ftrace::context::MARKS.irq_exit(0);
}

fn kmain(boot: &'static mut BootInfo) -> ! {
    // SAFETY: called once, before any allocation; nothing else uses the
    // region.
    unsafe {
        HEAP.lock()
            .init(core::ptr::addr_of_mut!(HEAP_SPACE).cast(), HEAP_SIZE)
    };
    let cmdline = match boot.ramdisk_addr.into_option() {
        // SAFETY: the bootloader mapped the ramdisk there, read-only, for
        // good.
        Some(a) => unsafe {
            core::slice::from_raw_parts(a as *const u8, boot.ramdisk_len as usize)
        },
        None => &[],
    };
    let cmdline = core::str::from_utf8(cmdline)
        .unwrap_or("")
        .trim_end_matches(['\n', '\0']);
    println!("hello-kernel: booting");
    println!("cmdline: {cmdline}");
    let ist = cmdline
        .split_ascii_whitespace()
        .any(|o| o == "bp_stack=ist");
    if ist {
        load_ist();
    }
    IDT.call_once(|| {
        let mut t = InterruptDescriptorTable::new();
        let bp = t.breakpoint.set_handler_fn(tracing::breakpoint); // step 7
        if ist {
            // SAFETY: IST 1 is a valid stack used by nothing else.
            unsafe { bp.set_stack_index(0) };
        }
        t[VECTOR_DEMO].set_handler_fn(demo_interrupt);
        t
    })
    .load();
    match tracing::init() {
        Ok(r) => println!("{r}"),
        Err(e) => {
            println!("{e}");
            exit(false)
        }
    }
    exit(run(cmdline))
}

/// The workload: the call tree, then one interrupt.
#[inline(never)]
fn workload() -> u64 {
    let r = demo::outer(black_box(1));
    // SAFETY: vector 0x40 has a handler (installed by `kmain`).
    unsafe { core::arch::asm!("int 0x40") };
    r
}

/// Traces the workload as the command line asks and prints the trace.
fn run(cmdline: &str) -> bool {
    let mut tracer = None;
    let mut filter = None;
    let mut int3 = false;
    for opt in cmdline.split_ascii_whitespace() {
        match opt.split_once('=') {
            Some(("ftrace", t)) => tracer = Some(t),
            Some(("ftrace_filter", f)) => filter = Some(f),
            Some(("test", "int3")) => int3 = true,
            Some(("bp_stack", "ist")) => {}
            _ => println!("cmdline: unknown option '{opt}' ignored"),
        }
    }
    let mut engine = tracing::ENGINE.get().expect("tracing::init ran").lock();
    let graph = tracer == Some("function_graph");
    let ops = if graph {
        graph::ops().ops()
    } else {
        function::ops()
    };
    if let Some(f) = filter
        && let Err(e) = engine.set_filter(ops, f)
    {
        println!("{e}");
        return false;
    }
    let started = match tracer {
        None => Ok(()),
        Some("function") => engine.register(ops),
        Some("function_graph") => engine.register_graph(graph::ops()),
        Some(other) => {
            println!("ftrace: unknown tracer '{other}'");
            return false;
        }
    };
    if let Err(e) = started {
        println!("{e}");
        return false;
    }
    drop(engine);
    let int3_ok = !int3 || int3_in_flight();
    let result = workload();
    let mut engine = tracing::ENGINE.get().expect("tracing::init ran").lock();
    let stopped = match tracer {
        None => Ok(()),
        Some("function_graph") => engine.unregister_graph(graph::ops()),
        Some(_) => engine.unregister(ops),
    };
    println!("demo: outer(1)={result}");
    let mut out = String::new();
    let _ = match tracer {
        None => Ok(()),
        Some("function_graph") => {
            graph::write_trace(&mut out, engine.symbols(), &Default::default())
        }
        Some(_) => function::write_trace(&mut out, engine.symbols()),
    };
    let _ = Serial.write_str(&out);
    stopped.is_ok() && engine.check_all_nops() == 0 && result == 15 && int3_ok
}

/// `test=int3`: rewrites `demo::leaf`'s site (calling the tracer) to the
/// nop and back with the engine's `int3` protocol, calling `leaf` while the
/// `int3` is in place (after phases 1 and 2): the `#BP` handler must
/// emulate the nop (untraced), then the call (traced, through the crate's
/// stub, from the `x86-interrupt` handler on the interrupted stack).
fn int3_in_flight() -> bool {
    use ftrace::arch::x86::{Batch, NOP5, emulated_count};
    use ftrace::{Arch, Insn, Platform};
    let leaf = demo::leaf as *const () as usize;
    let found = {
        let e = tracing::ENGINE.get().expect("tracing::init ran").lock();
        e.site_ips()
            .position(|ip| ip >= leaf && ip < leaf + 16)
            .and_then(|i| {
                let rec = *e.site(i).record();
                Some((
                    rec.ip(),
                    e.arch().expected_insn(&rec, Some(e.site_target(i))).ok()?,
                ))
            })
    };
    let Some((site, call)) = found else {
        println!("int3: demo::leaf is not traced");
        return false;
    };
    let (nop, p): (Insn, &dyn Platform) = (Insn::new(&NOP5), &tracing::PLATFORM);
    let before = emulated_count();
    let mut sum = 0;
    for (old, new) in [(call, nop), (nop, call)] {
        let batch = Batch::new();
        let mut observe = |phase: u8| {
            if phase < 3 {
                sum += demo::leaf(black_box(u64::from(phase)));
            }
        };
        // SAFETY: `site` is leaf's record site (5 bytes of kernel text)
        // holding `old` (queue checks it), no engine update runs meanwhile
        // (this CPU holds no engine call, and there is one CPU), and the
        // IDT has the #BP handler that calls handle_int3.
        let ok = unsafe { batch.queue(p, site, &old, &new) }.is_ok()
            && unsafe { batch.commit_observed(p, &mut observe) }.is_ok();
        if !ok {
            println!("int3: patching demo::leaf failed");
            return false;
        }
    }
    let traps = emulated_count() - before;
    println!("int3: {traps} traps emulated, leaf(1) + leaf(2) twice = {sum}");
    traps == 4 && sum == 12
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    println!("panic: {info}");
    exit(false)
}
