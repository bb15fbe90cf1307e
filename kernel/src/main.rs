//! The test kernel: boots on x86_64, i686 and ppc64 under QEMU, reads its
//! command line and exercises the `ftrace` crate on a small demo workload.
//!
//! Everything arch-specific and every `unsafe` block lives in [`arch`] and
//! [`platform`]; the scenarios here and in [`demo`] are safe code.
#![no_std]
#![no_main]
#![feature(patchable_function_entry)]

extern crate alloc;

mod arch;
mod console;
mod demo;
mod options;
mod platform;

use arch::ExitStatus;
use options::Options;

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
    let unexpected = sites.iter().filter(|&&s| !arch::compiler_site_ok(s)).count();
    kprintln!("sites: {} patchable, {} unexpected", sites.len(), unexpected);

    let ok = match opts.test {
        options::Test::None => run_demo(),
        options::Test::Panic => {
            demo::request_panic_in_leaf();
            run_demo()
        }
    };
    finish(ok && unexpected == 0)
}

fn run_demo() -> bool {
    let (outer, fib) = demo::demo_run();
    kprintln!("demo: outer={outer} fib={fib}");
    true
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
