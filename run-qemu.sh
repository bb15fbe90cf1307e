#!/usr/bin/env bash
# Builds the test kernel for one arch, boots it in QEMU with the console on
# stdout, and exits 0 only when the kernel reported success.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")" && pwd)

usage() {
    cat <<'EOT'
Usage: ./run-qemu.sh <x86_64|i686|ppc64> ["kernel command line"] [options]

Builds the kernel (release by default), boots it under QEMU (TCG)
with the console on stdout and exits with:
  0   the kernel printed "rftrace: success" and left QEMU with its success
      status (x86: isa-debug-exit 0x10 = QEMU status 33; ppc64: RTAS power-off)
  1   the kernel reported failure or panicked (or QEMU died, e.g. triple fault)
  2   bad usage
  3   timeout: the kernel hung
  4   the build failed, or QEMU / toolchain components are missing
  5   (--report) the boot succeeded but ftrace-report could not rebuild
      every trace from its dump

Options:
  --debug            build without optimisations
  --variant V        build variant (scale: x86_64 and ppc64; the others i686):
                       fentry     5-byte patchable nop at function entry (default)
                       mcount     `call mcount` after the frame-pointer prologue,
                                  sites found after linking (Linux's recordmcount)
                       nodynamic  mcount calls stay; mcount checks a function pointer
                       nofp       fentry without frame pointers (the fentry site
                                  needs no frame; mcount does)
                       scale      50,000 generated traced functions, for
                                  `test=bench` at Linux's scale (x86_64, ppc64)
  --timeout SECONDS  kill QEMU after this long (default 60, or $RFTRACE_TIMEOUT;
                     none for an interactive ftrace_shell)
  --smp N            boot N CPUs (default 1); the kernel starts the
                     secondary ones itself (boot line `cpus: N online`).
                     QEMU runs them in parallel host threads
                     (-accel tcg,thread=multi), except with --icount
  --tcg-single       run all CPUs in one host thread, round-robin
                     (-accel tcg,thread=single)
  --icount           tie guest time to instructions (-icount shift=0): one
                     nanosecond of guest time per instruction, for benchmarks
  --kernel PATH      boot this ELF instead of building one
  --print-command    print the QEMU command instead of running it
  --report DIR       after the boot, save the console log as DIR/console.log
                     and run ftrace-report on it, writing every output into
                     DIR (Linux's text, trace-cmd .dat files, Perfetto JSON,
                     flame graph) and checking that the text rebuilt from
                     the dump is the kernel's; boot with trace_dump=binary
  -h, --help         this text

Standard input goes to the guest's serial console (x86 COM1, ppc64 hypervisor
console) when it is not a terminal, so a script can drive `ftrace_shell`:
  printf 'echo function > current_tracer\nrun demo\ncat trace\nexit\n' |
      ./run-qemu.sh x86_64 "ftrace_shell ftrace_filter=demo_*"
With `ftrace_shell` the end of that input reaches the guest as a newline and
Ctrl-D, which ends the shell like `exit`. From a terminal, the terminal is
the console only with `ftrace_shell` (interactive use; no timeout unless
--timeout is given); otherwise the guest gets no input. The shell echoes what
it reads, so the output is a transcript.

Kernel command line (Linux's option names where Linux has them):
  ftrace=function             start the function tracer at boot
  ftrace_filter=PATTERNS      trace only matching functions (demo_*,!demo_fib)
  ftrace_notrace=PATTERNS     never trace matching functions
  test=NAME                   run a test scenario (panic, ...)
  ftrace_shell                after boot, a shell on the console over the
                              tracefs files (echo > FILE, cat FILE, ls, run,
                              help, exit)

Missing QEMU or rustup components are installed when possible (root with
apt), otherwise the exact commands to run are printed.
EOT
}

arch="" cmdline="" have_cmdline=0 build_args=() timeout=${RFTRACE_TIMEOUT:-}
icount=0 kernel="" print_only=0 smp=1 report_dir="" tcg_single=0
while (($#)); do
    case "$1" in
        -h|--help) usage; exit 0 ;;
        --debug) build_args+=(--debug) ;;
        --variant) build_args+=(--variant "${2:?--variant needs a value}"); shift ;;
        --timeout) timeout=${2:?--timeout needs a value}; shift ;;
        --icount) icount=1 ;;
        --smp) smp=${2:?--smp needs a number}; shift ;;
        --tcg-single) tcg_single=1 ;;
        --kernel) kernel=${2:?--kernel needs a path}; shift ;;
        --print-command) print_only=1 ;;
        --report) report_dir=${2:?--report needs a directory}; shift ;;
        -*) echo "run-qemu: unknown option '$1' (see --help)" >&2; exit 2 ;;
        *)
            if [[ -z $arch ]]; then arch=$1
            elif ((!have_cmdline)); then cmdline=$1; have_cmdline=1
            else echo "run-qemu: unexpected argument '$1' (quote the command line)" >&2; exit 2
            fi ;;
    esac
    shift
done
case "$arch" in
    x86_64|i686|ppc64) ;;
    "") usage >&2; exit 2 ;;
    *) echo "run-qemu: unknown arch '$arch' (x86_64, i686 or ppc64)" >&2; exit 2 ;;
esac
[[ -z $timeout || $timeout =~ ^[0-9]+$ ]] || { echo "run-qemu: --timeout needs whole seconds" >&2; exit 2; }
[[ $smp =~ ^[1-8]$ ]] || { echo "run-qemu: --smp needs a number of CPUs from 1 to 8" >&2; exit 2; }

# Where the guest's console input comes from (see --help).
shell=0
[[ " $cmdline " == *" ftrace_shell "* ]] && shell=1
if [[ -t 0 ]]; then
    if ((shell)); then input=terminal; else input=none; fi
elif ((shell)); then input=script
else input=stdin
fi
# An interactive session has no default time limit.
[[ -z $timeout ]] && { if [[ $input == terminal ]]; then timeout=0; else timeout=60; fi; }

"$ROOT/scripts/setup.sh" || exit 4

if [[ -z $kernel ]]; then
    kernel=$("$ROOT/scripts/build-kernel.sh" "$arch" "${build_args[@]}") || {
        echo "run-qemu: build failed" >&2; exit 4; }
fi

qemu=()
case "$arch" in
    x86_64|i686)
        bin=qemu-system-x86_64; [[ $arch == i686 ]] && bin=qemu-system-i386
        # -nodefaults: only the devices listed here. The sercon-port item
        # keeps SeaBIOS off the serial port, so stdout is the kernel's alone.
        qemu=("$bin" -display none -nodefaults -no-reboot -m 128M
              -serial stdio
              -fw_cfg name=etc/sercon-port,string=0
              -device isa-debug-exit,iobase=0xf4,iosize=0x04
              -kernel "$kernel" -append "$cmdline")
        ;;
    ppc64)
        # x-vof=on: QEMU's minimal firmware (fast boot, client interface for
        # the command line and RTAS). ic-mode=xics: the kernel's IPIs use the
        # XICS hypercalls (H_CPPR, H_IPI, H_XIRR, H_EOI); the default "dual"
        # also starts in XICS mode until a guest negotiates XIVE, which this
        # one never does, but pinning it keeps that from changing under us.
        # The cap-* settings silence TCG warnings.
        # panic=exit-failure: ibm,os-term (the kernel's failure exit) exits 1.
        qemu=(qemu-system-ppc64
              -M pseries,x-vof=on,ic-mode=xics,usb=off,cap-cfpc=broken,cap-sbbc=broken,cap-ibs=broken,cap-ccf-assist=off
              -m 256M -nodefaults -display none -no-reboot
              -action panic=exit-failure
              -chardev stdio,id=con -device spapr-vty,chardev=con
              -kernel "$kernel" -append "$cmdline")
        ;;
esac
((icount)) && qemu+=(-icount shift=0)
((smp > 1)) && qemu+=(-smp "$smp")
# Multi-threaded TCG (QEMU's default for x86 guests on x86 hosts), said
# explicitly; -icount implies one thread.
if ((tcg_single)); then
    qemu+=(-accel tcg,thread=single)
elif ((smp > 1 && !icount)); then
    qemu+=(-accel tcg,thread=multi)
fi

if ((print_only)); then
    printf '%q ' "${qemu[@]}"; echo
    exit 0
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
filter_stderr() { grep -v 'fw_cfg item names should be prefixed' >&2; }
case "$input" in
    # A terminal that is not for the guest: QEMU's stdio chardev must not
    # steal it (raw mode).
    none) timeout --foreground -k 5 "$timeout" "${qemu[@]}" </dev/null 2> >(filter_stderr) | tee "$log" ;;
    terminal|stdin) timeout --foreground -k 5 "$timeout" "${qemu[@]}" 2> >(filter_stderr) | tee "$log" ;;
    # The script, then a newline and Ctrl-D: the shell ends at the end of
    # its input. A process substitution: nothing waits for it, so an input
    # that never closes cannot keep the runner alive after QEMU exits.
    script) timeout --foreground -k 5 "$timeout" "${qemu[@]}" < <(cat; printf '\n\004') 2> >(filter_stderr) | tee "$log" ;;
esac
status=${PIPESTATUS[0]}
set -e

marker=0
grep -qx 'rftrace: success' "$log" && marker=1
case "$arch" in x86_64|i686) ok_status=33 ;; ppc64) ok_status=0 ;; esac

# --report: rebuild the traces from the dump in the console log.
if [[ -n $report_dir ]]; then
    report_status=0
    mkdir -p "$report_dir" && cp "$log" "$report_dir/console.log" &&
        (cd "$ROOT" && cargo build -q --release -p ftrace-report >&2) &&
        "$ROOT/target/release/ftrace-report" "$report_dir/console.log" -o "$report_dir" --check ||
        report_status=$?
    if ((report_status != 0 && status == ok_status && marker)); then
        echo "run-qemu: FAILED: ftrace-report could not rebuild the traces (see above)" >&2; exit 5
    fi
fi

if ((status == 124 || status == 137)); then
    echo "run-qemu: TIMEOUT after ${timeout}s: the kernel hung" >&2; exit 3
elif ((status == ok_status && marker)); then
    exit 0
elif ((status == ok_status)); then
    echo "run-qemu: FAILED: QEMU exited $status without the success marker" >&2; exit 1
else
    echo "run-qemu: FAILED: QEMU exited with status $status (success is $ok_status)" >&2; exit 1
fi
