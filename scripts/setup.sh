#!/usr/bin/env bash
# Installs what building and booting the kernels needs, or prints the exact
# commands when it cannot (not root, no apt). Shared by run-qemu.sh and .ci/run
# so CI installs exactly what a new user's first run installs.
#
# Usage: scripts/setup.sh [--check]   (--check: report only, install nothing)
set -euo pipefail

CHECK_ONLY=0
[[ "${1:-}" == "--check" ]] && CHECK_ONLY=1

missing_qemu=()
command -v qemu-system-x86_64 >/dev/null 2>&1 || missing_qemu+=(qemu-system-x86)
command -v qemu-system-i386   >/dev/null 2>&1 || missing_qemu+=(qemu-system-x86)
command -v qemu-system-ppc64  >/dev/null 2>&1 || missing_qemu+=(qemu-system-ppc)
# Deduplicate.
mapfile -t missing_qemu < <(printf '%s\n' "${missing_qemu[@]}" | sort -u | sed '/^$/d')

BACKPORTS=/etc/apt/sources.list.d/bookworm-backports.sources
qemu_cmds() {
    cat <<EOT
  # QEMU 10 from Debian bookworm-backports (bookworm's own qemu-system 7.2
  # conflicts with the image's backported qemu-utils):
  sudo tee $BACKPORTS <<'EOS'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOS
  sudo apt-get update
  sudo apt-get install -y -t bookworm-backports --no-install-recommends ${missing_qemu[*]}
EOT
}

if ((${#missing_qemu[@]})); then
    if ((CHECK_ONLY)) || [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
        echo "setup: missing QEMU packages: ${missing_qemu[*]}" >&2
        echo "setup: install them with:" >&2
        qemu_cmds >&2
        exit 1
    fi
    echo "setup: installing ${missing_qemu[*]} from bookworm-backports" >&2
    if [[ ! -f $BACKPORTS ]]; then
        # Same URIs and Signed-By as the image's own Debian entry.
        uris=$(awk '/^URIs:/ && /debian$/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
        [[ -n "$uris" ]] || uris=http://deb.debian.org/debian
        cat >"$BACKPORTS" <<EOS
Types: deb
URIs: $uris
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOS
    fi
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t bookworm-backports \
        --no-install-recommends "${missing_qemu[@]}" >&2
fi

# trace-cmd (Debian's package, from the release's own suite): only the QEMU
# test tests/tests/report.rs needs it (it reads the trace.dat files
# ftrace-report writes with `trace-cmd report`, and fails saying how to
# install it), so when it cannot be installed here booting still goes on.
if ! command -v trace-cmd >/dev/null 2>&1; then
    if ((CHECK_ONLY)) || [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
        echo "setup: note: trace-cmd is missing (tests/tests/report.rs needs it); install it with:" >&2
        echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends trace-cmd" >&2
    else
        echo "setup: installing trace-cmd" >&2
        { DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
          DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends trace-cmd; } >&2 ||
            echo "setup: note: installing trace-cmd failed; tests/tests/report.rs needs it" >&2
    fi
fi

# Rust: the pinned nightly with rust-src (build-std) and llvm-tools (objdump).
# RUSTUP_AUTO_INSTALL=0 on this machine, so rust-toolchain.toml alone is not enough.
TOOLCHAIN=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' "$(dirname "$0")/../rust-toolchain.toml")
COMPONENTS=(rust-src llvm-tools rustfmt clippy)
if ! command -v rustup >/dev/null; then
    echo "setup: rustup not found; install it from https://rustup.rs then rerun" >&2
    exit 1
fi
if ! rustup toolchain list | grep -q "^$TOOLCHAIN"; then
    if ((CHECK_ONLY)); then
        echo "setup: missing Rust toolchain; run: rustup toolchain install $TOOLCHAIN --profile minimal --component $(IFS=,; echo "${COMPONENTS[*]}")" >&2
        exit 1
    fi
    echo "setup: rustup toolchain install $TOOLCHAIN" >&2
    rustup toolchain install "$TOOLCHAIN" --profile minimal \
        --component "$(IFS=,; echo "${COMPONENTS[*]}")" >&2
fi
have=$(rustup component list --installed --toolchain "$TOOLCHAIN" 2>/dev/null || true)
need=()
for c in "${COMPONENTS[@]}"; do
    grep -q "^$c" <<<"$have" || need+=("$c")
done
if ((${#need[@]})); then
    if ((CHECK_ONLY)); then
        echo "setup: missing rustup components; run: rustup component add ${need[*]} --toolchain $TOOLCHAIN" >&2
        exit 1
    fi
    echo "setup: rustup component add ${need[*]} --toolchain $TOOLCHAIN" >&2
    rustup component add "${need[@]}" --toolchain "$TOOLCHAIN" >&2
fi
exit 0
