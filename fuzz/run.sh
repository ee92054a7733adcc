#!/usr/bin/env sh
# Builds every fuzz target (MoQT codec, RTMP/AMF0/FLV, tus headers, MP4 boxes, playback JWTs,
# VOD Range headers, RTMP publish targets), then runs each for N seconds (default 10), starting
# from corpus/<target> (git-ignored, grows locally) and the checked-in seeds/<target>.
# Exits non-zero if any target fails (a crash, a failed assertion, a leak, a timeout); the input
# is in artifacts/<target>/ and cargo-fuzz prints how to reproduce it.
# Extra `cargo fuzz build/run` options come from FUZZ_BUILD_FLAGS (CI: `--dev`, which builds in
# about half the time of the default optimized build but executes far fewer inputs per second:
# fine for short smoke runs, use the default for real fuzzing).
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`); only a stable toolchain is
# installed, so nightly features are unlocked with RUSTC_BOOTSTRAP=1.
set -eu
secs="${1:-10}"
cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP=1
flags="${FUZZ_BUILD_FLAGS:-}"
# $flags and $seeds are empty or words without spaces: split on purpose.
# shellcheck disable=SC2086
cargo fuzz build $flags
failed=""
for target in $(cargo fuzz list); do
    echo "== $target (${secs}s)"
    mkdir -p "corpus/$target"
    seeds=""
    [ -d "seeds/$target" ] && seeds="seeds/$target"
    # shellcheck disable=SC2086
    if ! cargo fuzz run $flags "$target" "corpus/$target" $seeds -- -max_total_time="$secs"; then
        failed="$failed $target"
    fi
done
if [ -n "$failed" ]; then
    echo "fuzz targets failed:$failed" >&2
    exit 1
fi
