//! ppc64 multiprocessor support: starting the secondary CPUs through RTAS
//! `start-cpu`, per-CPU identity, the decrementer and inter-processor
//! interrupts (XICS hypercalls).
//!
//! - **Per-CPU register**: r13 holds the running CPU's [`PerCpu`] for good
//!   (set in `_start` for CPU 0 and in `ppc64_secondary_start` for the
//!   others); [`cpu_id`] is one load through it. The ELFv2 ABI reserves
//!   r13 (thread pointer): compiled code never allocates it and this
//!   kernel has no TLS, the ftrace trampolines never restore it from their
//!   frames, and `ppc64_of_call` saves it around the firmware. SPRG0 holds
//!   the same address for the interrupt stubs, SPRG1 is their scratch.
//! - **Start**: [`smp_start`] calls RTAS `start-cpu(id, ppc64_secondary_start,
//!   &PerCpu)` for the hardware ids the firmware lists under `/cpus`
//!   (read at boot; without any, 0, 1, 2, ...), in ascending order: a CPU
//!   starts in real mode with MSR = SF | ME and r3 = its `PerCpu`, which
//!   already holds its index and stack. RTAS answers "parameter error" for
//!   an id that does not exist (the end) and "hardware error" for a CPU
//!   that is not stopped: the boot CPU, whose id this is (QEMU's has the
//!   lowest id, so it is found before `max` can end the walk). Each
//!   started CPU is waited for (1 s of timebase) before the next. The
//!   hardware id is also the CPU's XICS interrupt server number.
//! - **Vectors**: with the MMU off, interrupts go to real addresses 0x500
//!   (external), 0x800 (floating point unavailable: a tracing callback used
//!   FP, see [`fp_unavailable`]) and 0x900 (decrementer), inside the memory of the
//!   firmware (VOF), which is not called again once the boot-time
//!   client-interface calls are done ([`install_vectors`] disables them).
//!   Three position-independent stubs (boot/ppc64_smp.S) are copied there
//!   and flushed to the instruction cache; they jump to
//!   `ppc64_irq_common`, which saves every volatile register (FP too),
//!   and calls [`ppc64_irq_handler`] with the CPU marked in hardirq
//!   context ([`context`]).
//! - **Decrementer**: [`timer_start`] programs DEC with timebase / hz and
//!   enables MSR.EE; the handler re-arms it with the same period and calls
//!   `crate::smp::timer_tick`. A CPU without a timer has interrupts enabled
//!   too (for IPIs), so its decrementer is re-armed with the longest
//!   period, [`DEC_IDLE`] (4.2 s), and no tick runs.
//! - **IPIs** ([`sync_cores`]): every CPU accepts all priorities
//!   (`H_CPPR(0xff)`) and runs with MSR.EE set once it is online. The
//!   sender bumps a generation, raises the IPI of every other ready CPU
//!   (`H_IPI(server, 0)`) and waits until each has acknowledged that
//!   generation. The receiver's external-interrupt handler accepts it
//!   (`H_XIRR`, source 2), withdraws it (`H_IPI(self, 0xff)`), executes
//!   `isync`, acknowledges and ends it (`H_EOI`). Both sides then
//!   `H_CONFER`: under single-threaded TCG (`-icount`) a spinning vCPU
//!   would otherwise keep the one host thread until its time slice ends,
//!   so each round would cost whole slices; with multi-threaded TCG it is a
//!   cheap no-op. With one CPU online `sync_cores` is an `isync`, as before.
//!   `sync_cores` panics when a CPU has not answered within 5 s.

use core::mem::offset_of;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence};

use ftrace::Context;

use super::hcall;
use crate::smp::MAX_CPUS;

/// Bytes of each secondary CPU's stack (boot/ppc64_smp.S).
const AP_STACK_SIZE: usize = 128 * 1024;

/// One CPU's state, reached through r13 (and SPRG0 in the interrupt stubs).
/// The assembly in boot/ppc64_smp.S uses the offsets of `index`,
/// `stack_top` and `scratch`.
#[repr(C, align(128))]
pub struct PerCpu {
    /// The CPU's index (0: the boot CPU); never changes.
    index: usize,
    /// Its hardware id (from `/cpus`): RTAS's CPU id and its XICS
    /// interrupt server number.
    hw_id: AtomicU32,
    /// The context the tracer sees on this CPU, as `ftrace::Context`'s
    /// index (2 inside the interrupt handler, 0 otherwise; handlers never
    /// nest): read by
    /// [`context`] and by the tracer's trampolines through r13
    /// (`Ftrace::use_cpu_local`).
    context: AtomicU32,
    /// Decrementer period in timebase ticks (0: no timer).
    dec_period: AtomicUsize,
    /// Its stack's top (secondary CPUs; read by ppc64_secondary_start).
    stack_top: AtomicUsize,
    /// Set once it accepts IPIs (CPPR open, MSR.EE set): `sync_cores`
    /// waits for it from then on.
    ipi_ready: AtomicBool,
    /// The newest `sync_cores` generation it has acknowledged.
    sync_ack: AtomicU64,
    /// The interrupt stubs' save slots: r11, r12, r13, CTR.
    scratch: [AtomicUsize; 4],
}

impl PerCpu {
    const fn new(index: usize) -> Self {
        Self {
            index,
            hw_id: AtomicU32::new(0),
            context: AtomicU32::new(0),
            dec_period: AtomicUsize::new(0),
            stack_top: AtomicUsize::new(0),
            ipi_ready: AtomicBool::new(false),
            sync_ack: AtomicU64::new(0),
            scratch: [const { AtomicUsize::new(0) }; 4],
        }
    }
}

/// Every CPU's [`PerCpu`], by index. `_start` loads CPU 0's address into
/// r13 by this symbol name.
#[unsafe(export_name = "ppc64_percpu")]
static PERCPU: [PerCpu; MAX_CPUS] = {
    let mut a = [const { PerCpu::new(0) }; MAX_CPUS];
    let mut i = 0;
    while i < MAX_CPUS {
        a[i] = PerCpu::new(i);
        i += 1;
    }
    a
};

core::arch::global_asm!(
    include_str!("../../../../boot/ppc64_smp.S"),
    pc_index = const offset_of!(PerCpu, index),
    pc_stack_top = const offset_of!(PerCpu, stack_top),
    pc_r11 = const offset_of!(PerCpu, scratch),
    pc_r12 = const offset_of!(PerCpu, scratch) + 8,
    pc_r13 = const offset_of!(PerCpu, scratch) + 16,
    pc_ctr = const offset_of!(PerCpu, scratch) + 24,
    ap_stack_size = const AP_STACK_SIZE,
    ap_stacks = const MAX_CPUS - 1,
);

unsafe extern "C" {
    /// boot/ppc64_smp.S: the vector stubs, copied to 0x500, 0x800 and
    /// 0x900.
    static ppc64_vec_ext_start: u32;
    static ppc64_vec_ext_end: u32;
    static ppc64_vec_fp_start: u32;
    static ppc64_vec_fp_end: u32;
    static ppc64_vec_dec_start: u32;
    static ppc64_vec_dec_end: u32;
    /// Where RTAS starts a secondary CPU.
    fn ppc64_secondary_start();
    /// The secondary CPUs' stacks, `AP_STACK_SIZE` bytes each.
    static ppc64_ap_stacks: u8;
}

/// External interrupt vector (real address).
const VEC_EXTERNAL: usize = 0x500;
/// Floating-point unavailable vector (real address): taken when code runs
/// a floating-point instruction with MSR.FP clear, as the tracer's
/// callbacks do (the trampolines save no floating-point state).
const VEC_FP_UNAVAILABLE: usize = 0x800;
/// Decrementer interrupt vector (real address).
const VEC_DECREMENTER: usize = 0x900;
/// Bytes a vector stub may take: the next vector is 0x80 (0x980: the
/// hypervisor decrementer) or 0x100 further on.
const VEC_STUB_MAX: usize = 0x80;

/// `MSR.EE`: external (and decrementer) interrupts enabled.
const MSR_EE: usize = 1 << 15;

/// True when `MSR.EE` is clear on this CPU (the trace's `d` flag).
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
pub fn irqs_disabled() -> bool {
    let msr: usize;
    // SAFETY: `mfmsr` only reads the machine state register.
    unsafe {
        core::arch::asm!("mfmsr {0}", out(reg) msr, options(nomem, nostack, preserves_flags))
    };
    msr & MSR_EE == 0
}

/// Sets `MSR.EE`: external and decrementer interrupts are taken.
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
fn irq_enable() {
    // SAFETY: `mtmsrd r,1` changes only EE and RI (RI written back as
    // read); the vectors and this CPU's per-CPU area are set up before any
    // caller enables interrupts.
    unsafe {
        core::arch::asm!(
            "mfmsr {t}",
            "or {t}, {t}, {ee}",
            "mtmsrd {t}, 1",
            t = out(reg) _,
            ee = in(reg) MSR_EE,
            options(nostack, preserves_flags),
        );
    }
}
/// The decrementer's period when no timer runs: the largest positive
/// 32-bit value (4.2 s at 512 MHz).
const DEC_IDLE: usize = 0x7fff_ffff;
/// XICS source number of the inter-processor interrupt.
const XICS_IPI: u32 = 2;
/// Priority an IPI is raised with (most favoured).
const IPI_PRIORITY: u8 = 0;
/// MFRR value that withdraws an IPI.
const IPI_NONE: u8 = 0xff;
/// RTAS status: success.
const RTAS_SUCCESS: i32 = 0;
/// RTAS status: hardware error (start-cpu: the CPU is not stopped).
const RTAS_HW_ERROR: i32 = -1;
/// Seconds to wait for a started CPU to come online.
const WAIT_SECONDS: u64 = 1;
/// `sync_cores` gives up (panics) after this many seconds of silence.
const SYNC_WAIT_SECONDS: u64 = 5;

/// Marks an RTAS token not found.
const NO_TOKEN: u32 = u32::MAX;
/// RTAS `start-cpu` token, read at boot.
static RTAS_START_CPU: AtomicU32 = AtomicU32::new(NO_TOKEN);
/// The hardware ids of the CPUs under `/cpus`, ascending, read at boot.
static CPU_IDS: [AtomicU32; MAX_CPUS] = [const { AtomicU32::new(0) }; MAX_CPUS];
/// How many of [`CPU_IDS`] are valid.
static CPU_ID_COUNT: AtomicUsize = AtomicUsize::new(0);
/// The vectors are installed.
static VECTORS: AtomicBool = AtomicBool::new(false);
/// `sync_cores` generation: bumped by each call that sends IPIs.
static SYNC_GEN: AtomicU64 = AtomicU64::new(0);

/// The running CPU's [`PerCpu`].
#[inline(always)]
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
fn this_cpu() -> &'static PerCpu {
    let p: usize;
    // SAFETY: copies r13, which holds this CPU's PerCpu address from its
    // first instruction of kernel code on (module docs); nothing else.
    unsafe {
        core::arch::asm!("mr {}, 13", out(reg) p, options(nomem, nostack, preserves_flags));
    }
    // SAFETY: r13 points at an element of PERCPU (a static), properly
    // aligned, for the kernel's lifetime; it is only accessed through
    // atomics and the immutable `index`.
    unsafe { &*(p as *const PerCpu) }
}

/// Reads the RTAS `start-cpu` token from `/rtas` and the hardware ids of
/// the CPUs from `/cpus`: each child whose `device_type` is `cpu` is a
/// core listing its threads' ids in `ibm,ppc-interrupt-server#s` (QEMU
/// `-smp N,threads=T`), or one CPU whose id is its `reg`. At boot, with
/// the client interface.
pub fn read_boot_info(rtas: Option<super::of::Phandle>) {
    if let Some(t) = rtas.and_then(|r| super::of::getprop_u32(r, b"start-cpu\0")) {
        RTAS_START_CPU.store(t, Ordering::Relaxed);
    }
    let Some(cpus) = super::of::finddevice(b"/cpus\0") else {
        return;
    };
    let mut ids = [0u32; MAX_CPUS];
    let mut n = 0;
    let mut node = super::of::child(cpus);
    while let Some(ph) = node {
        let mut ty = [0u8; 4];
        let is_cpu = super::of::getprop(ph, b"device_type\0", &mut ty).is_some_and(|l| l >= 3)
            && &ty[..3] == b"cpu";
        // A core's node lists each of its threads' ids; `reg` is the first.
        let mut threads = [0u8; 4 * MAX_CPUS];
        let listed = super::of::getprop(ph, b"ibm,ppc-interrupt-server#s\0", &mut threads)
            .map_or(0, |len| len.min(threads.len()) / 4);
        let reg = super::of::getprop_u32(ph, b"reg\0");
        let node_ids = threads
            .as_chunks::<4>()
            .0
            .iter()
            .take(listed)
            .map(|c| u32::from_be_bytes(*c))
            .chain(reg.filter(|_| listed == 0));
        for id in node_ids.filter(|_| is_cpu) {
            if n < MAX_CPUS {
                ids[n] = id;
                n += 1;
            }
        }
        node = super::of::peer(ph);
    }
    ids[..n].sort_unstable();
    for (slot, id) in CPU_IDS.iter().zip(&ids[..n]) {
        slot.store(*id, Ordering::Relaxed);
    }
    CPU_ID_COUNT.store(n, Ordering::Relaxed);
}

/// Copies the vector stubs to 0x500, 0x800 and 0x900 (once) and makes the
/// instruction fetch see them. From here on the firmware's client
/// interface, whose code those addresses belong to, is not called again.
fn install_vectors() {
    if VECTORS.swap(true, Ordering::AcqRel) {
        return;
    }
    super::of::disable();
    let stubs = [
        (
            VEC_EXTERNAL,
            core::ptr::addr_of!(ppc64_vec_ext_start) as usize,
            core::ptr::addr_of!(ppc64_vec_ext_end) as usize,
        ),
        (
            VEC_FP_UNAVAILABLE,
            core::ptr::addr_of!(ppc64_vec_fp_start) as usize,
            core::ptr::addr_of!(ppc64_vec_fp_end) as usize,
        ),
        (
            VEC_DECREMENTER,
            core::ptr::addr_of!(ppc64_vec_dec_start) as usize,
            core::ptr::addr_of!(ppc64_vec_dec_end) as usize,
        ),
    ];
    for (vector, start, end) in stubs {
        assert!(end > start && end - start <= VEC_STUB_MAX);
        // SAFETY: `start..end` is one stub in the kernel's text (the
        // symbols boot/ppc64_smp.S defines around it), readable for the
        // kernel's lifetime and never written.
        let code = unsafe { core::slice::from_raw_parts(start as *const u8, end - start) };
        // SAFETY: with the MMU off, `vector..vector + code.len()` is RAM
        // at the real address the CPU jumps to on that interrupt. It held
        // the firmware's code, which is never called again (the client
        // interface was disabled above and RTAS goes through a hypercall);
        // interrupts are still disabled on every CPU (MSR.EE clear), so
        // nothing executes there while it is written. The stub is
        // position independent; text_write does the dcbst/sync/icbi/isync
        // per word.
        let r = unsafe { super::tracer::text_write(vector, code) };
        assert!(r.is_ok(), "ppc64: cannot install the vector at {vector:#x}");
    }
}

/// Writes the decrementer.
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
fn set_dec(ticks: usize) {
    // SAFETY: mtdec only changes the decrementer (and whether its
    // interrupt is pending); no memory is touched.
    unsafe {
        core::arch::asm!("mtspr 22, {}", in(reg) ticks, options(nomem, nostack, preserves_flags))
    }
}

/// Opens the running CPU to interrupts for good: its decrementer is armed
/// (with its period or [`DEC_IDLE`]), XICS presents every priority, and
/// MSR.EE is set; then it is marked ready for `sync_cores`.
fn accept_interrupts() {
    let me = this_cpu();
    if me.ipi_ready.load(Ordering::Relaxed) {
        return;
    }
    let period = me.dec_period.load(Ordering::Relaxed);
    set_dec(if period == 0 { DEC_IDLE } else { period });
    let status = hcall::h_cppr(0xff);
    assert!(status == 0, "ppc64: H_CPPR failed ({status})");
    irq_enable();
    // Ready, then a full barrier and isync: a `sync_cores` that does not
    // see it ready yet ordered its text changes before reading the flag,
    // so this CPU's instruction fetch after the isync sees them.
    me.ipi_ready.store(true, Ordering::SeqCst);
    fence(Ordering::SeqCst);
    isync();
}

/// `isync`: discards prefetched instructions on the running CPU.
#[inline(always)]
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
fn isync() {
    // SAFETY: isync only synchronises the instruction context.
    unsafe { core::arch::asm!("isync", options(nostack, preserves_flags)) }
}

/// Timebase ticks in `seconds`.
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
fn ticks_in(seconds: u64) -> u64 {
    super::tracer::timebase_hz() * seconds
}

/// Runs RTAS `start-cpu(id, ppc64_secondary_start, percpu)`; the RTAS
/// status, or `None` when the call itself failed.
fn rtas_start_cpu(token: u32, id: u32, percpu: &PerCpu) -> Option<i32> {
    // Both addresses lie in the kernel, below 4 GiB: one 32-bit cell each.
    let start = ppc64_secondary_start as *const () as usize as u32;
    let arg = core::ptr::from_ref(percpu) as usize as u32;
    let mut args = hcall::RtasArgs {
        token,
        nargs: 3,
        nret: 1,
        cells: [id, start, arg, 0, 0, 0, 0, 0],
    };
    (hcall::rtas_call(&mut args) == 0).then_some(args.cells[3] as i32)
}

/// Starts up to `max - 1` secondary CPUs; each runs `crate::smp::ap_main`.
/// Returns the CPUs online. Installs the interrupt vectors first (the
/// boot-time firmware calls are all done by now).
pub fn smp_start(max: usize) -> usize {
    install_vectors();
    let token = RTAS_START_CPU.load(Ordering::Relaxed);
    if token == NO_TOKEN || max <= 1 {
        return crate::smp::online();
    }
    // The ids /cpus listed; without any, 0, 1, 2, ... until RTAS says
    // there is no such CPU.
    let listed = CPU_ID_COUNT.load(Ordering::Relaxed);
    let ids = (0..).map_while(|i: usize| match listed {
        0 => u32::try_from(i).ok(),
        n => (i < n).then(|| CPU_IDS[i].load(Ordering::Relaxed)),
    });
    for id in ids {
        let cpu = crate::smp::online();
        if cpu >= max.min(MAX_CPUS) {
            break;
        }
        let pc = &PERCPU[cpu];
        pc.hw_id.store(id, Ordering::Relaxed);
        pc.stack_top
            .store(stack_bounds_of(cpu).1, Ordering::Release);
        match rtas_start_cpu(token, id, pc) {
            Some(RTAS_SUCCESS) => {}
            // Not stopped: the boot CPU itself.
            Some(RTAS_HW_ERROR) => {
                PERCPU[0].hw_id.store(id, Ordering::Relaxed);
                continue;
            }
            // Parameter error (no such CPU) or anything else: stop.
            _ => break,
        }
        let t0 = super::clock_ticks();
        while crate::smp::online() <= cpu {
            if super::clock_ticks() - t0 > ticks_in(WAIT_SECONDS) {
                log::warn!("ppc64: CPU {id} did not come online");
                return crate::smp::online();
            }
            core::hint::spin_loop();
        }
    }
    if crate::smp::online() > 1 {
        accept_interrupts();
    }
    crate::smp::online()
}

/// The stack of CPU `cpu`: lowest byte and one past the highest. CPU 0
/// runs on the boot stack, secondary CPU `i` on `ppc64_ap_stacks` slot
/// `i - 1`.
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
fn stack_bounds_of(cpu: usize) -> (usize, usize) {
    if cpu == 0 {
        return super::boot_stack_bounds();
    }
    let lo = core::ptr::addr_of!(ppc64_ap_stacks) as usize + (cpu - 1) * AP_STACK_SIZE;
    (lo, lo + AP_STACK_SIZE)
}

/// The running CPU's stack (the panic backtrace stays within it; notrace
/// like the walk itself).
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
pub fn stack_bounds() -> (usize, usize) {
    stack_bounds_of(cpu_id())
}

/// A secondary CPU's first Rust code (boot/ppc64_smp.S), on its own stack
/// with r13 = its PerCpu: opens it to interrupts, then joins
/// `crate::smp::ap_main`.
#[unsafe(no_mangle)]
extern "C" fn ppc64_ap_entry(cpu: usize) -> ! {
    accept_interrupts();
    crate::smp::ap_main(cpu)
}

/// Index of the running CPU (0: the boot CPU): one load through r13.
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
pub fn cpu_id() -> usize {
    this_cpu().index
}

/// The running CPU's context: `Irq` inside its interrupt handlers.
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
pub fn context() -> Context {
    crate::platform::note_context_call();
    Context::from_index(this_cpu().context.load(Ordering::Relaxed) as usize)
}

/// Waits a moment for work (a secondary CPU's idle loop).
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
pub fn cpu_idle() {
    core::hint::spin_loop();
}

/// Starts this CPU's periodic timer: `crate::smp::timer_tick` runs `hz`
/// times a second in hardirq context.
pub fn timer_start(hz: u32) {
    install_vectors();
    let period = (super::tracer::timebase_hz() / u64::from(hz.max(1))).clamp(1, DEC_IDLE as u64);
    let me = this_cpu();
    me.dec_period.store(period as usize, Ordering::Relaxed);
    set_dec(period as usize);
    irq_enable();
}

/// Makes every other CPU execute a context-synchronising instruction
/// before returning: `isync` here, and with several CPUs an IPI to each
/// other ready CPU, whose handler executes `isync` and acknowledges
/// (module docs). Callers are serialised (the engine's lock): two CPUs
/// waiting for each other with interrupts disabled would never finish.
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
pub fn sync_cores() {
    isync();
    if crate::smp::online() <= 1 {
        return;
    }
    let me = cpu_id();
    // The text changes (already flushed by text_write) are ordered before
    // the generation and the IPIs (a full barrier).
    let generation = SYNC_GEN.fetch_add(1, Ordering::SeqCst) + 1;
    fence(Ordering::SeqCst);
    let mut pending = 0u32;
    for (i, pc) in PERCPU.iter().enumerate() {
        if i != me && pc.ipi_ready.load(Ordering::SeqCst) {
            pending |= 1 << i;
            hcall::h_ipi(pc.hw_id.load(Ordering::Relaxed), IPI_PRIORITY);
        }
    }
    let t0 = super::clock_ticks();
    while pending != 0 {
        for (i, pc) in PERCPU.iter().enumerate() {
            if pending & (1 << i) != 0 && pc.sync_ack.load(Ordering::Acquire) >= generation {
                pending &= !(1 << i);
            }
        }
        if pending == 0 {
            break;
        }
        if super::clock_ticks() - t0 > ticks_in(SYNC_WAIT_SECONDS) {
            panic!("ppc64: sync_cores: CPUs {pending:#b} did not acknowledge the IPI");
        }
        // Let the CPUs we wait for run (single-threaded TCG).
        hcall::h_confer();
    }
}

/// The common interrupt handler's Rust half (boot/ppc64_smp.S), with
/// `vector` = 0x500, 0x800 or 0x900, MSR.EE clear, on the interrupted stack.
#[unsafe(no_mangle)]
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
extern "C" fn ppc64_irq_handler(vector: usize) {
    let me = this_cpu();
    // Only this CPU writes its context word, and handlers do not nest.
    let context = me.context.load(Ordering::Relaxed);
    me.context.store(Context::Irq as u32, Ordering::Relaxed);
    match vector {
        VEC_DECREMENTER => {
            let period = me.dec_period.load(Ordering::Relaxed);
            set_dec(if period == 0 { DEC_IDLE } else { period });
            if period != 0 {
                crate::smp::timer_tick();
            }
        }
        VEC_EXTERNAL => external_interrupt(me),
        VEC_FP_UNAVAILABLE => fp_unavailable(),
        _ => {}
    }
    me.context.store(context, Ordering::Relaxed);
}

/// Where the tracer's trampolines read this CPU's index and context
/// (`Ftrace::use_cpu_local`): offsets from r13, the low word of `index`
/// (big-endian: its second half) and `context`.
pub fn cpu_local() -> ftrace::ops::CpuLocal {
    let low = if cfg!(target_endian = "big") { 4 } else { 0 };
    ftrace::ops::CpuLocal {
        cpu_offset: core::mem::offset_of!(PerCpu, index) + low,
        context_offset: core::mem::offset_of!(PerCpu, context),
    }
}

/// A floating-point instruction ran with MSR.FP clear: in this kernel only
/// the tracer's callbacks (and what they call) run so, because the
/// trampolines clear MSR.FP instead of saving the floating-point
/// registers. Reported with where it happened; never resumed.
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
fn fp_unavailable() -> ! {
    let srr0: usize;
    // SAFETY: reads SRR0, which still holds the interrupted address: the
    // common entry saved it and nothing since took an interrupt.
    unsafe { core::arch::asm!("mfspr {}, 26", out(reg) srr0, options(nomem, nostack)) };
    panic!(
        "ppc64: floating-point instruction at {srr0:#x} ({}) with MSR.FP clear: a tracing callback (or what it called) used floating point, which callbacks must not (the trampolines save no FP state)",
        crate::backtrace::symbolize(srr0)
    );
}

/// Accepts and ends one external interrupt; an IPI is withdrawn and
/// acknowledged to `sync_cores` after an `isync`.
#[patchable_function_entry(prefix_nops = 0, entry_nops = 0)]
fn external_interrupt(me: &PerCpu) {
    let Some(xirr) = hcall::h_xirr() else {
        return;
    };
    let source = xirr & 0x00ff_ffff;
    if source == XICS_IPI {
        hcall::h_ipi(me.hw_id.load(Ordering::Relaxed), IPI_NONE);
        let generation = SYNC_GEN.load(Ordering::Acquire);
        isync();
        if me.sync_ack.load(Ordering::Relaxed) < generation {
            me.sync_ack.store(generation, Ordering::Release);
        }
    }
    if source != 0 {
        hcall::h_eoi(xirr);
    }
    if source == XICS_IPI {
        // The sender is waiting: let it run (single-threaded TCG).
        hcall::h_confer();
    }
}
