#!/usr/bin/env bash
# Cargo runner for x86_64-pc-windows-gnu (see .cargo/config.toml): runs a
# Windows exe under Wine in the project's prefix. Run ci/wine/setup.sh once
# first. A hung exe is stopped after PROCNET_WINE_TIMEOUT seconds (300).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
if [ ! -f "$WINEPREFIX/system.reg" ]; then
    echo "ci/wine/run.sh: no Wine prefix at $WINEPREFIX; run ci/wine/setup.sh first" >&2
    exit 2
fi
exec timeout --kill-after=10 "${PROCNET_WINE_TIMEOUT:-300}" "$WINE_BIN" "$@"
