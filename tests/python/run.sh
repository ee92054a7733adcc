#!/usr/bin/env bash
# The Python suite (scripts/test.sh runs it as one step): a venv in .venv, the SDK installed the
# way users install it (`pip install ./sdk/python`: maturin builds rs/py), ruff, then pytest
# against the engine the tests start. Extra test dependencies go in tests/python/requirements.txt.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q -r tests/python/requirements-dev.txt
[ ! -f tests/python/requirements.txt ] || .venv/bin/python -m pip install -q -r tests/python/requirements.txt
.venv/bin/python -m pip install -q --force-reinstall --no-deps ./sdk/python
.venv/bin/ruff check sdk/python tests/python
.venv/bin/ruff format --check sdk/python tests/python
cargo build --locked -p clutchcall --bin clutchcall
cargo build --locked -p clutchcall-py --example cmaf_source
rc=0
CLUTCHCALL_SKIP_BUILD=1 .venv/bin/python -m pytest tests/python -q "$@" || rc=$?
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests in tests/python" >&2
fi
exit "$rc"
