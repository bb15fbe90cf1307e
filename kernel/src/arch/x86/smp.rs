//! x86 multiprocessor support (x86_64 and i686): starting the secondary
//! CPUs, per-CPU identity, the local APIC timer and inter-processor
//! interrupts.
//!
//! # Per-CPU identity
//!
//! Every CPU has a [`PerCpu`] block whose first word is its index, reached
//! through the `%gs` segment: `mov %gs:0` is [`cpu_id`] on both arches.
//! x86_64 points `IA32_GS_BASE` at the block; i686 (protected mode, paging
//! off) gives each CPU its own data segment in the kernel's GDT whose base
//! is its block (selector `gs_selector`) and loads it into `%gs`. The
//! block also holds the CPU's interrupt nesting depth (counted by the entry
//! stubs of `trap_64.S`/`trap_32.S`, read by `tracer::context`), its last
//! acknowledged [`sync_cores`] request and whether its periodic timer runs.
//!
//! # Bring-up
//!
//! [`smp_start`] asks QEMU's fw_cfg how many CPUs the machine has
//! (`FW_CFG_NB_CPUS`), copies the real-mode trampoline of `ap_64.S` /
//! `ap_32.S` to [`TRAMPOLINE`] and starts the secondary CPUs one at a time
//! with INIT, STARTUP, STARTUP through the local APIC (xAPIC, MMIO at
//! [`LAPIC_BASE`]). Each one goes real mode -> protected mode (-> long mode
//! with the boot page tables on x86_64), loads the kernel's GDT and its
//! per-CPU `%gs`, switches to its own stack and calls [`x86_ap_entry`],
//! which loads the IDT, enables its local APIC and enters
//! `crate::smp::ap_main`. QEMU numbers the local APICs of a plain `-smp N`
//! machine 0..N: the boot CPU has one of them, the others are started in
//! order.
//!
//! # Timer and IPIs
//!
//! [`timer_start`] runs the local APIC timer in periodic mode on vector
//! [`VECTOR_TIMER`], calibrated once against PIT channel 2. [`sync_cores`]
//! sends [`VECTOR_SYNC`] to every other CPU and waits until each has
//! executed `cpuid` and acknowledged. An idle secondary CPU without its
//! periodic timer halts with a one-shot timer on [`VECTOR_WAKE`] so that it
//! looks for work every millisecond.

use core::arch::asm;
use core::hint::spin_loop;
use core::mem::offset_of;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use volatile::VolatilePtr;
use x86::apic::xapic::{
    XAPIC_EOI, XAPIC_ICR0, XAPIC_ICR1, XAPIC_ID, XAPIC_LVT_TIMER, XAPIC_SVR,
    XAPIC_TIMER_CURRENT_COUNT, XAPIC_TIMER_DIV_CONF, XAPIC_TIMER_INIT_COUNT, XAPIC_TPR,
};
use x86::apic::{
    ApicId, DeliveryMode, DeliveryStatus, DestinationMode, DestinationShorthand, Icr, Level,
    TriggerMode,
};
use x86::io::{inb, outb, outw};
use x86::msr::{IA32_APIC_BASE, rdmsr, wrmsr};

use crate::smp::MAX_CPUS;

/// Physical address of the local APIC's registers (xAPIC mode; QEMU's
/// default, checked against `IA32_APIC_BASE`). Identity-mapped uncached on
/// x86_64 (boot/x86_64.S maps 4 GiB), reached directly on i686 (no paging).
pub const LAPIC_BASE: usize = 0xFEE0_0000;
/// Where the real-mode trampoline is copied: below 1 MiB, page aligned
/// (the STARTUP IPI's vector is its page number). Free conventional
/// memory: QEMU's loaders put the command line and boot information
/// elsewhere (0x20000 and above).
pub const TRAMPOLINE: usize = 0x8000;
/// The periodic timer's vector.
pub const VECTOR_TIMER: u8 = 0x30;
/// The [`sync_cores`] IPI's vector.
pub const VECTOR_SYNC: u8 = 0x31;
/// The idle wake-up timer's vector (no work besides the EOI).
pub const VECTOR_WAKE: u8 = 0x32;
/// The local APIC's spurious-interrupt vector (no EOI).
pub const VECTOR_SPURIOUS: u8 = 0xff;
/// Bytes of each secondary CPU's stack.
const AP_STACK_SIZE: usize = 64 * 1024;

/// One CPU's block, `%gs`-relative on its CPU (module docs).
#[repr(C, align(64))]
pub struct PerCpu {
    /// The CPU's index (`%gs:0`, [`cpu_id`]); never changes.
    index: usize,
    /// Nesting depth of exception and interrupt handlers on this CPU,
    /// incremented and decremented by the entry stubs (`%gs:`
    /// [`TRAP_DEPTH_OFFSET`]); only its own CPU writes it.
    trap_depth: AtomicU32,
    /// The context the tracer sees on this CPU, as `ftrace::Context`'s
    /// index: 2 (irq) while `trap_depth` is non-zero, 0 otherwise; set by
    /// the entry stubs next to the depth (`%gs:`[`CONTEXT_OFFSET`]), read
    /// by [`context`] and by the tracer's trampolines directly
    /// (`Ftrace::use_cpu_local`).
    context: AtomicU32,
    /// The last [`sync_cores`] generation this CPU acknowledged.
    sync_ack: AtomicUsize,
    /// Its periodic timer runs ([`timer_start`]).
    periodic: AtomicBool,
}

impl PerCpu {
    const fn new(index: usize) -> Self {
        PerCpu {
            index,
            trap_depth: AtomicU32::new(0),
            context: AtomicU32::new(0),
            sync_ack: AtomicUsize::new(0),
            periodic: AtomicBool::new(false),
        }
    }
}

/// Offset of [`PerCpu`]'s nesting depth, for the entry stubs.
pub const TRAP_DEPTH_OFFSET: usize = offset_of!(PerCpu, trap_depth);
/// Offset of [`PerCpu`]'s context word, for the entry stubs and the
/// tracer's trampolines.
pub const CONTEXT_OFFSET: usize = offset_of!(PerCpu, context);
/// The context word's value inside a handler (`ftrace::Context::Irq`).
pub const CONTEXT_IRQ: u32 = ftrace::Context::Irq as u32;
const _: () = assert!(offset_of!(PerCpu, index) == 0);

const fn percpu_blocks() -> [PerCpu; MAX_CPUS] {
    let mut a = [const { PerCpu::new(0) }; MAX_CPUS];
    let mut i = 0;
    while i < MAX_CPUS {
        a[i] = PerCpu::new(i);
        i += 1;
    }
    a
}

/// Every CPU's block, indexed by CPU.
static PERCPU: [PerCpu; MAX_CPUS] = percpu_blocks();

/// The running CPU's block.
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
fn this_cpu() -> &'static PerCpu {
    &PERCPU[cpu_id()]
}

/// Index of the running CPU (0: the boot CPU): one `%gs`-relative load.
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
pub fn cpu_id() -> usize {
    let id: usize;
    // SAFETY: `%gs` addresses this CPU's PerCpu block from boot on
    // (boot_cpu_init, the AP trampoline); its first word is the index,
    // which is never written after initialisation.
    unsafe {
        asm!("mov {}, gs:[0]", out(reg) id, options(nostack, readonly, preserves_flags));
    }
    id
}

/// Counts an exception handler entered from Rust (the fatal path, which
/// never returns).
pub fn trap_enter() {
    this_cpu().trap_depth.fetch_add(1, Ordering::Relaxed);
    this_cpu().context.store(CONTEXT_IRQ, Ordering::Relaxed);
}

/// The context word of this CPU (`ftrace::Context` as its index).
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
pub fn context_index() -> u32 {
    let c: u32;
    // SAFETY: as in cpu_id: a read of this CPU's block.
    unsafe {
        asm!("mov {:e}, gs:[{off}]", out(reg) c, off = const CONTEXT_OFFSET,
             options(nostack, readonly, preserves_flags));
    }
    c
}

/// Makes the boot CPU CPU 0: `%gs` addresses `PERCPU[0]` (and, on i686,
/// the kernel's GDT is loaded). Called first thing by the entry code, before
/// anything can ask for [`cpu_id`].
pub fn boot_cpu_init() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: writing IA32_GS_BASE only changes what `%gs:` addresses; the
    // block is static and lives for ever. The kernel runs at CPL 0.
    unsafe {
        wrmsr(x86::msr::IA32_GS_BASE, &PERCPU[0] as *const PerCpu as u64);
    }
    #[cfg(target_arch = "x86")]
    gdt::init_and_load_boot();
}

/// The `%gs` selector of CPU `cpu` on i686 (its per-CPU data segment).
#[cfg(target_arch = "x86")]
pub fn gs_selector(cpu: usize) -> u16 {
    ((gdt::FIRST_PERCPU + cpu) * 8) as u16
}

/// i686: the kernel's GDT, built at boot (Multiboot leaves the loader's).
#[cfg(target_arch = "x86")]
mod gdt {
    use x86::Ring;
    use x86::dtables::{DescriptorTablePointer, lgdt};
    use x86::segmentation::{
        BuildDescriptor, CodeSegmentType, DataSegmentType, Descriptor, DescriptorBuilder,
        SegmentDescriptorBuilder, SegmentSelector, load_cs, load_ds, load_es, load_fs, load_gs,
        load_ss,
    };

    use super::{MAX_CPUS, PERCPU, PerCpu};

    /// Selector 0x08: flat 32-bit code (the IDT's gates use it).
    const CODE: u16 = 1;
    /// Selector 0x10: flat data.
    const DATA: u16 = 2;
    /// Index of CPU 0's per-CPU data segment; CPU `i` has `FIRST_PERCPU + i`.
    pub const FIRST_PERCPU: usize = 3;
    const ENTRIES: usize = FIRST_PERCPU + MAX_CPUS;

    /// The GDT: null, code, data, one `%gs` segment per CPU.
    static mut GDT: [u64; ENTRIES] = [0; ENTRIES];

    /// The `lgdt` operand, also used by the secondary CPUs' entry
    /// (`ap_32.S`).
    #[unsafe(export_name = "x86_gdt_ptr")]
    static mut GDT_PTR: DescriptorTablePointer<[u64; ENTRIES]> = DescriptorTablePointer {
        limit: 0,
        base: core::ptr::null(),
    };

    /// Fills the GDT and loads it on the boot CPU with `%gs` = CPU 0's
    /// block.
    pub fn init_and_load_boot() {
        let flat_code: Descriptor =
            DescriptorBuilder::code_descriptor(0, 0xfffff, CodeSegmentType::ExecuteRead)
                .present()
                .dpl(Ring::Ring0)
                .db()
                .limit_granularity_4kb()
                .finish();
        let flat_data: Descriptor =
            DescriptorBuilder::data_descriptor(0, 0xfffff, DataSegmentType::ReadWrite)
                .present()
                .dpl(Ring::Ring0)
                .db()
                .limit_granularity_4kb()
                .finish();
        // SAFETY: called once on the boot CPU before any other CPU runs and
        // before anything reads the table; both statics are only written
        // here.
        unsafe {
            let gdt = &mut *core::ptr::addr_of_mut!(GDT);
            gdt[CODE as usize] = flat_code.as_u64();
            gdt[DATA as usize] = flat_data.as_u64();
            for (cpu, block) in PERCPU.iter().enumerate() {
                let d: Descriptor = DescriptorBuilder::data_descriptor(
                    block as *const PerCpu as u32,
                    (core::mem::size_of::<PerCpu>() - 1) as u32,
                    DataSegmentType::ReadWrite,
                )
                .present()
                .dpl(Ring::Ring0)
                .db()
                .finish();
                gdt[FIRST_PERCPU + cpu] = d.as_u64();
            }
            *core::ptr::addr_of_mut!(GDT_PTR) = DescriptorTablePointer::new(&*gdt);
            lgdt(&*core::ptr::addr_of!(GDT_PTR));
            load_cs(SegmentSelector::new(CODE, Ring::Ring0));
            let data = SegmentSelector::new(DATA, Ring::Ring0);
            load_ds(data);
            load_es(data);
            load_ss(data);
            load_fs(data);
            load_gs(SegmentSelector::new(FIRST_PERCPU as u16, Ring::Ring0));
        }
    }
}

// i686: the CPU index for the ftrace crate's mcount trampolines
// (`ftrace_32.S`), which need it before they may call any instrumented
// code: asm only, result in %eax, nothing else clobbered (not even the
// flags).
#[cfg(target_arch = "x86")]
core::arch::global_asm!(
    ".text",
    ".balign 16",
    ".globl ftrace_cpu_index",
    ".type ftrace_cpu_index, @function",
    "ftrace_cpu_index:",
    "    mov %gs:0, %eax",
    "    ret",
    ".size ftrace_cpu_index, . - ftrace_cpu_index",
    options(att_syntax)
);

// ---------------------------------------------------------------------
// Local APIC

/// The local APIC register at byte offset `reg`.
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
fn lapic_reg(reg: u32) -> VolatilePtr<'static, u32> {
    // SAFETY: LAPIC_BASE + reg is one of the xAPIC's 32-bit registers
    // (offsets from x86::apic::xapic), mapped on both arches; each CPU
    // reaches its own local APIC there, and the accesses are volatile.
    unsafe {
        VolatilePtr::new(NonNull::new_unchecked(
            (LAPIC_BASE + reg as usize) as *mut u32,
        ))
    }
}

#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
fn lapic_read(reg: u32) -> u32 {
    lapic_reg(reg).read()
}

#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
fn lapic_write(reg: u32, value: u32) {
    lapic_reg(reg).write(value)
}

/// Signals the end of the interrupt being handled.
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
fn lapic_eoi() {
    lapic_write(XAPIC_EOI, 0);
}

/// This CPU's local APIC ID.
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
fn lapic_id() -> u32 {
    lapic_read(XAPIC_ID) >> 24
}

/// LVT: masked.
const LVT_MASKED: u32 = 1 << 16;
/// LVT timer: periodic mode.
const LVT_PERIODIC: u32 = 1 << 17;
/// Timer divide configuration: by 16.
const TIMER_DIV_16: u32 = 0b0011;
/// ICR: delivery status (send pending).
const ICR_PENDING: u32 = 1 << 12;

/// Enables this CPU's local APIC (globally through `IA32_APIC_BASE`, then
/// by software through the spurious-vector register), accepting every
/// priority, timer masked. Also masks the legacy PICs, whose interrupts
/// the kernel does not handle.
fn lapic_enable() {
    // SAFETY: CPL 0; the MSR and these ports exist on every CPU QEMU
    // emulates; enabling the APIC and masking the 8259s affects nothing
    // the kernel relies on.
    unsafe {
        let base = rdmsr(IA32_APIC_BASE);
        assert_eq!(
            base & !0xfff,
            LAPIC_BASE as u64,
            "x86: local APIC not at its default address"
        );
        if base & (1 << 11) == 0 {
            wrmsr(IA32_APIC_BASE, base | (1 << 11));
        }
        outb(0x21, 0xff);
        outb(0xa1, 0xff);
    }
    lapic_write(XAPIC_TPR, 0);
    lapic_write(XAPIC_LVT_TIMER, LVT_MASKED | u32::from(VECTOR_TIMER));
    lapic_write(XAPIC_SVR, (1 << 8) | u32::from(VECTOR_SPURIOUS));
}

/// Sends `icr` and waits until the local APIC has delivered it.
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
fn send_ipi(icr: Icr) {
    // The two ICR halves must not be split by a handler sending its own.
    let flags = super::tracer::irq_save();
    while lapic_read(XAPIC_ICR0) & ICR_PENDING != 0 {
        spin_loop();
    }
    lapic_write(XAPIC_ICR1, icr.upper());
    lapic_write(XAPIC_ICR0, icr.lower());
    while lapic_read(XAPIC_ICR0) & ICR_PENDING != 0 {
        spin_loop();
    }
    super::tracer::irq_restore(flags);
}

/// A fixed-vector IPI to every CPU but this one.
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
fn ipi_all_but_self(vector: u8) {
    send_ipi(Icr::for_xapic(
        vector,
        ApicId::XApic(0),
        DestinationShorthand::AllExcludingSelf,
        DeliveryMode::Fixed,
        DestinationMode::Physical,
        DeliveryStatus::Idle,
        Level::Assert,
        TriggerMode::Edge,
    ));
}

/// INIT or STARTUP to the CPU with local APIC ID `apic_id`.
fn ipi_startup_sequence(apic_id: u8, mode: DeliveryMode, vector: u8) {
    let trigger = if mode == DeliveryMode::Init {
        TriggerMode::Level
    } else {
        TriggerMode::Edge
    };
    send_ipi(Icr::for_xapic(
        vector,
        ApicId::XApic(apic_id),
        DestinationShorthand::NoShorthand,
        mode,
        DestinationMode::Physical,
        DeliveryStatus::Idle,
        Level::Assert,
        trigger,
    ));
}

// ---------------------------------------------------------------------
// Time: PIT channel 2 and the local APIC timer

/// The PIT's input clock.
const PIT_HZ: u64 = 1_193_182;

/// Busy-waits `us` microseconds (at most 54,900) on PIT channel 2 (mode 0,
/// gate on, speaker off), polling its output in port 0x61.
fn pit_wait_us(us: u32) {
    let count = (PIT_HZ * u64::from(us) / 1_000_000).clamp(1, 0xffff) as u16;
    // SAFETY: CPL 0; PIT channel 2 and port 0x61 are used by nothing else
    // (only the boot CPU calls this, during bring-up and calibration).
    unsafe {
        let p61 = inb(0x61);
        outb(0x61, (p61 & !0x02) | 0x01);
        outb(0x43, 0b1011_0000); // channel 2, lobyte/hibyte, mode 0, binary
        outb(0x42, count as u8);
        outb(0x42, (count >> 8) as u8);
        while inb(0x61) & 0x20 == 0 {
            spin_loop();
        }
    }
}

/// Local APIC timer ticks per second at divide-by-16 (0: not measured).
static TIMER_PER_SEC: AtomicU64 = AtomicU64::new(0);
/// Serialises the calibration.
static CALIBRATION: spin::Once<()> = spin::Once::new();

/// Measures the local APIC timer against 10 ms of PIT channel 2 (once;
/// every local APIC timer runs from the same bus clock). The calling
/// CPU's timer is left stopped and masked.
fn timer_calibrate() -> u64 {
    CALIBRATION.call_once(|| {
        lapic_write(XAPIC_TIMER_DIV_CONF, TIMER_DIV_16);
        lapic_write(XAPIC_LVT_TIMER, LVT_MASKED | u32::from(VECTOR_TIMER));
        lapic_write(XAPIC_TIMER_INIT_COUNT, u32::MAX);
        pit_wait_us(10_000);
        let left = lapic_read(XAPIC_TIMER_CURRENT_COUNT);
        lapic_write(XAPIC_TIMER_INIT_COUNT, 0);
        let per_sec = u64::from(u32::MAX - left).max(1) * 100;
        TIMER_PER_SEC.store(per_sec, Ordering::Release);
    });
    TIMER_PER_SEC.load(Ordering::Acquire)
}

/// Starts this CPU's periodic timer: `crate::smp::timer_tick` runs `hz`
/// times a second in hardirq context (vector [`VECTOR_TIMER`], entry
/// `x86_timer_entry`), and interrupts are enabled on this CPU.
pub fn timer_start(hz: u32) {
    lapic_enable();
    let per_sec = timer_calibrate();
    let count = (per_sec / u64::from(hz.max(1))).clamp(1, u64::from(u32::MAX)) as u32;
    lapic_write(XAPIC_TIMER_DIV_CONF, TIMER_DIV_16);
    lapic_write(XAPIC_LVT_TIMER, LVT_PERIODIC | u32::from(VECTOR_TIMER));
    lapic_write(XAPIC_TIMER_INIT_COUNT, count);
    this_cpu().periodic.store(true, Ordering::Relaxed);
    // SAFETY: the IDT has the timer, IPI and spurious entries (trap_init
    // ran before any scenario) and this CPU's local APIC is set up.
    unsafe { asm!("sti", options(nomem, nostack)) };
}

/// Waits a moment for work (a secondary CPU's idle loop): halts with
/// interrupts enabled until the next interrupt, which is the periodic
/// timer when it runs and otherwise a one-shot wake-up 1 ms later. The
/// interrupt flag is left as it was.
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
pub fn cpu_idle() {
    let per_sec = TIMER_PER_SEC.load(Ordering::Relaxed);
    let flags = super::tracer::irq_save();
    if this_cpu().periodic.load(Ordering::Relaxed) || per_sec != 0 {
        if !this_cpu().periodic.load(Ordering::Relaxed) {
            lapic_write(XAPIC_TIMER_DIV_CONF, TIMER_DIV_16);
            lapic_write(XAPIC_LVT_TIMER, u32::from(VECTOR_WAKE));
            lapic_write(XAPIC_TIMER_INIT_COUNT, (per_sec / 1000).max(1) as u32);
        }
        // SAFETY: `sti; hlt` sleeps until the next interrupt (sti's
        // one-instruction shadow keeps a pending one from slipping in
        // before hlt); a timer is armed, so one comes.
        unsafe { asm!("sti", "hlt", options(nomem, nostack)) };
    } else {
        // SAFETY: briefly lets pending interrupts in.
        unsafe { asm!("sti", "pause", options(nomem, nostack)) };
    }
    if flags & FLAGS_IF == 0 {
        // SAFETY: restores the disabled state irq_save found.
        unsafe { asm!("cli", options(nomem, nostack)) };
    }
}

// ---------------------------------------------------------------------
// Interrupt handlers (called by the entry stubs of trap_64.S / trap_32.S,
// which count the nesting depth and save the caller-saved registers)

/// The periodic timer: the tick, then the EOI.
#[unsafe(no_mangle)]
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
extern "C" fn x86_timer_handler() {
    crate::smp::timer_tick();
    lapic_eoi();
}

/// The [`sync_cores`] IPI: serialise, acknowledge, EOI.
#[unsafe(no_mangle)]
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
extern "C" fn x86_sync_handler() {
    sync_ack();
    lapic_eoi();
}

/// The idle wake-up: nothing to do but the EOI.
#[unsafe(no_mangle)]
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
extern "C" fn x86_wake_handler() {
    lapic_eoi();
}

// ---------------------------------------------------------------------
// sync_cores

/// Held by the CPU whose [`sync_cores`] request is in flight.
static SYNC_LOCK: AtomicBool = AtomicBool::new(false);
/// Requests made so far; CPUs acknowledge the latest they saw.
static SYNC_GEN: AtomicUsize = AtomicUsize::new(0);

/// Executes `cpuid`, a serialising instruction.
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
pub fn serialize() {
    // SAFETY: cpuid only reads identification registers; rbx/ebx, which
    // LLVM may reserve, is preserved by hand.
    unsafe {
        #[cfg(target_arch = "x86_64")]
        asm!("mov {t}, rbx", "cpuid", "mov rbx, {t}", t = out(reg) _,
             inout("eax") 0 => _, out("ecx") _, out("edx") _, options(nostack, preserves_flags));
        #[cfg(target_arch = "x86")]
        asm!("mov {t}, ebx", "cpuid", "mov ebx, {t}", t = out(reg) _,
             inout("eax") 0 => _, out("ecx") _, out("edx") _, options(nostack, preserves_flags));
    }
}

/// Serialises this CPU and acknowledges every request made so far.
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
fn sync_ack() {
    let generation = SYNC_GEN.load(Ordering::Acquire);
    serialize();
    this_cpu().sync_ack.store(generation, Ordering::Release);
    // Wake the requester, which may be halted waiting (see sync_cores).
    ipi_to(SYNC_REQUESTER.load(Ordering::Acquire) as u8, VECTOR_WAKE);
}

/// Local APIC ID of the CPU whose request is in flight.
static SYNC_REQUESTER: AtomicUsize = AtomicUsize::new(0);

/// A fixed-vector IPI to the CPU with local APIC ID `apic_id`.
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
fn ipi_to(apic_id: u8, vector: u8) {
    send_ipi(Icr::for_xapic(
        vector,
        ApicId::XApic(apic_id),
        DestinationShorthand::NoShorthand,
        DeliveryMode::Fixed,
        DestinationMode::Physical,
        DeliveryStatus::Idle,
        Level::Assert,
        TriggerMode::Edge,
    ));
}

/// Makes every online CPU execute a serialising instruction: `cpuid` here,
/// and on SMP an IPI ([`VECTOR_SYNC`]) to every other CPU, whose handler
/// runs `cpuid`, acknowledges and wakes the requester ([`VECTOR_WAKE`]);
/// returns when all online CPUs have (a CPU in an interrupt handler, the
/// `#BP` one included, acknowledges after it, with interrupts enabled
/// again). The requester waits halted when it was called with interrupts
/// enabled, spinning otherwise. One request at a time: a CPU waiting for
/// its turn acknowledges the request in flight itself, so two CPUs syncing
/// with interrupts disabled do not wait for each other. A CPU that has not
/// acknowledged after [`SYNC_TIMEOUT_TICKS`] is reported as a panic.
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
pub fn sync_cores() {
    serialize();
    let n = crate::smp::online();
    if n <= 1 {
        return;
    }
    let me = cpu_id();
    while SYNC_LOCK
        .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        if this_cpu().sync_ack.load(Ordering::Relaxed) < SYNC_GEN.load(Ordering::Acquire) {
            sync_ack();
        }
        spin_loop();
    }
    SYNC_REQUESTER.store(lapic_id() as usize, Ordering::Release);
    let generation = SYNC_GEN.fetch_add(1, Ordering::SeqCst) + 1;
    PERCPU[me].sync_ack.store(generation, Ordering::Release);
    // With interrupts enabled, wait halted: every acknowledgement sends a
    // wake-up IPI, so the halt ends; under emulation the halted CPU leaves
    // the host's cores to the CPUs it waits for.
    let flags = super::tracer::irq_save();
    ipi_all_but_self(VECTOR_SYNC);
    let start = super::common::clock_ticks();
    for (cpu, block) in PERCPU.iter().enumerate().take(n) {
        while block.sync_ack.load(Ordering::Acquire) < generation {
            if super::common::clock_ticks().wrapping_sub(start) > SYNC_TIMEOUT_TICKS {
                panic!("sync_cores: CPU {cpu} did not acknowledge request {generation}");
            }
            if flags & FLAGS_IF != 0 {
                // SAFETY: sti's shadow covers hlt, so a wake-up arriving
                // after the check above ends the halt; cli restores the
                // state irq_save left.
                unsafe { asm!("sti", "hlt", "cli", options(nomem, nostack)) };
            } else {
                spin_loop();
            }
        }
    }
    super::tracer::irq_restore(flags);
    SYNC_LOCK.store(false, Ordering::Release);
}

/// The interrupt flag of EFLAGS.
const FLAGS_IF: usize = 1 << 9;

/// Time-stamp counter ticks after which a missing acknowledgement is
/// reported as a deadlock (several seconds of QEMU's TSC).
const SYNC_TIMEOUT_TICKS: u64 = 20_000_000_000;

// ---------------------------------------------------------------------
// Bring-up

/// What the trampoline's continuation reads for the CPU being started
/// (`ap_64.S`, `ap_32.S`); written by the boot CPU before each STARTUP.
#[repr(C)]
struct ApBoot {
    /// The CPU's index, passed to `x86_ap_entry`.
    cpu: AtomicUsize,
    /// Its initial stack pointer.
    stack_top: AtomicUsize,
    /// x86_64: its PerCpu block (IA32_GS_BASE); i686: its `%gs` selector.
    gs: AtomicUsize,
}

#[unsafe(export_name = "x86_ap_boot")]
static AP_BOOT: ApBoot = ApBoot {
    cpu: AtomicUsize::new(0),
    stack_top: AtomicUsize::new(0),
    gs: AtomicUsize::new(0),
};

#[repr(C, align(16))]
struct Stack([u8; AP_STACK_SIZE]);

/// The secondary CPUs' stacks (index 0, the boot CPU's, is unused: it
/// runs on `boot_stack`).
static mut AP_STACKS: [Stack; MAX_CPUS] = [const { Stack([0; AP_STACK_SIZE]) }; MAX_CPUS];

unsafe extern "C" {
    static boot_stack: u8;
    static boot_stack_top: u8;
}

/// The running CPU's stack, `lo..hi` (the panic backtrace stays within).
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
pub fn stack_bounds() -> (usize, usize) {
    let cpu = cpu_id();
    if cpu == 0 {
        (
            core::ptr::addr_of!(boot_stack) as usize,
            core::ptr::addr_of!(boot_stack_top) as usize,
        )
    } else {
        // SAFETY: only the address of the CPU's stack is taken.
        let lo = unsafe { core::ptr::addr_of!(AP_STACKS[cpu]) } as usize;
        (lo, lo + AP_STACK_SIZE)
    }
}

#[cfg(target_arch = "x86_64")]
core::arch::global_asm!(
    include_str!("ap_real.S"),
    include_str!("ap_64.S"),
    tramp = const TRAMPOLINE,
    ap_cpu = const offset_of!(ApBoot, cpu),
    ap_stack = const offset_of!(ApBoot, stack_top),
    ap_gs = const offset_of!(ApBoot, gs),
    options(att_syntax)
);
#[cfg(target_arch = "x86")]
core::arch::global_asm!(
    include_str!("ap_real.S"),
    include_str!("ap_32.S"),
    tramp = const TRAMPOLINE,
    ap_cpu = const offset_of!(ApBoot, cpu),
    ap_stack = const offset_of!(ApBoot, stack_top),
    ap_gs = const offset_of!(ApBoot, gs),
    options(att_syntax)
);

unsafe extern "C" {
    static x86_ap_trampoline: u8;
    static x86_ap_trampoline_end: u8;
}

/// Where a secondary CPU's trampoline ends: `%gs` is its block, the stack
/// its own. Loads the IDT, enables the local APIC and enters the
/// arch-neutral loop.
#[unsafe(no_mangle)]
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
extern "C" fn x86_ap_entry(cpu: usize) -> ! {
    super::trap::load_idt();
    lapic_enable();
    crate::smp::ap_main(cpu)
}

/// QEMU's fw_cfg: the number of CPUs (`FW_CFG_NB_CPUS`), 1 without the
/// device.
fn fw_cfg_cpus() -> usize {
    const SELECTOR: u16 = 0x510;
    const DATA: u16 = 0x511;
    const FW_CFG_SIGNATURE: u16 = 0x00;
    const FW_CFG_NB_CPUS: u16 = 0x05;
    // SAFETY: CPL 0; the fw_cfg ports are QEMU's and have no memory
    // effects; without the device the signature does not match.
    unsafe {
        outw(SELECTOR, FW_CFG_SIGNATURE);
        let sig = [inb(DATA), inb(DATA), inb(DATA), inb(DATA)];
        if &sig != b"QEMU" {
            return 1;
        }
        outw(SELECTOR, FW_CFG_NB_CPUS);
        usize::from(u16::from_le_bytes([inb(DATA), inb(DATA)]))
    }
}

/// Starts up to `max - 1` secondary CPUs; each runs `crate::smp::ap_main`.
/// Returns the CPUs online. With one CPU nothing is touched.
pub fn smp_start(max: usize) -> usize {
    let want = fw_cfg_cpus().min(max).min(MAX_CPUS);
    if want <= 1 {
        return 1;
    }
    super::trap::trap_init();
    lapic_enable();
    timer_calibrate();
    let start = core::ptr::addr_of!(x86_ap_trampoline);
    let len = core::ptr::addr_of!(x86_ap_trampoline_end) as usize - start as usize;
    // SAFETY: TRAMPOLINE..+len is free low memory (see TRAMPOLINE), mapped
    // on x86_64 and addressable on i686; no other CPU runs yet.
    unsafe { core::ptr::copy_nonoverlapping(start, TRAMPOLINE as *mut u8, len) };
    let bsp = lapic_id();
    let mut apic_id = 0;
    for cpu in 1..want {
        if apic_id == bsp {
            apic_id += 1;
        }
        // SAFETY: only the address of the CPU's stack is taken.
        let stack = unsafe { core::ptr::addr_of!(AP_STACKS[cpu]) } as usize + AP_STACK_SIZE;
        #[cfg(target_arch = "x86_64")]
        let gs = &PERCPU[cpu] as *const PerCpu as usize;
        #[cfg(target_arch = "x86")]
        let gs = usize::from(gs_selector(cpu));
        AP_BOOT.cpu.store(cpu, Ordering::Relaxed);
        AP_BOOT.stack_top.store(stack, Ordering::Relaxed);
        AP_BOOT.gs.store(gs, Ordering::SeqCst);
        let online = crate::smp::online();
        ipi_startup_sequence(apic_id as u8, DeliveryMode::Init, 0);
        pit_wait_us(10_000);
        let page = (TRAMPOLINE >> 12) as u8;
        for _ in 0..2 {
            ipi_startup_sequence(apic_id as u8, DeliveryMode::StartUp, page);
            pit_wait_us(200);
            if crate::smp::online() > online {
                break;
            }
        }
        // Up to a second for it to reach ap_main.
        let mut waited = 0;
        while crate::smp::online() == online && waited < 1000 {
            pit_wait_us(1000);
            waited += 1;
        }
        if crate::smp::online() == online {
            log::warn!("smp: CPU {cpu} (local APIC {apic_id}) did not start");
            break;
        }
        apic_id += 1;
    }
    crate::smp::online()
}
