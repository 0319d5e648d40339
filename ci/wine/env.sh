# Sourced by the Wine scripts: where the prefix lives and how quiet Wine is.
# Honours WINEPREFIX / WINEDEBUG set by the caller.
WINE_CI_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$WINE_CI_DIR/../.." && pwd)"
export WINEPREFIX="${WINEPREFIX:-$REPO_DIR/target/wine-prefix}"
export WINEDEBUG="${WINEDEBUG:--all}"
export WINEARCH=win64
# Our native shim must win over any builtin bcryptprimitives of this Wine.
export WINEDLLOVERRIDES="${WINEDLLOVERRIDES:-bcryptprimitives=n,b;mscoree=;mshtml=}"
# No display is needed; keep Wine from trying one.
unset DISPLAY
WINE_BIN="$(command -v wine || echo /usr/lib/wine/wine64)"
