#!/usr/bin/env bash
# Where the instructions of one engine call go: boots the x86_64 kernel
# under QEMU (-icount shift=0, gdbstub), stops at the N-th call of a
# function, single-steps it to its return with gdb and prints a histogram
# of retired instructions per function (the kernel's own symbols).
# Single-stepping is slow (about 2,000 instructions per second): profile
# calls of up to a few hundred thousand instructions.
#
# Usage: scripts/profile.sh <symbol-substring> [hit] [cmdline] [top]
#   symbol-substring  picks the function (first match in `nm`), e.g.
#                     '6Ftrace.*8register' for Ftrace::register
#   hit               which call to profile, 1-based (default 1)
#   cmdline           the kernel command line (default "test=bench")
#   top               how many functions to print (default 25)
#
# Example (enabling every site in test=bench is the 4th register call):
#   scripts/profile.sh '6Ftrace.*8register' 4
# PROFILE_ARCH=i686 profiles the i686 kernel instead (default x86_64);
# PROFILE_VARIANT=V a build variant (scripts/build-kernel.sh --variant V).
# PROFILE_PCS=<file> also writes the count of every address executed.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
pattern=${1:?usage: profile.sh <symbol-substring> [hit] [cmdline] [top]}
hit=${2:-1} cmdline=${3:-test=bench} top=${4:-25}
[[ $hit =~ ^[1-9][0-9]*$ ]] || { echo "profile: hit must be a positive number" >&2; exit 2; }
command -v gdb >/dev/null || { echo "profile: needs gdb (apt-get install gdb)" >&2; exit 3; }
"$ROOT/scripts/setup.sh" >&2

arch=${PROFILE_ARCH:-x86_64}
case "$arch" in
    x86_64) qemu=qemu-system-x86_64 gdb_arch=i386:x86-64 sp='$rsp' word='unsigned long' ;;
    i686) qemu=qemu-system-i386 gdb_arch=i386 sp='$esp' word='unsigned int' ;;
    *) echo "profile: PROFILE_ARCH is x86_64 or i686" >&2; exit 2 ;;
esac
kernel=$("$ROOT/scripts/build-kernel.sh" "$arch" ${PROFILE_VARIANT:+--variant "$PROFILE_VARIANT"})
addr=$(nm "$kernel" | grep -E " [tT] " | grep -E -- "$pattern" | head -1 | cut -d' ' -f1)
[[ -n $addr ]] || { echo "profile: no function matches '$pattern'" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"; kill "$qemu_pid" 2>/dev/null || true' EXIT

cat > "$work/step.py" <<PY
import gdb
gdb.execute("set pagination off")
gdb.execute("set confirm off")
gdb.execute("set architecture $gdb_arch")
gdb.execute("target remote tcp::PORT")
gdb.execute("break *0x$addr")
if $hit > 1:
    gdb.execute("ignore 1 $((hit - 1))")
gdb.execute("continue")
sp = int(gdb.parse_and_eval("$sp"))
ret = int(gdb.parse_and_eval("*($word*)$sp"))
gdb.execute("delete")
counts = {}
while True:
    pc = int(gdb.parse_and_eval("\$pc"))
    if pc == ret and int(gdb.parse_and_eval("$sp")) > sp:
        break
    counts[pc] = counts.get(pc, 0) + 1
    gdb.execute("stepi", to_string=True)
with open("$work/pcs.txt", "w") as f:
    for pc, c in counts.items():
        f.write("%x %d\n" % (pc, c))
gdb.execute("kill")
PY
port=$((20000 + RANDOM % 20000))
sed -i "s/PORT/$port/" "$work/step.py"

$qemu -display none -nodefaults -no-reboot -m 128M \
    -serial "file:$work/serial.txt" -fw_cfg name=etc/sercon-port,string=0 \
    -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
    -kernel "$kernel" -append "$cmdline" -icount shift=0 \
    -gdb "tcp::$port" -S 2>/dev/null &
qemu_pid=$!
sleep 1
gdb -q -batch -x "$work/step.py" "$kernel" > "$work/gdb.log" 2>&1 || true
[[ -s $work/pcs.txt ]] || { echo "profile: gdb did not reach the call:" >&2; cat "$work/gdb.log" >&2; exit 1; }

# PROFILE_PCS=<file> keeps the per-address counts ("pc count" lines, hex
# pc) for an annotated disassembly.
[[ -n ${PROFILE_PCS:-} ]] && cp "$work/pcs.txt" "$PROFILE_PCS"
nm -n -C "$kernel" | grep -E " [tT] " > "$work/syms.txt"
python3 - "$work/syms.txt" "$work/pcs.txt" "$top" <<'PY'
import bisect, sys
syms = []
for line in open(sys.argv[1]):
    a, _, name = line.rstrip("\n").split(" ", 2)
    syms.append((int(a, 16), name))
syms.sort()
addrs = [a for a, _ in syms]
per_fn, total = {}, 0
for line in open(sys.argv[2]):
    pc, n = line.split()
    i = bisect.bisect_right(addrs, int(pc, 16)) - 1
    name = syms[i][1] if i >= 0 else "?"
    per_fn[name] = per_fn.get(name, 0) + int(n)
    total += int(n)
print(f"profile: {total} instructions")
for name, n in sorted(per_fn.items(), key=lambda kv: -kv[1])[: int(sys.argv[3])]:
    print(f"{n:9} {100 * n / total:5.1f}%  {name[:150]}")
PY
