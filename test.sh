#!/usr/bin/env bash
# The project's test command (see README): host unit tests of every crate,
# then the QEMU integration tests that boot each arch's kernel.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh
cargo test --workspace --exclude kernel "$@"
