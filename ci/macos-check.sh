#!/usr/bin/env bash
# Type-checks and lints the macOS collector from Linux. No macOS machine is
# available, so nothing is linked or run; the pure decoders of
# src/collect/macos/parse.rs are unit-tested on Linux through
# tests/collect_windows.rs instead.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
T=x86_64-apple-darwin
if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx "$T"; then
    rustup target add "$T"
fi
# No macOS SDK here: C parts of -sys crates (zstd) get a stand-in compiler
# (see macos-stand-in-cc.sh); only Rust is checked for macOS.
export CC_x86_64_apple_darwin="$PWD/ci/macos-stand-in-cc.sh"
export AR_x86_64_apple_darwin="${AR_x86_64_apple_darwin:-ar}"
t0=$SECONDS
echo "[macos-check] cargo check --target $T --all-targets"
cargo check --quiet --target "$T" --all-targets
echo "[macos-check] cargo clippy --target $T --all-targets -- -D warnings"
cargo clippy --quiet --target "$T" --all-targets -- -D warnings
echo "[macos-check] ok ($((SECONDS - t0))s)"
