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
mod bench;
mod console;
mod demo;
mod options;
mod platform;
mod tracing;

use arch::ExitStatus;
use options::Options;

/// `test=` scenarios every arch runs (arch backends add their own through
/// `arch::scenario`).
const SCENARIOS: &[&str] = &[
    "panic", "toggle", "redirect", "corrupt", "region", "direct", "bench",
];

/// Entry from the arch boot code, with the command line as the boot protocol
/// handed it over.
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
    let mut ok = tracing::init(corrupt) && (unexpected == 0 || corrupt);

    let tracer = match opts.tracer {
        None => None,
        Some("function") => Some("function"),
        Some(other) => {
            log::warn!("ftrace: unknown tracer '{other}' (available: function); not tracing");
            None
        }
    };

    ok &= match (opts.test, tracer) {
        (Some("panic"), _) => {
            demo::request_panic_in_leaf();
            run_demo()
        }
        (Some("toggle"), _) => tracing::run_toggle(opts.filter, opts.notrace),
        (Some("redirect"), _) => tracing::run_redirect(),
        (Some("region"), _) => tracing::run_region(),
        (Some("direct"), _) => tracing::run_direct(),
        (Some("bench"), _) => bench::run_bench(),
        (Some(name), _) if !SCENARIOS.contains(&name) => match arch::scenario(name) {
            Some(r) => r,
            None => {
                log::warn!("cmdline: unknown test '{name}' ignored");
                run(tracer, &opts)
            }
        },
        _ => run(tracer, &opts),
    };
    finish(ok)
}

/// The default run: the demo, traced when `ftrace=` asked for it.
fn run(tracer: Option<&str>, opts: &Options) -> bool {
    match tracer {
        Some(_) => tracing::run_function_tracer(opts.filter, opts.notrace),
        None => run_demo(),
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

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    console::panic_print(info);
    arch::exit(ExitStatus::Failure)
}
