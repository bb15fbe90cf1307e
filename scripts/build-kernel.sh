#!/usr/bin/env bash
# Builds the test kernel for one arch and runs the post-link passes.
# Prints the path of the finished ELF on stdout (everything else on stderr).
#
# Usage: scripts/build-kernel.sh <x86_64|i686|ppc64> [--debug] [--variant V]
#   variants (i686 only besides the default):
#     fentry     5-byte patchable entry before the prologue (default)
#     mcount     `call mcount` after `push %ebp; mov %esp,%ebp`, sites found after linking
#     nodynamic  mcount calls left in place; mcount checks a function pointer
#     nofp       fentry without frame pointers (targets/i686-nofp-target.json):
#                the fentry site needs no frame, unlike mcount
#   variant of every arch:
#     scale      50,000 generated traced functions (kernel/src/scale.rs), for
#                the benchmarks at Linux's scale (scripts/bench.sh --scale)
#   variant of every arch:
#     nopatch    the same kernel compiled without patchable entries (no
#                sites): what a traced function costs with its site off,
#                and the image size, against a kernel without any
#                (scripts/bench.sh)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)

arch=${1:?usage: build-kernel.sh <x86_64|i686|ppc64> [--debug] [--variant V]}
shift
profile=release variant=fentry
while (($#)); do
    case "$1" in
        --debug) profile=debug ;;
        --variant) variant=${2:?--variant needs a value}; shift ;;
        *) echo "build-kernel: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
case "$arch" in x86_64|i686|ppc64) ;; *) echo "build-kernel: unknown arch '$arch'" >&2; exit 2 ;; esac
case "$variant" in
    fentry) features=() ;;
    mcount|nodynamic)
        [[ $arch == i686 ]] || { echo "build-kernel: variant $variant exists only on i686" >&2; exit 2; }
        features=(--features "$variant") ;;
    scale)
        features=(--features scale) ;;
    nofp)
        [[ $arch == i686 ]] || { echo "build-kernel: variant $variant exists only on i686" >&2; exit 2; }
        features=() ;;
    nopatch) features=() ;;
    *) echo "build-kernel: unknown variant '$variant'" >&2; exit 2 ;;
esac
target_json="$ROOT/$arch-target.json"
[[ $variant == nofp ]] && target_json="$ROOT/targets/$arch-nofp-target.json"

cd "$ROOT"
cargo_profile=()
[[ $profile == release ]] && cargo_profile=(--release)

# Host tool first (plain host build; no build-std).
cargo build -q --release -p ftrace-tools >&2
tools="$ROOT/target/release/ftrace-tools"

# One target directory per variant: cargo does not put the feature hash in
# the name of a binary's output, so switching features back and forth in one
# directory could hand back a stale kernel built for another variant.
target_dir="$ROOT/target"
[[ $variant != fentry ]] && target_dir="$ROOT/target/variant-$variant"

FTRACE_NOPATCH=$([[ $variant == nopatch ]] && echo 1 || echo 0) \
RUSTC_WORKSPACE_WRAPPER="$ROOT/scripts/rustc-wrapper.sh" \
cargo build -q "${cargo_profile[@]}" -p kernel --bin kernel \
    --target-dir "$target_dir" \
    --target "$target_json" \
    -Zbuild-std=core,alloc,compiler_builtins \
    -Zbuild-std-features=compiler-builtins-mem \
    "${features[@]}" >&2

built="$target_dir/$(basename "$target_json" .json)/$profile/kernel"
out="$ROOT/target/kernel-$arch-$variant-$profile.elf"
cp "$built" "$out"
if [[ $variant == mcount || $variant == nodynamic ]]; then
    "$tools" mcount-sites "$out" >&2
fi
"$tools" embed-symtab "$out" >&2
echo "$out"
