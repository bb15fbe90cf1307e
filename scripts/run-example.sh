#!/usr/bin/env bash
# Builds examples/hello-kernel exactly as docs/embedding.md says (no script
# of this repository's build is used for it), boots it from a BIOS disk
# image under QEMU with the console on stdout, and exits with:
#   0  the kernel printed "hello-kernel: success" and left QEMU with its
#      success status (isa-debug-exit 0x10 = QEMU status 33)
#   1  failure, panic or QEMU died;  2  bad usage;  3  timeout;
#   4  the build or the prerequisites failed
#
# Usage: scripts/run-example.sh ["kernel command line"] [--debug] [--timeout S]
#                                [--skip-embed-symtab]
#   e.g. scripts/run-example.sh "ftrace=function ftrace_filter=hello_kernel::demo::*"
#   --skip-embed-symtab leaves out step 5, to see the kernel name it.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
EX="$ROOT/examples/hello-kernel"

cmdline="" profile=release embed=1 timeout=${RFTRACE_TIMEOUT:-120} have_cmdline=0
while (($#)); do
    case "$1" in
        --debug) profile=debug ;;
        --skip-embed-symtab) embed=0 ;;
        --timeout) timeout=${2:?--timeout needs a value}; shift ;;
        -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) echo "run-example: unknown option '$1'" >&2; exit 2 ;;
        *) ((have_cmdline)) && { echo "run-example: quote the command line" >&2; exit 2; }
           cmdline=$1; have_cmdline=1 ;;
    esac
    shift
done

"$ROOT/scripts/setup.sh" || exit 4

fail_build() { echo "run-example: build failed ($1)" >&2; exit 4; }

# Step 5's tool, installed the documented way (into target/, not ~/.cargo).
cargo install -q --locked --path "$ROOT/crates/ftrace-tools" --root "$ROOT/target/example-tools" \
    --target-dir "$ROOT/target" >&2 || fail_build "cargo install ftrace-tools"
tools="$ROOT/target/example-tools/bin/ftrace-tools"

# Steps 1-4: the kernel. The per-package rustflags of step 2 are in
# examples/hello-kernel/Cargo.toml; -Zbuild-std builds core and alloc for
# the bare-metal target from the toolchain's rust-src (no prebuilt target
# download needed); compiler-builtins-mem provides memcpy and friends.
cargo_profile=(); [[ $profile == release ]] && cargo_profile=(--release)
(cd "$EX" && cargo build -q "${cargo_profile[@]}" -p hello-kernel \
    --target x86_64-unknown-none \
    -Zbuild-std=core,alloc,compiler_builtins -Zbuild-std-features=compiler-builtins-mem) >&2 \
    || fail_build "kernel"
elf="$EX/target/x86_64-unknown-none/$profile/hello-kernel"

# Step 5: the symbol table, into the linked ELF, before the image copies it.
# Each run works on its own copy, so runs may overlap.
mkdir -p "$ROOT/target/example"
out=$(mktemp -d "$ROOT/target/example/run.XXXXXX")
trap 'rm -rf "$out"' EXIT
cp "$elf" "$out/hello-kernel-$profile.elf"
if ((embed)); then
    "$tools" embed-symtab "$out/hello-kernel-$profile.elf" >&2 || fail_build "embed-symtab"
fi

# The image tool (host; the bootloader crate builds its BIOS stages once).
(cd "$EX" && cargo build -q --release -p hello-kernel-image) >&2 || fail_build "image tool"
img="$out/hello-kernel-$profile.img"
"$EX/target/release/hello-kernel-image" "$out/hello-kernel-$profile.elf" "$img" "$cmdline" >&2 \
    || fail_build "disk image"

log="$out/console.log"
set +e
# Not -nodefaults: the bootloader sets up a VESA framebuffer and needs
# the default VGA device (-display none keeps it invisible).
timeout --foreground -k 5 "$timeout" qemu-system-x86_64 -display none -no-reboot \
    -m 256M -serial stdio -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
    -drive format=raw,file="$img" </dev/null | tee "$log"
status=${PIPESTATUS[0]}
set -e

if ((status == 124 || status == 137)); then
    echo "run-example: TIMEOUT after ${timeout}s: the kernel hung" >&2; exit 3
elif ((status == 33)) && grep -qx 'hello-kernel: success' "$log"; then
    exit 0
else
    echo "run-example: FAILED: QEMU exited with status $status (success is 33 with the marker)" >&2
    exit 1
fi
