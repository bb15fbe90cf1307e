//! Chooses the linker script for the target arch and passes it the sizes
//! shared with the tools (from `ftrace-abi`), so no number is typed twice.

use std::env;
use std::path::PathBuf;

fn main() {
    // `--cfg nofp`: set by scripts/rustc-wrapper.sh for the i686 build
    // without frame pointers.
    println!("cargo::rustc-check-cfg=cfg(nofp)");
    let scale = env::var_os("CARGO_FEATURE_SCALE").is_some();
    generate_scale(scale);
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
        // The scale build's symbol table is SCALE_SYMTAB_FACTOR times the
        // usual reservation (50,000 more names).
        let value = if name == "FTRACE_SYMTAB_RESERVED" && scale {
            value * SCALE_SYMTAB_FACTOR
        } else {
            value
        };
        println!("cargo:rustc-link-arg-bins=--defsym={name}={value}");
    }
}

/// Generated functions of the `scale` build (Linux's x86_64 kernel has
/// 57,695 sites; with the kernel's own this build has more than 50,000).
const SCALE_FUNCTIONS: usize = 50_000;

/// How much larger the scale build's symbol table reservation is.
const SCALE_SYMTAB_FACTOR: usize = 16;

/// Writes `$OUT_DIR/scale_gen.rs` for `kernel/src/scale.rs`: with the
/// `scale` feature, [`SCALE_FUNCTIONS`] traced functions `f00000`...
/// (each `x ^ i`, distinct so that no two are merged) and the table that
/// keeps them linked; without it, an empty table.
fn generate_scale(scale: bool) {
    use std::fmt::Write as _;
    let n = if scale { SCALE_FUNCTIONS } else { 0 };
    let mut src = String::with_capacity(n * 96 + 256);
    for i in 0..n {
        writeln!(
            src,
            "#[inline(never)] pub fn f{i:05}(x: u64) -> u64 {{ black_box(x) ^ {i} }}"
        )
        .unwrap();
    }
    writeln!(src, "/// Every generated function, in order.").unwrap();
    writeln!(src, "pub static FUNCTIONS: [fn(u64) -> u64; {n}] = [").unwrap();
    for i in 0..n {
        writeln!(src, "    f{i:05},").unwrap();
    }
    writeln!(src, "];").unwrap();
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("scale_gen.rs");
    // Rewritten only when it changes, so that cargo does not rebuild.
    if std::fs::read_to_string(&out).ok().as_deref() != Some(src.as_str()) {
        std::fs::write(&out, src).unwrap();
    }
}
