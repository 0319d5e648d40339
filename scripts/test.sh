#!/usr/bin/env bash
# Runs every test of procnet: format and lint checks, the Rust unit and
# integration tests (real processes on loopback, a real server over HTTP,
# the web UI in headless Chromium), the Windows build's tests under Wine and
# the macOS type-check. Installs what is missing first (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"

echo "== format and lint"
cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings

echo "== web UI: typecheck, lint, unit tests"
(cd web && npm run --silent typecheck && npm run --silent lint && npm run --silent test:unit)

echo "== Rust tests (unit, integration, HTTP, browser, containers)"
# As root, setup.sh installed Podman: its end-to-end test must run, not skip.
if [ "$(id -u)" -eq 0 ]; then export PROCNET_REQUIRE_PODMAN=1; fi
# tests/monitor_api.rs runs the example binary itself, which `cargo test`
# builds only as a test harness.
cargo build --examples
cargo test --all-targets

if [ -x ci/wine/test.sh ] || [ -f ci/wine/test.sh ]; then
  echo "== Windows build under Wine"
  bash ci/wine/test.sh
fi
if [ -f ci/macos-check.sh ]; then
  echo "== macOS type-check"
  bash ci/macos-check.sh
fi
echo "== build checks (no-op rebuild, cargo install, packaged crate)"
bash ci/build-checks.sh
echo "all tests passed"
