//! i686 backend: Multiboot1 boot (boot/i686.S), COM1 console, isa-debug-exit.

#[path = "common.rs"]
mod common;

#[expect(unused_imports, reason = "used by the tracer platform in the next step")]
pub use common::clock_ticks;
pub use common::{console_write, exit};

core::arch::global_asm!(include_str!("../../../../boot/i686.S"), options(att_syntax));

/// Printed at boot.
pub const NAME: &str = "i686";

/// What rustc emits at every `-Zpatchable-function-entry=5` site on i686:
/// three nops (`xchg %ax,%ax; xchg %ax,%ax; nop`), rewritten to one 5-byte
/// nop at boot before anything could be interrupted between them.
pub const COMPILER_NOP: [u8; 5] = [0x66, 0x90, 0x66, 0x90, 0x90];

/// Value in %eax from a Multiboot1 loader.
const MULTIBOOT_LOADER_MAGIC: u32 = 0x2bad_b002;
/// Multiboot info flag: `cmdline` is valid.
const MULTIBOOT_INFO_CMDLINE: u32 = 1 << 2;
const CMDLINE_MAX: usize = 64 * 1024;

/// Does the site at `addr` hold the compiler's entry nops?
pub fn compiler_site_ok(addr: usize) -> bool {
    // SAFETY: site addresses come from the linker's table and point into
    // the kernel's mapped text.
    unsafe { common::read_bytes::<5>(addr) == COMPILER_NOP }
}

/// Called from boot/i686.S with the loader's magic and multiboot info.
#[unsafe(no_mangle)]
extern "C" fn i686_entry(magic: u32, info: u32) -> ! {
    common::serial_init();
    let info = info as usize;
    let mut line: &'static [u8] = &[];
    if magic == MULTIBOOT_LOADER_MAGIC {
        // SAFETY: a Multiboot1 loader passes a valid info structure: u32
        // flags at 0, u32 cmdline address at 16 (valid when flag bit 2 set).
        let (flags, cmdline) = unsafe {
            (
                core::ptr::read_volatile(info as *const u32),
                core::ptr::read_volatile((info + 16) as *const u32),
            )
        };
        if flags & MULTIBOOT_INFO_CMDLINE != 0 && cmdline != 0 {
            // SAFETY: the loader placed a NUL-terminated string there that
            // nothing reuses.
            line = unsafe { common::c_string(cmdline as usize, CMDLINE_MAX) };
        }
    }
    crate::kmain(skip_kernel_path(line))
}

/// QEMU's Multiboot loader puts the kernel's path first: drop it and the
/// single space QEMU adds after it, keeping the user's line byte-exact.
fn skip_kernel_path(line: &'static [u8]) -> &'static [u8] {
    match line.iter().position(|&b| b == b' ') {
        Some(i) => &line[i + 1..],
        None => &[],
    }
}
