#!/usr/bin/env bash
# Per-call cost benchmarks of the tracer (see BENCHMARKS.md): boots
# `test=bench` under QEMU with -icount shift=0 (guest time = retired
# instructions) on x86_64, i686 and ppc64 and prints the kernel's figures.
# Each arch is also built without patchable entries (build-kernel.sh
# --variant nopatch): the difference of the untraced loops is what a site
# costs while tracing is off, and the two images' sizes are compared.
#
# Usage: scripts/bench.sh [--runs K] [--variants] [--scale] [arch...]
#   --runs K     boot each kernel K times (default 2) and check that every
#                run printed the same figures (exit 1 otherwise)
#   --variants   also the i686 build variants nofp, mcount and nodynamic
#   --scale      also the scale builds of each arch (50,000 generated
#                traced functions: boot, enabling and filtering per site at
#                Linux's scale; about a minute to build each), and the host
#                benchmark of filter matching over 100,000 names
#   arch...      a subset of x86_64 i686 ppc64 (default: all three)
#
# The figures are printed, never judged: the exit status is 0 when every
# boot succeeded and the runs agreed.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)

runs=2 variants=0 scale=0 arches=()
while (($#)); do
    case "$1" in
        --runs) runs=${2:?--runs needs a number}; shift ;;
        --variants) variants=1 ;;
        --scale) scale=1 ;;
        -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        x86_64|i686|ppc64) arches+=("$1") ;;
        *) echo "bench: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "bench: --runs needs a positive number" >&2; exit 2; }
((${#arches[@]})) || arches=(x86_64 i686 ppc64)

# "arch" or "arch:variant" per kernel.
kernels=()
for a in "${arches[@]}"; do
    # Each arch also built without patchable entries: the site-off cost
    # and the image size are the differences.
    kernels+=("$a" "$a:nopatch")
    if ((variants)) && [[ $a == i686 ]]; then
        kernels+=(i686:nofp i686:mcount i686:nodynamic)
    fi
    if ((scale)); then
        kernels+=("$a:scale")
    fi
done

status=0
declare -A untraced=()
for k in "${kernels[@]}"; do
    arch=${k%%:*} variant=fentry
    [[ $k == *:* ]] && variant=${k#*:}
    first=""
    for ((r = 1; r <= runs; r++)); do
        if ! out=$("$ROOT/run-qemu.sh" "$arch" "test=bench" --icount --variant "$variant" 2>&1); then
            echo "bench: $k: run $r FAILED:" >&2
            printf '%s\n' "$out" >&2
            status=1
            continue 2
        fi
        figures=$(printf '%s\n' "$out" | tr -d '\r' | grep '^bench: ')
        untraced[$k]=$(printf '%s\n' "$figures" | sed -n 's/^bench: N=[0-9]* untraced \([0-9]*\) insn\/call$/\1/p')
        if ((r == 1)); then
            first=$figures
            label=$arch
            [[ $arch == i686 || $variant != fentry ]] && label="$arch ($variant)"
            printf '== %s\n%s\n' "$label" "$figures"
        elif [[ $figures != "$first" ]]; then
            echo "bench: $k: run $r differs from run 1:" >&2
            printf '%s\n' "$figures" >&2
            status=1
        fi
    done
    ((runs > 1)) && ((status == 0)) && echo "   (identical in $runs runs)"
done
# Site off: the same call loop in the normal build (the site holds the
# nop) and in the build without patchable entries; the image sizes of both
# (text, data and bss as `size` counts them).
echo "== site off and image size"
for a in "${arches[@]}"; do
    on=${untraced[$a]:-} off=${untraced[$a:nopatch]:-}
    [[ -n $on && -n $off ]] || continue
    with="$ROOT/target/kernel-$a-fentry-release.elf"
    without="$ROOT/target/kernel-$a-nopatch-release.elf"
    read -r t1 d1 b1 _ < <(size "$with" | awk 'NR == 2')
    read -r t0 d0 b0 _ < <(size "$without" | awk 'NR == 2')
    printf 'bench: %s: site off +%d insn/call (untraced %d with the nop, %d built without patchable entries); image text+data %d bytes, %d without (+%d)\n' \
        "$a" $((on - off)) "$on" "$off" $((t1 + d1)) $((t0 + d0)) $((t1 + d1 - t0 - d0))
done
if ((scale)); then
    # Filter matching over 100,000 names on the host (wall time: not
    # deterministic, unlike the kernel figures above).
    echo "== host"
    cargo run -q --release -p ftrace --example filter_bench || status=1
fi
exit $status
