#!/usr/bin/env bash
# Capture benchmark (recipe 4, Python SDK): CPU per captured 6 Mbit/s stream and how many
# concurrent captures one Python process sustains at the live edge. Prints a Markdown table.
#
#   bench/capture/run.sh              # N = 1 4 8 16 32 64
#   bench/capture/run.sh 1 10 20      # other counts
#
# Builds the engine and the synthetic source in release mode and installs the SDK into .venv
# (`pip install ./sdk/python`, a release build of rs/py).
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -q -p clutchcall --bin clutchcall
cargo build --release -q -p clutchcall-py --example cmaf_source
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q maturin
.venv/bin/python -m pip install -q --force-reinstall --no-deps ./sdk/python
.venv/bin/python bench/capture/bench.py "$@"
