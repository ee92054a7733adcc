#!/usr/bin/env bash
# Command 2 of the README: set up and run every test: Rust unit + integration tests (SQLite and
# PostgreSQL), the Python SDK (ruff + pytest, tests/python/run.sh), the TypeScript SDK's unit
# tests, and the browser end-to-end tests in Debian's Chromium. Prints one summary line at the
# end: "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
[ "${CLUTCHCALL_SKIP_SETUP:-}" = 1 ] || bash scripts/setup.sh --with-node || exit 1

passed=0; failed=0; failures=()
step() {
  local name=$1; shift
  printf '\n\033[1;34m==> %s\033[0m\n' "$name"
  if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); failures+=("$name"); fi
}

step "cargo build" cargo build --locked --workspace --all-targets
step "cargo test" cargo test --locked --workspace --no-fail-fast -- --test-threads 2
step "cargo clippy" cargo clippy --locked --workspace --all-targets -- -D warnings
# Fuzz targets (fuzz/, a workspace of its own): build them all (unoptimized, `--dev`: half the
# build time of the default optimized build) and run each for CLUTCHCALL_FUZZ_SECS (default 5)
# seconds from its checked-in seeds, so they keep compiling and a crash fails CI (the input lands
# in fuzz/artifacts/<target>/). Installs the pinned cargo-fuzz and a C++ compiler (libFuzzer)
# when missing. About 6 minutes on 2 cores, most of it the build.
fuzz_targets() {
  if ! command -v c++ >/dev/null; then
    local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends g++ >/dev/null ||
      return 1
  fi
  if [ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz 0.13.2" ]; then
    cargo install cargo-fuzz --locked --version 0.13.2 || return 1
  fi
  (cd fuzz && cargo fetch --locked) &&
    FUZZ_BUILD_FLAGS="${FUZZ_BUILD_FLAGS---dev}" sh fuzz/run.sh "${CLUTCHCALL_FUZZ_SECS:-5}"
}
step "fuzz targets (build, ${CLUTCHCALL_FUZZ_SECS:-5}s each)" fuzz_targets
step "python sdk tests (ruff + pytest)" bash tests/python/run.sh
if [ -f sdk/ts/package.json ]; then
  step "sdk/ts tests" bash -c 'cd sdk/ts && npm test'
fi
if [ -f tests/e2e/package.json ]; then
  step "browser e2e tests" bash -c 'cd tests/e2e && npm test'
fi

echo
for f in "${failures[@]}"; do echo "FAILED: $f"; done
echo "suites: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
