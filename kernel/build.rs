//! Chooses the linker script for the target arch and passes it the sizes
//! shared with the tools (from `ftrace-abi`), so no number is typed twice.

use std::env;
use std::path::PathBuf;

fn main() {
    // `--cfg nofp`: set by scripts/rustc-wrapper.sh for the i686 build
    // without frame pointers.
    println!("cargo::rustc-check-cfg=cfg(nofp)");
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os != "none" {
        // Not a kernel target (e.g. `cargo check` on the host): nothing to link.
        return;
    }
    let script = match arch.as_str() {
        "x86_64" => "x86_64.ld",
        "x86" => "i686.ld",
        "powerpc64" => "ppc64.ld",
        other => panic!("kernel: unsupported target arch {other}"),
    };
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap()).join("..");
    let ld = root.join("linker").join(script);
    println!("cargo:rerun-if-changed={}", ld.display());
    for f in ["x86_64.S", "i686.S", "ppc64.S"] {
        println!(
            "cargo:rerun-if-changed={}",
            root.join("boot").join(f).display()
        );
    }
    println!("cargo:rustc-link-arg-bins=-T{}", ld.display());
    let defs = [
        ("FTRACE_SYMTAB_RESERVED", ftrace_abi::SYMTAB_RESERVED),
        (
            "FTRACE_MCOUNT_SITES_RESERVED",
            ftrace_abi::MCOUNT_SITES_RESERVED,
        ),
        ("FTRACE_STUB_SIZE", ftrace_abi::PPC64_STUB_SIZE),
    ];
    for (name, value) in defs {
        println!("cargo:rustc-link-arg-bins=--defsym={name}={value}");
    }
}
