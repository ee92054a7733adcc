#!/usr/bin/env bash
# Command 1 of the README: set up, build (release) and run the engine with embedded defaults
# (SQLite + local disk under ./data, self-signed certificate). Extra arguments go to `serve`,
# e.g. scripts/serve.sh --http 0.0.0.0:8080
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${CLUTCHCALL_SKIP_SETUP:-}" = 1 ] || bash scripts/setup.sh
cargo build --release --locked -p clutchcall
exec target/release/clutchcall serve "$@"
