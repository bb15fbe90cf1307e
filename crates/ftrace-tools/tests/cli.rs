//! The `ftrace-tools` binary on real files: exit codes, exact stderr
//! summaries, in-place patching that leaves every other byte alone.

#[path = "../src/testutil.rs"]
mod testutil;

use std::path::PathBuf;
use std::process::{Command, Output};

use ftrace_abi::symtab::SymbolTable;
use object::elf::{EM_386, STB_GLOBAL, STT_NOTYPE};
use testutil::{Fixture, RODATA, TEXT};

const BASE: u64 = 0x10_0000;

/// A scratch file removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str, bytes: &[u8]) -> Self {
        let dir = std::env::temp_dir().join(format!("ftrace-tools-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        Scratch(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ftrace-tools"))
        .args(args)
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// An i386 kernel with one mcount-instrumented function.
fn kernel() -> Vec<u8> {
    let mut code = vec![0x90u8; 0x40];
    // f: push %ebp; mov %esp,%ebp; call mcount (at BASE + 0x30).
    let rel = (0x30i32 - (0x3 + 5)).to_le_bytes();
    code[..8].copy_from_slice(&[0x55, 0x89, 0xe5, 0xe8, rel[0], rel[1], rel[2], rel[3]]);
    code[0x30] = 0xc3;
    let mut f = Fixture::new(false, false, EM_386);
    let text = f.section(".text", BASE, TEXT, code);
    f.section(
        ftrace_abi::MCOUNT_SITES_SECTION,
        BASE + 0x100,
        RODATA,
        vec![0; 16],
    );
    f.section(
        ftrace_abi::SYMTAB_SECTION,
        BASE + 0x200,
        RODATA,
        vec![0; 256],
    );
    f.func(
        "_ZN6kernel4demo9demo_leaf17h0123456789abcdefE",
        text,
        BASE,
        0x30,
    )
    .symbol("mcount", Some(text), BASE + 0x30, 0, STT_NOTYPE, STB_GLOBAL);
    f.build()
}

#[test]
fn embed_symtab_and_mcount_sites_in_place() {
    let original = kernel();
    let file = Scratch::new("ok.elf", &original);
    let path = file.0.to_str().unwrap();

    let o = run(&["mcount-sites", path]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stderr(&o),
        format!("recorded 1 mcount sites (8 bytes of 16) into {path}\n")
    );

    let o = run(&["embed-symtab", path]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stderr(&o),
        format!("embedded 2 symbols (101 bytes of 256) into {path}\n")
    );

    let patched = std::fs::read(path).unwrap();
    assert_eq!(patched.len(), original.len());
    let elf = object::File::parse(&*patched).unwrap();
    use object::{Object, ObjectSection};
    let sites = elf
        .section_by_name(ftrace_abi::MCOUNT_SITES_SECTION)
        .unwrap();
    let symtab = elf.section_by_name(ftrace_abi::SYMTAB_SECTION).unwrap();
    assert_eq!(&sites.data().unwrap()[..8], &[1, 0, 0, 0, 3, 0, 0x10, 0]);
    let table = SymbolTable::parse(symtab.data().unwrap()).unwrap();
    let names: Vec<_> = table.iter().map(|s| (s.addr, s.size, s.name)).collect();
    assert_eq!(
        names,
        [
            (BASE, 0x30, "kernel::demo::demo_leaf"),
            (BASE + 0x30, 0x10, "mcount")
        ]
    );

    // Only the two sections changed.
    let ranges = [sites.file_range().unwrap(), symtab.file_range().unwrap()];
    for (i, (a, b)) in original.iter().zip(&patched).enumerate() {
        let inside = ranges
            .iter()
            .any(|&(o, s)| (o..o + s).contains(&(i as u64)));
        assert!(
            inside || a == b,
            "byte {i} changed outside the patched sections"
        );
    }

    let o = run(&["symbols", path]);
    assert!(o.status.success());
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "2 symbols, 101 bytes, little-endian\n\
         00100000       30 kernel::demo::demo_leaf\n\
         00100030       10 mcount\n"
    );
}

#[test]
fn errors_name_the_file_and_exit_1() {
    let file = Scratch::new("empty.elf", &[]);
    let path = file.0.to_str().unwrap();
    let o = run(&["embed-symtab", path]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!(
            "ftrace-tools: error: {path}: not an ELF file (no ELF magic; empty or wrong file?)\n"
        )
    );

    let file = Scratch::new("nomcount.elf", &kernel());
    let path = file.0.to_str().unwrap();
    let o = run(&["mcount-sites", path, "--symbol", "__fentry__"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!("ftrace-tools: error: {path}: symbol `__fentry__` is missing or undefined\n")
    );

    let o = run(&["symbols", "/nonexistent/kernel"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).starts_with("ftrace-tools: error: /nonexistent/kernel: "));
}

#[test]
fn bad_usage_exits_2() {
    for args in [
        &[][..],
        &["frobnicate"],
        &["embed-symtab"],
        &["sites", "a", "b"],
    ] {
        let o = run(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(stderr(&o).contains("usage:"));
    }
    assert!(run(&["--help"]).status.success());
}
