#!/usr/bin/env sh
# Runs every fuzz target (MoQT codec, tus headers, MP4 boxes) for N seconds each (default 10).
# Needs cargo-fuzz (`cargo install cargo-fuzz`); only a stable toolchain is
# installed, so nightly features are unlocked with RUSTC_BOOTSTRAP=1.
set -eu
secs="${1:-10}"
cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP=1
for target in $(cargo fuzz list); do
    echo "== $target (${secs}s)"
    cargo fuzz run "$target" -- -max_total_time="$secs"
done
