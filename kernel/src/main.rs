//! The test kernel: boots on x86_64, i686 and ppc64 under QEMU, reads its
//! command line and exercises the `ftrace` crate on a small demo workload.
//!
//! Everything arch-specific and every `unsafe` block lives in [`arch`] and
//! [`platform`]; the scenarios here, in [`tracing`], in [`demo`] and (x86)
//! in `abi` are safe code.
#![no_std]
#![no_main]
#![feature(patchable_function_entry)]

extern crate alloc;

#[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
mod abi;
mod arch;
mod backtrace;
mod bench;
mod console;
mod demo;
mod graph_tests;
mod options;
mod platform;
mod scale;
mod shell;
mod smp;
mod stress;
mod tracing;

use arch::ExitStatus;
use options::Options;

/// `test=` scenarios every arch runs (arch backends add their own through
/// `arch::scenario`).
const SCENARIOS: &[&str] = &[
    "panic",
    "toggle",
    "redirect",
    "corrupt",
    "region",
    "direct",
    "bench",
    "smp-stress",
];

/// Entry from the arch boot code, with the command line as the boot protocol
/// handed it over. Never inlined: the panic backtrace ends at its frame.
#[inline(never)]
pub fn kmain(cmdline: &'static [u8]) -> ! {
    console::init();
    platform::heap_init();

    kprintln!("rftrace: booting on {}", arch::NAME);
    console::write_bytes(b"cmdline: ");
    console::write_bytes(cmdline);
    console::write_bytes(b"\n");

    let opts = Options::parse(cmdline);

    let sites = platform::sites();
    let unexpected = sites
        .iter()
        .filter(|&&s| !arch::compiler_site_ok(s))
        .count();
    kprintln!(
        "sites: {} patchable, {} unexpected",
        sites.len(),
        unexpected
    );

    arch::trap_init();
    let corrupt = opts.test == Some("corrupt");
    // Sites are prepared before the other CPUs run anything instrumented
    // (see tracing::init_sites); the summary is printed once they are up.
    let built = tracing::init_sites(corrupt);

    let cpus = smp::init(smp::MAX_CPUS);
    kprintln!("cpus: {cpus} online");

    let mut ok = built && tracing::init(&opts) && (unexpected == 0 || corrupt);

    if opts.shell {
        if let Some(t) = opts.test {
            log::warn!("cmdline: test={t} ignored: ftrace_shell runs instead");
        }
        // The boot options are writes to the same files the shell uses;
        // the tracers they start keep running.
        let _ = tracing::start(&tracing::Setup::from_options(&opts));
        finish(shell::run(ok))
    }

    ok &= match opts.test {
        Some("panic") => {
            demo::request_panic_in_leaf();
            run(&opts)
        }
        Some("toggle") => tracing::run_toggle(opts.filter, opts.notrace),
        Some("redirect") => tracing::run_redirect(),
        Some("region") => tracing::run_region(),
        Some("direct") => tracing::run_direct(),
        Some("bench") => bench::run_bench(),
        Some("smp-stress") => stress::run(opts.stress_ops),
        Some("timer") => smp::timer_scenario(),
        Some(name) if name.starts_with("graph-") || name == "fprobe" => {
            match graph_tests::scenario(name) {
                Some(r) => r,
                None => {
                    log::warn!("cmdline: unknown test '{name}' ignored");
                    run(&opts)
                }
            }
        }
        Some(name) if !SCENARIOS.contains(&name) => match arch::scenario(name) {
            Some(r) => r,
            None => {
                log::warn!("cmdline: unknown test '{name}' ignored");
                run(&opts)
            }
        },
        _ => run(&opts),
    };
    finish(ok)
}

/// The default run: the demo, traced when `ftrace=` asked for it.
fn run(opts: &Options) -> bool {
    if opts.tracing() {
        tracing::run_tracers(opts)
    } else {
        run_demo()
    }
}

fn run_demo() -> bool {
    let (outer, fib) = tracing::workload();
    kprintln!("demo: outer={outer} fib={fib}");
    (outer, fib) == (12, 55)
}

/// Prints the final marker and leaves QEMU.
fn finish(ok: bool) -> ! {
    if ok {
        kprintln!("rftrace: success");
        arch::exit(ExitStatus::Success)
    } else {
        kprintln!("rftrace: FAILURE");
        arch::exit(ExitStatus::Failure)
    }
}

/// Set by the first CPU that panics.
static PANICKED: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    // One report: a second CPU panicking meanwhile waits for the first to
    // leave QEMU instead of interleaving its lines.
    if PANICKED.swap(true, core::sync::atomic::Ordering::AcqRel) {
        loop {
            core::hint::spin_loop();
        }
    }
    console::panic_print(info);
    backtrace::print(&mut console::Raw);
    tracing::dump_on_oops(&mut console::Raw, arch::cpu_id());
    arch::exit(ExitStatus::Failure)
}
