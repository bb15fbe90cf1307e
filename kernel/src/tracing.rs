//! The tracing half of the test kernel: builds the engine over the linked
//! site table, applies the command line (`ftrace=`, `ftrace_filter=`,
//! `ftrace_notrace=`, `trace_options=`, `trace_clock=`, ...) as writes to
//! the tracefs files of `ftrace::control` (the shell's path too) and runs
//! the `test=` scenarios. Safe code only: the unsafe parts are in
//! [`crate::platform`] and [`crate::arch`].

use alloc::string::String;
use alloc::vec::Vec;
use core::hint::black_box;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use ftrace::control::{Control, ControlState, Tracers};
use ftrace::tracer::function;
use ftrace::tracer::graph::{self, GraphOptions};
use ftrace::tracer::output::TraceOptions;
use ftrace::{Arch, Ftrace, FtraceRegs, Ops, OpsFlags, SiteState};
use ftrace_abi::symtab::SymbolTable;

use crate::arch;
use crate::demo;
use crate::kprintln;
use crate::platform::{self, KernelPlatform, PLATFORM};

/// The engine type of this kernel.
pub type Engine = Ftrace<arch::FtraceArch, KernelPlatform>;

static ENGINE: spin::Once<spin::Mutex<Engine>> = spin::Once::new();

/// The tracefs files over this kernel's engine.
pub type Files<'a> = Control<'a, arch::FtraceArch, KernelPlatform>;

/// The tracefs state between commands (locked after [`ENGINE`]).
static CONTROL: spin::Once<spin::Mutex<ControlState>> = spin::Once::new();

/// The symbol table, for printing without the engine's lock (the panic
/// path).
static SYMBOLS: spin::Once<ftrace::Symbols> = spin::Once::new();

/// `ftrace_dump_on_oops` (orig_cpu?) and the output options to use then.
static DUMP_ON_OOPS: spin::Once<(Option<bool>, TraceOptions, GraphOptions)> = spin::Once::new();

/// The panic path's trace dump (`ftrace_dump_on_oops`): prints the
/// buffers, all CPUs' or only `cpu`'s with `=orig_cpu`, to `w` (a writer
/// that takes no lock). Does nothing unless the option was given.
pub fn dump_on_oops(w: &mut dyn core::fmt::Write, cpu: usize) {
    let (Some((Some(orig_cpu), text, gopts)), Some(symbols)) = (DUMP_ON_OOPS.get(), SYMBOLS.get())
    else {
        return;
    };
    function::set_recording(false);
    graph::set_recording(false);
    let _ = writeln!(w, "ftrace: dumping the trace buffers (ftrace_dump_on_oops)");
    let keep = |c: u32| !*orig_cpu || c as usize == cpu;
    if function::written() > 0 {
        let events: Vec<_> = function::events()
            .into_iter()
            .filter(|e| keep(e.cpu))
            .collect();
        let stats: Vec<_> = (0..crate::smp::online()).map(function::cpu_stats).collect();
        let _ = ftrace::tracer::output::write_function_trace(w, &events, &stats, symbols, text);
    }
    if graph::written() > 0 {
        let events: Vec<_> = graph::events()
            .into_iter()
            .filter(|e| keep(e.cpu))
            .collect();
        let _ = graph::write_graph(w, &events, symbols, gopts, crate::smp::online());
    }
}

/// Writes the binary dump (`trace_dump=binary`) of both tracers' buffers,
/// with the clock and the options the tracefs files hold.
pub fn print_binary_dump() {
    use ftrace::tracer::dump::{DumpInfo, Section, write_binary};
    let mut sections = Vec::new();
    if let Some(r) = function::ring() {
        sections.push(Section {
            tag: *b"FUNC",
            ring: r,
        });
    }
    if let Some(r) = graph::ring() {
        sections.push(Section {
            tag: *b"GRPH",
            ring: r,
        });
    }
    let (text, graph_options) = with_control(|c| (c.text_options(), *c.state().graph_options()));
    let info = DumpInfo {
        arch: arch::NAME,
        clock: ftrace::tracer::clock::get().name(),
        symtab: {
            let b = platform::symtab_bytes();
            let used = SymbolTable::parse(b).map_or(0, |t| t.encoded_len());
            &b[..used]
        },
        graph_options: graph_options.bits(),
        trace_options: text.bits(),
    };
    let mut out = String::new();
    let _ = write_binary(&mut out, &info, &sections);
    crate::console::write_bytes(out.as_bytes());
}

/// Every boot site's bytes right after the engine prepared them, read apart
/// from the engine: what "back to the nop" is checked against.
static SNAPSHOT: spin::Once<Vec<(usize, ftrace::Insn)>> = spin::Once::new();

/// Sites whose bytes differ from [`SNAPSHOT`]: independent evidence that
/// disabling restored every site (the engine's own `check_all_nops` judges
/// with its own expected bytes).
///
/// On ppc64 the out-of-line stubs are checked too: a disabled site's stub
/// keeps the trampoline it called last, so it is not compared with the
/// snapshot but decoded by hand, and every stub must be unused or well
/// formed (a stub calling anything but a trampoline, or returning anywhere
/// but behind a site, counts as changed).
pub fn sites_changed() -> usize {
    SNAPSHOT.get().map_or(0, |snap| {
        let sites = snap
            .iter()
            .filter(|(ip, insn)| platform::read_insn(*ip, insn.len()).as_ref() != Ok(insn))
            .count();
        #[cfg(target_arch = "powerpc64")]
        let sites = {
            let ips: Vec<usize> = snap.iter().map(|(ip, _)| *ip).collect();
            sites + ppc64_text::malformed_stubs(&ips)
        };
        sites
    })
}

/// Events the function tracer keeps per CPU.
pub const EVENTS_PER_CPU: usize = 64 * 1024;

/// Events (entries and returns) the function_graph tracer keeps per CPU:
/// room for `test=graph-fib`'s 43,782.
pub const GRAPH_EVENTS_PER_CPU: usize = 48 * 1024;

/// Runs `f` with the engine (after [`init`]).
pub fn with_engine<R>(f: impl FnOnce(&mut Engine) -> R) -> R {
    let engine = ENGINE.get().expect("tracing::init not called");
    f(&mut engine.lock())
}

/// Runs `f` with the tracefs files (after [`init`]).
pub fn with_control<R>(f: impl FnOnce(&mut Files<'_>) -> R) -> R {
    let engine = ENGINE.get().expect("tracing::init not called");
    let state = CONTROL.get().expect("tracing::init not called");
    let mut e = engine.lock();
    let mut st = state.lock();
    f(&mut Control::new(&mut e, &mut st))
}

/// The engine built by [`init_sites`], with its report, until [`init`]
/// prints the report and publishes the engine.
static PREPARED: spin::Mutex<Option<(Engine, ftrace::InitReport)>> = spin::Mutex::new(None);

/// Builds the engine and prepares every site ([`ftrace::Ftrace::init`]).
/// With `corrupt`, one site (`demo_fib`'s) is damaged first.
///
/// Must run before the secondary CPUs start (Linux calls `ftrace_init`
/// before `smp_init` for the same reason): preparing a site rewrites the
/// compiler's sequence in place, which is only safe while no other CPU can
/// be executing it (i686's three nops, `66 90 66 90 90`, may have a CPU
/// between two of them; an mcount build's `call mcount` is executed by
/// every instrumented function, the secondary CPUs' interrupt handlers
/// included). Returns false when the engine could not be built.
pub fn init_sites(corrupt: bool) -> bool {
    let sites = arch::ftrace_sites();
    let symbols = match SymbolTable::parse(platform::symtab_bytes()) {
        Ok(t) => Some(t),
        Err(e) => {
            log::warn!("symbols: {e}; functions will be shown as addresses");
            None
        }
    };
    let mut engine = match Ftrace::new(arch::ftrace_arch(), &PLATFORM, sites, symbols) {
        Ok(e) => e,
        Err(err) => {
            log::error!("{err}");
            return false;
        }
    };
    if corrupt {
        corrupt_site(&engine, demo::demo_fib as *const () as usize);
    }
    if let Some(at) = arch::cpu_local() {
        // SAFETY: the arch backend's offsets hold the CPU's index and its
        // context word on every CPU from boot on (`%gs` is set up before
        // the first traced call, and the entry stubs keep the context
        // word), which is `use_cpu_local`'s contract.
        unsafe { engine.use_cpu_local(at) };
    }
    let t0 = arch::cycles();
    let report = engine.init();
    INIT_TICKS.store(arch::cycles().wrapping_sub(t0), Ordering::Relaxed);
    *PREPARED.lock() = Some((engine, report));
    true
}

/// Counter ticks [`ftrace::Ftrace::init`] took at boot (`test=bench`
/// prints them per site).
static INIT_TICKS: AtomicU64 = AtomicU64::new(0);

/// Counter ticks (`arch::cycles()`) the engine's boot-time site
/// preparation took.
pub fn init_ticks() -> u64 {
    INIT_TICKS.load(Ordering::Relaxed)
}

/// Once the CPUs are up: prints the boot summary of [`init_sites`]
/// (failures, one line each, `ftrace: N sites, M failed` and the symbol
/// self-test), allocates the tracers' per-CPU buffers (`trace_buf_size=`,
/// one per CPU online) and writes the shared options to their files.
pub fn init(o: &crate::options::Options) -> bool {
    let Some((engine, report)) = PREPARED.lock().take() else {
        return false;
    };
    for f in &report.failed {
        kprintln!("{f}");
    }
    kprintln!("{report}");
    let ok = symbol_self_test(&engine);
    let len = engine.arch().nop_insn().len();
    SNAPSHOT.call_once(|| {
        engine
            .site_ips()
            .filter_map(|ip| Some((ip, platform::read_insn(ip, len).ok()?)))
            .collect()
    });
    // Addresses are stored as 32-bit offsets from the lowest traced site.
    let text_base = engine.site_ips().next().map_or(0, |ip| ip & !0xfff);
    match o.buf_size {
        Some(bytes) => {
            function::init_bytes(&PLATFORM, bytes, text_base);
            graph::init_bytes(&PLATFORM, bytes, text_base);
        }
        None => {
            function::init(&PLATFORM, EVENTS_PER_CPU, text_base);
            graph::init(&PLATFORM, GRAPH_EVENTS_PER_CPU, text_base);
        }
    }
    SYMBOLS.call_once(|| *engine.symbols());
    ENGINE.call_once(|| spin::Mutex::new(engine));
    CONTROL.call_once(|| spin::Mutex::new(ControlState::new()));
    // The options every tracer shares are writes to their files, checked
    // by `crate::options` already: `trace_options=` (display, overwrite,
    // funcgraph-irqs), then `trace_clock=`.
    let (text, graph_opts) = with_control(|c| {
        for name in &o.trace_options {
            write_logged(c, "trace_options", name, "trace_options");
        }
        write_logged(c, "trace_clock", o.clock, "trace_clock");
        (c.text_options(), *c.state().graph_options())
    });
    DUMP_ON_OOPS.call_once(|| (o.dump_on_oops, text, graph_opts));
    ok
}

/// Damages the site of the function at `func` with the arch's harmless
/// non-nop bytes, at the place the arch's `init_site` would patch (the
/// engine is built, not initialised: its `init` must find the damage).
fn corrupt_site(engine: &Engine, func: usize) {
    // The site-table entry of `func`: its entry (fentry, ppc64 global entry)
    // or the mcount call a few bytes in.
    let Some(i) = engine.site_ips().position(|s| s >= func && s < func + 64) else {
        log::error!("test=corrupt: no site for demo_fib");
        return;
    };
    // The record the engine will prepare (ppc64: with its stub), prepared
    // once here; preparing a site again is harmless.
    let mut rec = *engine.site(i).record();
    if let Err(e) = engine.arch().init_site(&PLATFORM, &mut rec) {
        log::error!("test=corrupt: site of demo_fib not ready: {e}");
        return;
    }
    platform::corrupt_text(rec.ip(), arch::CORRUPT_SITE);
}

/// `demo_leaf`'s address resolves to its name and the name back to it.
fn symbol_self_test(engine: &Engine) -> bool {
    let addr = demo::demo_leaf as *const () as usize;
    let Some(table) = engine.symbols().table() else {
        kprintln!("symbols: self-test FAILED: no symbol table");
        return false;
    };
    let by_addr = table.lookup(addr as u64);
    let by_name = table.find("kernel::demo::demo_leaf");
    match (by_addr, by_name) {
        (Some((s, off)), Some(back)) if back.addr == addr as u64 => {
            kprintln!(
                "symbols: {:#x} is {}+{:#x}, and back: ok",
                addr,
                s.name,
                off
            );
            s.name == "kernel::demo::demo_leaf" && off == 0
        }
        _ => {
            kprintln!("symbols: self-test FAILED for demo_leaf at {addr:#x}");
            false
        }
    }
}

/// What `ftrace=` and its options ask for (see [`crate::options`]): each
/// becomes a write to the tracefs file of the same meaning.
#[derive(Debug, Clone, Copy, Default)]
pub struct Setup<'a> {
    /// Run the function tracer.
    pub function: bool,
    /// Run the function_graph tracer.
    pub graph: bool,
    /// `ftrace_filter=`: `set_ftrace_filter` (both tracers).
    pub filter: Option<&'a str>,
    /// `ftrace_notrace=`: `set_ftrace_notrace` (both tracers).
    pub notrace: Option<&'a str>,
    /// `ftrace_graph_filter=`: `set_graph_function`.
    pub graph_filter: Option<&'a str>,
    /// `ftrace_graph_notrace=`: `set_graph_notrace`.
    pub graph_notrace: Option<&'a str>,
    /// `ftrace_graph_max_depth=`: `max_graph_depth`.
    pub max_depth: Option<&'a str>,
}

impl<'a> Setup<'a> {
    /// The setup the command line asks for.
    pub fn from_options(o: &'a crate::options::Options) -> Self {
        Setup {
            function: o.function,
            graph: o.graph,
            filter: o.filter,
            notrace: o.notrace,
            graph_filter: o.graph_filter,
            graph_notrace: o.graph_notrace,
            max_depth: o.max_depth,
        }
    }
}

/// Which tracers [`start`] started.
#[derive(Debug, Clone, Copy, Default)]
#[must_use = "stop() stops what start() started"]
pub struct Started(Tracers);

/// Writes `value` to `file`, logging `option: error` when it fails.
fn write_logged(c: &mut Files<'_>, file: &str, value: &str, option: &str) -> bool {
    c.write(file, value, false)
        .map_err(|e| log::warn!("{option}: {e}"))
        .is_ok()
}

/// Applies `setup` through the tracefs files (one implementation for the
/// command line, the shell and the scenarios): empties the trace, writes
/// the filter files, then `current_tracer` (`trace_options=` and
/// `trace_clock=` were written once, by [`init`]). A tracer whose
/// filter cannot be applied is not started (reported): tracing everything
/// is not what a user who asked for a narrow filter wants. A bad notrace
/// list only loses the exclusions.
pub fn start(setup: &Setup<'_>) -> Started {
    with_control(|c| {
        let _ = c.write("trace", "", false);
        let filter_ok = setup
            .filter
            .is_none_or(|f| write_logged(c, "set_ftrace_filter", f, "ftrace_filter"));
        if let Some(n) = setup.notrace {
            write_logged(c, "set_ftrace_notrace", n, "ftrace_notrace");
        }
        if setup.function && !filter_ok {
            log::warn!("ftrace: function tracer not started: ftrace_filter was not applied");
        }
        let mut graph_ok = true;
        if setup.graph {
            if let Some(p) = setup.graph_filter {
                graph_ok = write_logged(c, "set_graph_function", p, "ftrace_graph_filter");
            }
            if let Some(p) = setup.graph_notrace {
                write_logged(c, "set_graph_notrace", p, "ftrace_graph_notrace");
            }
            if let Some(d) = setup.max_depth {
                write_logged(c, "max_graph_depth", d, "ftrace_graph_max_depth");
            }
            if !filter_ok {
                log::warn!(
                    "ftrace: function_graph tracer not started: ftrace_filter was not applied"
                );
            } else if !graph_ok {
                log::warn!(
                    "ftrace: function_graph tracer not started: ftrace_graph_filter was not applied"
                );
            }
        }
        let want = Tracers {
            function: setup.function && filter_ok,
            graph: setup.graph && filter_ok && graph_ok,
        };
        match c.set_tracers(want) {
            Ok(()) => Started(want),
            Err(err) => {
                log::error!("ftrace: cannot start the {want} tracer: {err}");
                Started(Tracers::NOP)
            }
        }
    })
}

/// Stops recording (`tracing_on` 0) without touching any site: the trace
/// can then be printed without the printing showing in it.
pub fn pause() {
    with_control(|c| {
        let _ = c.write("tracing_on", "0", false);
    });
}

/// Writes `nop` to `current_tracer` (which, as in Linux, empties the
/// buffers: print or copy the trace first) and `1` to `tracing_on`;
/// returns how many sites still differ from the nop.
pub fn stop(started: Started) -> usize {
    with_control(|c| {
        if let Err(err) = c.write("current_tracer", "nop", false) {
            log::error!("ftrace: cannot stop the {} tracer: {err}", started.0);
        }
        let _ = c.write("tracing_on", "1", false);
        c.engine().check_all_nops().max(sites_changed())
    })
}

/// Prints the trace of `tracers` as the `trace` file shows it.
fn print_trace(tracers: Tracers) {
    let mut out = String::new();
    with_control(|c| {
        let _ = c.write_trace(tracers, &mut out);
    });
    crate::console::write_bytes(out.as_bytes());
}

/// Prints the function_graph tracer's buffer in Linux's format (with the
/// `trace_options` display options), then its counters (recursions
/// refused, events lost, calls not hooked because the shadow stack was
/// full) and, if one happened, the return mismatch that stopped it.
pub fn print_graph_trace() {
    print_trace(Tracers::FUNCTION_GRAPH);
    let refused = with_engine(|e| e.recursions());
    kprintln!(
        "function_graph: {} recursions refused, {} events lost, {} overruns",
        refused,
        graph::lost(),
        platform::shadow_overruns()
    );
    if let Some(m) = ftrace::fgraph::mismatch() {
        let name = with_engine(|e| e.symbols().resolve(m.func).map(|(n, _)| n));
        let name = name.unwrap_or("?");
        kprintln!(
            "function_graph: hooked return of {name} skipped (frame sp {:#x}, returned at sp {:#x}); graph tracing stopped",
            m.expected_sp,
            m.found_sp
        );
    }
}

/// `ftrace=function`, `ftrace=function_graph` or both: trace the workload,
/// print the traces.
pub fn run_tracers(o: &crate::options::Options) -> bool {
    let started = start(&Setup::from_options(o));
    let (outer, fib) = workload();
    pause();
    kprintln!("demo: outer={outer} fib={fib}");
    if o.function {
        print_function_trace();
    }
    if o.graph {
        print_graph_trace();
    }
    if o.dump_binary {
        print_binary_dump();
    }
    let differ = stop(started);
    differ == 0 && !with_engine(|e| e.is_killed())
}

/// Prints the function tracer's buffer in Linux's format, then the
/// recursion and loss counters.
pub fn print_function_trace() {
    print_trace(Tracers::FUNCTION);
    let refused = with_engine(|e| e.recursions());
    kprintln!(
        "ftrace: {} recursions refused, {} events lost",
        refused,
        function::lost()
    );
}

/// The workload the tracers observe: not inlined, and not a tail call
/// (`black_box` uses the result after the call), so it is the parent of
/// `demo_run` in every trace.
#[inline(never)]
pub fn workload() -> (u64, u64) {
    core::hint::black_box(demo::demo_run())
}

/// `test=toggle`: enable, disable, enable, disable; after each disable every
/// site must hold the canonical nop again.
pub fn run_toggle(filter: Option<&str>, notrace: Option<&str>) -> bool {
    let mut ok = true;
    for round in 1..=2 {
        let started = start(&Setup {
            function: true,
            filter,
            notrace,
            ..Setup::default()
        });
        let (outer, fib) = workload();
        pause();
        let events = function::events().len();
        let differ = stop(started);
        kprintln!(
            "toggle {round}: outer={outer} fib={fib}, {events} events, {differ} sites differ from nop after disable"
        );
        ok &= differ == 0 && (outer, fib) == (12, 55);
    }
    ok
}

/// The replacement `test=redirect` installs for `demo_leaf`.
extern "C" fn redirect_leaf(_ip: usize, _parent_ip: usize, _ops: &Ops, regs: &mut FtraceRegs) {
    regs.ip = demo::demo_leaf_patched as *const () as usize;
}

/// Live-patching style redirect of `demo_leaf`.
static REDIRECT_OPS: Ops = Ops::new(redirect_leaf, OpsFlags::IPMODIFY);

/// `test=redirect`: a registers callback sends `demo_leaf` to
/// `demo_leaf_patched` (`2*x + 2`); the result changes while it is
/// registered and is back to normal after.
pub fn run_redirect() -> bool {
    let ok = with_engine(|e| {
        if let Err(err) = e.set_filter(&REDIRECT_OPS, "kernel::demo::demo_leaf") {
            log::error!("redirect: {err}");
            return false;
        }
        match e.register(&REDIRECT_OPS) {
            Ok(()) => true,
            Err(err) => {
                log::error!("redirect: cannot register: {err}");
                false
            }
        }
    });
    let (outer, fib) = workload();
    kprintln!("redirect on: outer={outer} fib={fib}");
    let differ = with_engine(|e| {
        let _ = e.unregister(&REDIRECT_OPS);
        e.check_all_nops().max(sites_changed())
    });
    let (outer2, fib2) = workload();
    kprintln!("redirect off: outer={outer2} fib={fib2}, {differ} sites differ from nop");
    ok && (outer, fib, outer2, fib2, differ) == (15, 55, 12, 55, 0)
}

/// Terms `test=region` sums (`0² + 1² + 2²`).
const REGION_TERMS: u64 = 3;

/// Calls into the code region; its name matches the scenario's filter
/// `region_*` before the region exists (an unmatched pattern is an error).
/// Not inlined, not a tail call: the parent of `region_sum_squares`.
#[inline(never)]
pub fn region_workload() -> u64 {
    black_box(demo_region::region_sum_squares(black_box(REGION_TERMS)))
}

/// `test=region`: code registered after boot (Linux's module load and
/// unload). The function tracer is registered with filter `region_*` while
/// only `region_workload` matches; adding the `demo_region` crate's region
/// re-applies the filter to its sites, so its functions are traced like the
/// others; removing it turns them back into nops and frees their stubs
/// (ppc64), and later calls leave no events from them.
#[inline(never)]
pub fn run_region() -> bool {
    let ops = function::ops();
    function::reset();
    let selected = with_engine(|e| {
        let n = e.set_filter(ops, "region_*")?;
        e.register(ops).map(|()| n)
    });
    let selected = match selected {
        Ok(n) => n,
        Err(err) => {
            kprintln!("region: cannot start the function tracer: {err}");
            return false;
        }
    };
    kprintln!("region: filter region_* selects {selected} functions");
    let before = region_workload();
    kprintln!("region: before add: sum_squares({REGION_TERMS})={before}");

    let report = match with_engine(|e| e.add_region(arch::code_region())) {
        Ok(r) => r,
        Err(err) => {
            kprintln!("region: cannot add demo_region: {err}");
            return false;
        }
    };
    for f in &report.failed {
        kprintln!("{f}");
    }
    kprintln!(
        "region: added {}, {} sites, {} failed",
        report.name,
        report.total,
        report.failed.len()
    );
    let ips: Vec<usize> = with_engine(|e| {
        (0..e.len())
            .filter(|&i| e.record_region(i) == Some(report.id))
            .map(|i| e.site(i).ip())
            .collect()
    });
    let traced = region_workload();
    kprintln!(
        "region: traced: sum_squares({REGION_TERMS})={traced}, {} stubs in use",
        arch::code_region_stubs_in_use()
    );

    let removed = with_engine(|e| {
        let r = e.remove_region(report.id);
        let nop = e.arch().nop_insn();
        let differ = ips
            .iter()
            .filter(|&&ip| crate::platform::read_insn(ip, nop.len()) != Ok(nop))
            .count();
        (r, differ)
    });
    let (removed, differ) = removed;
    if let Err(err) = &removed {
        kprintln!("region: remove: {err}");
    }
    let stubs = arch::code_region_stubs_in_use();
    kprintln!("region: removed, {differ} sites differ from nop, {stubs} stubs in use");
    let after = region_workload();
    kprintln!("region: after remove: sum_squares({REGION_TERMS})={after}");

    let all_differ = with_engine(|e| {
        if let Err(err) = e.unregister(ops) {
            kprintln!("region: cannot stop the function tracer: {err}");
        }
        e.check_all_nops().max(sites_changed())
    });
    print_function_trace();
    removed.is_ok()
        && report.failed.is_empty()
        && report.total > 0
        && (differ, stubs, all_differ) == (0, 0, 0)
        && [before, traced, after] == [5, 5, 5]
}

/// Calls `test=direct`'s callbacks saw: `[A, B]`.
static DIRECT_CALLS: [AtomicUsize; 2] = [AtomicUsize::new(0), AtomicUsize::new(0)];

/// Counts a call in `DIRECT_CALLS[ops.private()]`.
extern "C" fn direct_count(_ip: usize, _parent_ip: usize, ops: &Ops, _regs: &mut FtraceRegs) {
    DIRECT_CALLS[ops.private()].fetch_add(1, Ordering::Relaxed);
}

/// `test=direct`'s callback A (`demo_leaf`, `demo_outer`).
static DIRECT_A: Ops = Ops::with_private(direct_count, OpsFlags::empty(), 0);
/// `test=direct`'s callback B (`demo_inner`, `demo_outer`).
static DIRECT_B: Ops = Ops::with_private(direct_count, OpsFlags::empty(), 1);

/// `test=direct`'s recursion round: callback R on `demo_leaf` calls
/// `demo_leaf` itself. Entries and entries inside itself (which the
/// recursion guard must make impossible) are counted.
static DIRECT_R: Ops = Ops::new(direct_recurse, OpsFlags::empty());
static R_ENTERED: AtomicUsize = AtomicUsize::new(0);
static R_INSIDE: AtomicBool = AtomicBool::new(false);
static R_NESTED: AtomicUsize = AtomicUsize::new(0);

extern "C" fn direct_recurse(_ip: usize, _parent_ip: usize, _ops: &Ops, _regs: &mut FtraceRegs) {
    R_ENTERED.fetch_add(1, Ordering::Relaxed);
    if R_INSIDE.swap(true, Ordering::Relaxed) {
        R_NESTED.fetch_add(1, Ordering::Relaxed);
        return;
    }
    core::hint::black_box(demo::demo_leaf(core::hint::black_box(1)));
    R_INSIDE.store(false, Ordering::Relaxed);
}

/// One recursion round of `test=direct`: `ops` alone on `demo_leaf`,
/// which is called three times. Returns whether registering and
/// unregistering worked, the site's path meanwhile and the recursions the
/// engine refused.
fn one_recursion_round(ops: &'static Ops) -> (bool, &'static str, usize) {
    let registered = with_engine(|e| {
        e.set_filter(ops, "demo_leaf")
            .and_then(|_| e.register(ops))
            .map_err(|err| log::error!("direct: {err}"))
            .is_ok()
    });
    let path = with_engine(|e| direct_path(e, "demo_leaf").0);
    let before = with_engine(|e| e.recursions());
    for x in 0..3 {
        core::hint::black_box(demo::demo_leaf(core::hint::black_box(x)));
    }
    let refused = with_engine(|e| e.recursions()) - before;
    let unregistered = with_engine(|e| e.unregister(ops))
        .map_err(|err| log::error!("direct: {err}"))
        .is_ok();
    (registered && unregistered, path, refused)
}

/// The recursion round of `test=direct` (module docs of [`DIRECT_R`]):
/// `demo_leaf` called three times with R alone on its site; true when R
/// was entered three times, never inside itself, and the engine refused
/// exactly the three nested calls (none in mcount builds, whose
/// trampolines' busy flag refuses them first).
fn direct_recursion_round() -> bool {
    let (ok, path, refused) = one_recursion_round(&DIRECT_R);
    let (entered, nested) = (
        R_ENTERED.load(Ordering::Relaxed),
        R_NESTED.load(Ordering::Relaxed),
    );
    kprintln!(
        "direct: R on demo_leaf -> {path}, calling demo_leaf from R: entered {entered} times, \
         {nested} times inside itself, {refused} recursions refused"
    );
    // An mcount build's trampolines refuse the nested call first, with
    // their per-CPU busy flag (uncounted), before the guard could.
    let want_refused = if cfg!(any(feature = "mcount", feature = "nodynamic")) {
        0
    } else {
        3
    };
    ok && (entered, nested, refused) == (3, 0, want_refused)
}

/// `test=direct`'s self-guarded round: callback S, with
/// [`OpsFlags::RECURSION`], on `demo_leaf`: entered without the guard, it
/// takes it itself ([`Ops::guard`]) and, under it, calls `demo_leaf`.
/// Entries, entries that got the guard and entries inside itself under it
/// (which the guard must make impossible) are counted.
static DIRECT_S: Ops = Ops::new(direct_self_guarded, OpsFlags::RECURSION);
static S_ENTERED: AtomicUsize = AtomicUsize::new(0);
static S_GUARDED: AtomicUsize = AtomicUsize::new(0);
static S_INSIDE: AtomicBool = AtomicBool::new(false);
static S_NESTED: AtomicUsize = AtomicUsize::new(0);

extern "C" fn direct_self_guarded(_ip: usize, _parent_ip: usize, ops: &Ops, regs: &mut FtraceRegs) {
    S_ENTERED.fetch_add(1, Ordering::Relaxed);
    let Some(_guard) = ops.guard(regs) else {
        return;
    };
    S_GUARDED.fetch_add(1, Ordering::Relaxed);
    if S_INSIDE.swap(true, Ordering::Relaxed) {
        S_NESTED.fetch_add(1, Ordering::Relaxed);
        return;
    }
    core::hint::black_box(demo::demo_leaf(core::hint::black_box(1)));
    S_INSIDE.store(false, Ordering::Relaxed);
}

/// The self-guarded round of `test=direct` ([`DIRECT_S`]): `demo_leaf`
/// called three times with S alone on its site. With a pool trampoline
/// (every build but nodynamic) S is entered six times (three calls and
/// the three nested ones), takes the guard three times, never inside
/// itself, and the engine refuses exactly the three nested calls. The
/// nodynamic build's list dispatcher holds the guard for S, and its
/// `mcount` refuses the nested calls first with the busy flag: three
/// entries, three guarded, none refused.
fn direct_self_guarded_round(pool: bool) -> bool {
    let (ok, path, refused) = one_recursion_round(&DIRECT_S);
    let (entered, guarded, nested) = (
        S_ENTERED.load(Ordering::Relaxed),
        S_GUARDED.load(Ordering::Relaxed),
        S_NESTED.load(Ordering::Relaxed),
    );
    kprintln!(
        "direct: S (RECURSION) on demo_leaf -> {path}, calling demo_leaf under its own guard: \
         entered {entered} times, guarded {guarded} times, {nested} times inside itself, \
         {refused} recursions refused"
    );
    let want = if pool { (6, 3, 0, 3) } else { (3, 3, 0, 0) };
    ok && (entered, guarded, nested, refused) == want
}

/// With A alone on `demo_leaf` (its trampoline, when the build has the
/// pool; the list otherwise): four calls, counting how often the tracer
/// asked the platform for the context meanwhile. Once the kernel has
/// described its per-CPU area (`Ftrace::use_cpu_local`), every path reads
/// the context there itself, so 0: the trampolines' fast path in
/// assembly, the list's guard in line (`HotPlatform`). Without it the
/// guard would ask once per call.
fn direct_fast_round() -> bool {
    let before = DIRECT_CALLS[0].load(Ordering::Relaxed);
    platform::CONTEXT_CALLS.store(0, Ordering::Relaxed);
    platform::COUNT_CONTEXT.store(true, Ordering::Relaxed);
    for x in 0..4 {
        core::hint::black_box(demo::demo_leaf(core::hint::black_box(x)));
    }
    platform::COUNT_CONTEXT.store(false, Ordering::Relaxed);
    let asked = platform::CONTEXT_CALLS.load(Ordering::Relaxed);
    let seen = DIRECT_CALLS[0].load(Ordering::Relaxed) - before;
    kprintln!(
        "direct: 4 calls of demo_leaf: A saw {seen}, the platform was asked for the context {asked} times"
    );
    let described = ftrace::ops::FTRACE_FAST_WORDS.load(Ordering::Relaxed) != 0;
    let want = if described { 0 } else { 4 };
    seen == 4 && asked == want
}

/// The functions `test=direct` reports on, in print order.
const DIRECT_FUNCS: [&str; 3] = ["demo_leaf", "demo_inner", "demo_outer"];

unsafe extern "C" {
    /// The shared list trampolines, as the linker placed them (only their
    /// addresses are taken).
    static ftrace_caller: u8;
    static ftrace_regs_caller: u8;
    #[cfg(target_arch = "x86")]
    static ftrace_mcount_caller: u8;
    #[cfg(target_arch = "x86")]
    static ftrace_mcount_regs_caller: u8;
}

/// The shared list trampolines' entry addresses, from the linker rather
/// than from the engine.
fn shared_trampolines() -> Vec<usize> {
    #[cfg_attr(not(target_arch = "x86"), allow(unused_mut))] // i686 adds two
    let mut v = alloc::vec![
        (&raw const ftrace_caller) as usize,
        (&raw const ftrace_regs_caller) as usize,
    ];
    #[cfg(target_arch = "x86")]
    v.extend([
        (&raw const ftrace_mcount_caller) as usize,
        (&raw const ftrace_mcount_regs_caller) as usize,
    ]);
    v
}

/// Where the site at `ip` calls, decoded from the text itself with no
/// help from the engine: x86 `call rel32` (`e8`); ppc64 `b stub` whose
/// second word is `bl target`. `None` when the site is not such a call
/// (the nop).
fn decoded_call(ip: usize) -> Option<usize> {
    #[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
    {
        let insn = platform::read_insn(ip, 5).ok()?;
        let b = insn.as_bytes();
        (b[0] == 0xe8).then(|| {
            let rel = i32::from_le_bytes([b[1], b[2], b[3], b[4]]);
            (ip + 5).wrapping_add_signed(rel as isize)
        })
    }
    #[cfg(target_arch = "powerpc64")]
    {
        let stub = ppc64_text::branch(ip, false)?;
        ppc64_text::branch(stub + 4, true)
    }
}

/// ppc64 text decoded by hand, for checks that must not trust the engine's
/// own encoder.
#[cfg(target_arch = "powerpc64")]
mod ppc64_text {
    use super::platform;

    /// `mflr r0`, `mtlr r0` and `trap` (`tw 31,0,0`).
    pub const MFLR_R0: u32 = 0x7c08_02a6;
    pub const MTLR_R0: u32 = 0x7c08_03a6;
    pub const TRAP: u32 = 0x7fe0_0008;

    unsafe extern "C" {
        /// The stub area the linker script reserves.
        static __ftrace_stubs_start: u8;
        static __ftrace_stubs_stop: u8;
        /// The per-callback trampolines' entries (8 argument-register, then
        /// 8 full-frame), as linked.
        static ftrace_ops_tramps: [usize; 16];
    }

    /// The big-endian word at `at`.
    pub fn word(at: usize) -> Option<u32> {
        let insn = platform::read_insn(at, 4).ok()?;
        let b = insn.as_bytes();
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// The target of the relative I-form branch at `at` (opcode 18, 24-bit
    /// word displacement, AA clear, LK as `link`); `None` for anything else.
    pub fn branch(at: usize, link: bool) -> Option<usize> {
        let w = word(at)?;
        if w >> 26 != 18 || w & 3 != u32::from(link) {
            return None;
        }
        let disp = (((w & 0x03ff_fffc) << 6) as i32) >> 6;
        Some(at.wrapping_add_signed(disp as isize))
    }

    /// Stubs in the linker's stub area that are neither unused (four
    /// `trap`s) nor `mflr r0; bl <a trampoline>; mtlr r0; b <a site>+4`.
    pub fn malformed_stubs(sites: &[usize]) -> usize {
        let start = (&raw const __ftrace_stubs_start) as usize;
        let stop = (&raw const __ftrace_stubs_stop) as usize;
        // SAFETY: a table of 16 addresses the assembly defines in
        // .rodata; read only.
        let pool = unsafe { core::ptr::read(&raw const ftrace_ops_tramps) };
        let trampolines: alloc::vec::Vec<usize> = super::shared_trampolines()
            .into_iter()
            .chain(pool)
            .collect();
        (start..stop)
            .step_by(16)
            .filter(|&stub| {
                let w = [0, 4, 8, 12].map(|o| word(stub + o));
                let unused = w.iter().all(|&x| x == Some(TRAP));
                let well_formed = w[0] == Some(MFLR_R0)
                    && w[2] == Some(MTLR_R0)
                    && branch(stub + 4, true).is_some_and(|t| trampolines.contains(&t))
                    && branch(stub + 12, false).is_some_and(|x| sites.contains(&x.wrapping_sub(4)));
                !(unused || well_formed)
            })
            .count()
    }
}

/// What the site of `kernel::demo::<func>` calls, as `test=direct` prints
/// it, and the callback whose trampoline it is (`None` for the shared
/// ones). The engine's view is checked against the site's bytes decoded
/// independently ([`decoded_call`]); a disagreement prints `mismatch`.
fn direct_path(e: &Engine, func: &str) -> (&'static str, Option<&'static str>) {
    let Some(i) = (0..e.len()).find(|&i| {
        e.record_name(i)
            .and_then(|n| n.strip_prefix("kernel::demo::"))
            == Some(func)
    }) else {
        return ("no site", None);
    };
    // i686 nodynamic sites always call mcount: nothing to decode.
    if !cfg!(feature = "nodynamic") {
        let ip = e.site(i).record().ip();
        let decoded = decoded_call(ip);
        let agrees = match e.site_state(i) {
            SiteState::Failed => true,
            SiteState::Nop => decoded.is_none(),
            SiteState::Caller | SiteState::RegsCaller => {
                decoded.is_some_and(|t| shared_trampolines().contains(&t))
            }
            SiteState::OpsTrampoline(t) => decoded == Some(t),
        };
        if !agrees {
            log::error!(
                "direct: {func}: engine says {:?}, the text calls {decoded:x?}",
                e.site_state(i)
            );
            return ("mismatch", None);
        }
    }
    match e.site_state(i) {
        SiteState::Failed => ("failed", None),
        SiteState::Nop => ("nop", None),
        SiteState::Caller | SiteState::RegsCaller => ("list", None),
        SiteState::OpsTrampoline(t) => {
            let owner = [(&DIRECT_A, "A"), (&DIRECT_B, "B")]
                .into_iter()
                .find(|(o, _)| e.arch().ops_trampoline(o) == Some(t))
                .map_or("?", |(_, n)| n);
            ("ops trampoline", Some(owner))
        }
    }
}

/// Prints the paths of [`DIRECT_FUNCS`], runs the workload and prints what
/// each callback saw; true when the paths' owners are `owners` and the
/// counts `calls`.
fn direct_round(owners: [Option<&str>; 3], calls: [usize; 2]) -> bool {
    let paths = with_engine(|e| DIRECT_FUNCS.map(|f| direct_path(e, f)));
    kprintln!(
        "direct: {} -> {}, {} -> {}, {} -> {}",
        DIRECT_FUNCS[0],
        paths[0].0,
        DIRECT_FUNCS[1],
        paths[1].0,
        DIRECT_FUNCS[2],
        paths[2].0
    );
    for c in &DIRECT_CALLS {
        c.store(0, Ordering::Relaxed);
    }
    let (outer, fib) = workload();
    let seen = DIRECT_CALLS.each_ref().map(|c| c.load(Ordering::Relaxed));
    kprintln!("direct: A saw {} calls, B saw {} calls", seen[0], seen[1]);
    let owners_ok = paths.iter().zip(owners).all(|(p, o)| p.1 == o);
    if !owners_ok {
        log::error!(
            "direct: trampoline owners {:?}, expected {owners:?}",
            paths.map(|p| p.1)
        );
    }
    owners_ok && seen == calls && (outer, fib) == (12, 55)
}

/// `test=direct`: two counting callbacks, A on `demo_leaf` and `demo_outer`,
/// B on `demo_inner` and `demo_outer`. A site wanted by one of them calls
/// that callback's own trampoline; `demo_outer`, wanted by both, goes
/// through the list dispatcher. When B leaves, `demo_outer` moves to A's
/// trampoline; with A alone there, four calls must not ask the platform
/// for the context (the fast path, [`direct_fast_round`]); a callback that
/// calls its own traced function is refused ([`direct_recursion_round`]);
/// when every callback left, every site is the nop again. A backend
/// without per-callback trampolines (i686 nodynamic) shows `list` instead.
pub fn run_direct() -> bool {
    let pool = with_engine(|e| e.arch().ops_trampoline(&DIRECT_A).is_some());
    let own = |o: [Option<&'static str>; 3]| if pool { o } else { [None; 3] };
    let registered = with_engine(|e| {
        let r = e
            .set_filter(&DIRECT_A, "demo_leaf,demo_outer")
            .and_then(|_| e.set_filter(&DIRECT_B, "demo_inner,demo_outer"))
            .and_then(|_| e.register(&DIRECT_A))
            .and_then(|()| e.register(&DIRECT_B));
        r.map_err(|err| log::error!("direct: {err}")).is_ok()
    });
    let mut ok = registered && direct_round(own([Some("A"), Some("B"), None]), [4, 4]);
    ok &= with_engine(|e| e.unregister(&DIRECT_B))
        .map_err(|err| log::error!("direct: {err}"))
        .is_ok();
    ok &= direct_round(own([Some("A"), None, Some("A")]), [4, 0]);
    ok &= direct_fast_round();
    ok &= with_engine(|e| e.unregister(&DIRECT_A))
        .map_err(|err| log::error!("direct: {err}"))
        .is_ok();
    ok &= direct_recursion_round();
    ok &= direct_self_guarded_round(pool);
    let differ = with_engine(|e| e.check_all_nops().max(sites_changed()));
    kprintln!("direct: {differ} sites differ from nop after unregister");
    ok && differ == 0
}
