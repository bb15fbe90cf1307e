#!/usr/bin/env bash
# RUSTC_WORKSPACE_WRAPPER for kernel builds: cargo runs it for this
# workspace's crates only, never for build-std's core/alloc/compiler_builtins.
#
# It adds the function-entry instrumentation to the crates that make up the
# traced kernel. Decision: core, alloc and compiler_builtins are NOT
# instrumented. The tracer's own hot path (trampolines, dispatch, recording)
# calls into them (atomics, memcpy, fmt), and Linux likewise keeps its
# string/memory primitives notrace; generic core code that is monomorphised in
# the kernel crate is instrumented there like any kernel function.
#
# Usage (set by scripts/build-kernel.sh): RUSTC_WORKSPACE_WRAPPER=<this> cargo build ...
# FTRACE_NOPATCH=1 (the `nopatch` variant): no instrumentation at all, every
# other flag the same, so that the build differs only by the sites.
set -euo pipefail

rustc=$1; shift
crate="" target="" mcount=0
prev=""
for a in "$@"; do
    case "$prev" in
        --crate-name) crate=$a ;;
        --target) target=$a ;;
    esac
    # The i686 mcount and non-dynamic variants are cargo features of the kernel.
    case "$a" in
        'feature="mcount"'|'feature="nodynamic"') mcount=1 ;;
    esac
    prev=$a
done

extra=()
case "$crate" in
    # Traced crates: the kernel itself and the code-region demo crate. The
    # ftrace crate is the tracer and stays uninstrumented (Linux's
    # kernel/trace is built without -pg for the same reason).
    kernel|bootargs|demo_region)
        case "${FTRACE_NOPATCH:-0}:$target" in
            1:*) ;;
            *x86_64-target.json|*i686-target.json|*i686-nofp-target.json)
                if ((mcount)); then
                    # `call mcount` after the frame-pointer prologue; sites are
                    # found after linking by `ftrace-tools mcount-sites`.
                    extra+=(-Zinstrument-mcount)
                else
                    # 5 bytes at entry: room for `call rel32` (fentry style).
                    extra+=(-Zpatchable-function-entry=5)
                fi
                ;;
            *ppc64-target.json)
                # One nop per function, patched to `b <stub>`.
                extra+=(-Zpatchable-function-entry=1)
                ;;
        esac
        # The kernel learns that it has no frame pointers (the i686 `nofp`
        # variant: its target lacks `"frame-pointer": "always"`) from this cfg:
        # target features do not say it, and %ebp is then an ordinary
        # register, so the panic backtrace must not walk it
        # (kernel/src/backtrace.rs; build.rs declares the cfg).
        if [[ $crate == kernel && $target == *i686-nofp-target.json ]]; then
            extra+=(--cfg nofp)
        fi
        if ((${#extra[@]})) || [[ ${FTRACE_NOPATCH:-0} == 1 ]]; then
            # Identical functions must not be merged: an instrumented function
            # could become an alias of another and lose its own site.
            extra+=(-Zmerge-functions=disabled)
        fi
        ;;
esac
exec "$rustc" "$@" "${extra[@]}"
