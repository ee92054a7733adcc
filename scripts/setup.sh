#!/usr/bin/env bash
# Installs everything the engine and its tests need on a fresh Debian machine, then builds.
# Safe to run again: it only installs what is missing. Used by scripts/serve.sh and
# scripts/test.sh; set CLUTCHCALL_SKIP_SETUP=1 to skip it when you know all is installed.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\033[1;34m[setup]\033[0m %s\n' "$*" >&2; }

need_apt=()
command -v cargo >/dev/null || { echo "cargo not found: install Rust (rustup) first" >&2; exit 1; }
command -v node >/dev/null || need_apt+=(nodejs npm)
command -v chromium >/dev/null || need_apt+=(chromium)
command -v ffmpeg >/dev/null || need_apt+=(ffmpeg)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
if [ "${#need_apt[@]}" -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  log "apt-get install ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

if [ "${1:-}" = "--with-node" ]; then
  for pkg in sdk/ts tests/e2e; do
    if [ -f "$pkg/package-lock.json" ]; then
      log "npm ci in $pkg"
      (cd "$pkg" && npm ci --no-audit --no-fund --loglevel=error)
    fi
  done
fi
