#!/usr/bin/env bash
# One-time (idempotent) setup for building procnet for Windows and running
# it under Wine on Debian:
#   1. Debian packages: mingw-w64 (linker) and Wine 8 (wine, wine64);
#   2. the Rust target x86_64-pc-windows-gnu;
#   3. the bcryptprimitives.dll shim (Wine 8 lacks ProcessPrng, which every
#      Rust exe imports; without it the exe exits with c0000135);
#   4. a Wine prefix (default target/wine-prefix) with the shim in system32.
# Every step is skipped when already done. Prints how long each took.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

step() { printf '[wine-setup] %s\n' "$*"; }
t0=$SECONDS

# 1. Packages.
if ! command -v x86_64-w64-mingw32-gcc >/dev/null || ! command -v wine >/dev/null \
    || [ ! -x /usr/lib/wine/wine64 ]; then
    step "installing gcc-mingw-w64-x86-64 wine wine64 (apt)"
    export DEBIAN_FRONTEND=noninteractive
    apt_get() { apt-get -o DPkg::Lock::Timeout=300 -y -q "$@"; }
    if ! apt_get install gcc-mingw-w64-x86-64 wine wine64; then
        apt_get update
        apt_get install gcc-mingw-w64-x86-64 wine wine64
    fi
fi
WINE_BIN="$(command -v wine)"
step "packages ready ($((SECONDS - t0))s): $("$WINE_BIN" --version 2>/dev/null || echo 'wine ?')"

# 2. Rust target.
if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx x86_64-pc-windows-gnu; then
    step "adding Rust target x86_64-pc-windows-gnu"
    rustup target add x86_64-pc-windows-gnu
fi

# 3. Shim DLL.
shim_dir="$REPO_DIR/target/wine-shim"
shim="$shim_dir/bcryptprimitives.dll"
mkdir -p "$shim_dir"
if [ ! -f "$shim" ] || [ "$WINE_CI_DIR/bcryptprimitives.c" -nt "$shim" ] \
    || [ "$WINE_CI_DIR/bcryptprimitives.def" -nt "$shim" ]; then
    step "building $shim"
    x86_64-w64-mingw32-gcc -shared -O2 -s -o "$shim" \
        "$WINE_CI_DIR/bcryptprimitives.c" "$WINE_CI_DIR/bcryptprimitives.def" -ladvapi32
fi

# 4. Prefix.
t1=$SECONDS
if [ ! -f "$WINEPREFIX/system.reg" ]; then
    step "creating Wine prefix $WINEPREFIX (first start takes a while)"
    mkdir -p "$WINEPREFIX"
    timeout --kill-after=10 240 wineboot -i >/dev/null 2>&1 || true
    timeout 60 wineserver -w || true
    if [ ! -f "$WINEPREFIX/system.reg" ]; then
        echo "[wine-setup] wineboot did not create $WINEPREFIX" >&2
        exit 1
    fi
    # Users who run `wine procnet.exe` by hand get the override too.
    timeout 60 "$WINE_BIN" reg add 'HKCU\Software\Wine\DllOverrides' \
        /v bcryptprimitives /t REG_SZ /d native,builtin /f >/dev/null 2>&1 || true
    timeout 60 wineserver -w || true
    step "prefix ready ($((SECONDS - t1))s)"
fi
sys32="$WINEPREFIX/drive_c/windows/system32"
if ! cmp -s "$shim" "$sys32/bcryptprimitives.dll"; then
    cp "$shim" "$sys32/bcryptprimitives.dll"
    step "placed shim in $sys32"
fi
step "done in $((SECONDS - t0))s"
