//! `hello-kernel-image <kernel ELF> <disk image> [command line]`: wraps the
//! kernel into a BIOS-bootable disk image with the `bootloader` crate, the
//! command line as its ramdisk (the bootloader has no command line of its
//! own; the kernel reads the ramdisk's bytes).
//!
//! Run it after `ftrace-tools embed-symtab` (docs/embedding.md, step 5):
//! the image holds a copy of the ELF, and the tool patches the ELF.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (kernel, image, cmdline) = match args.as_slice() {
        [k, i] => (k, i, ""),
        [k, i, c] => (k, i, c.as_str()),
        _ => {
            eprintln!("usage: hello-kernel-image <kernel ELF> <disk image> [command line]");
            return ExitCode::from(2);
        }
    };
    let image = PathBuf::from(image);
    let ramdisk = image.with_extension("cmdline");
    // A newline so the ramdisk is never empty; the kernel strips it.
    if let Err(e) = std::fs::write(&ramdisk, format!("{cmdline}\n")) {
        eprintln!("hello-kernel-image: {}: {e}", ramdisk.display());
        return ExitCode::FAILURE;
    }
    // Quiet: the console is the kernel's (its output is compared exactly).
    let mut config = bootloader::BootConfig::default();
    config.serial_logging = false;
    config.frame_buffer_logging = false;
    let made = bootloader::BiosBoot::new(kernel.as_ref())
        .set_ramdisk(&ramdisk)
        .set_boot_config(&config)
        .create_disk_image(&image);
    match made {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hello-kernel-image: {e:#}");
            ExitCode::FAILURE
        }
    }
}
