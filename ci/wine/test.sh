#!/usr/bin/env bash
# Proves the Windows collector under Wine, from Linux:
#   1. setup (packages, target, shim DLL, prefix) — ci/wine/setup.sh;
#   2. clippy for x86_64-pc-windows-gnu;
#   3. the lib's Windows unit tests and tests/collect_windows.rs under Wine;
#   4. procnet.exe end to end: examples/hold_conn.exe holds a listener and a
#      connection open; `procnet.exe snapshot --format connections` must list
#      the listener and the connection with the right ports. A binary
#      without the `snapshot` subcommand is checked on its raw Snapshot
#      output instead, or the step is skipped with a message.
# Every Wine run is bounded by a timeout. Prints the time of each step.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$REPO_DIR"
T=x86_64-pc-windows-gnu
step_start=$SECONDS
step() { printf '\n[wine-test] %s\n' "$*"; step_start=$SECONDS; }
took() { printf '[wine-test] ... %s (%ss)\n' "$1" "$((SECONDS - step_start))"; }
total0=$SECONDS

step "setup"
"$WINE_CI_DIR/setup.sh"
took "setup done"

step "cargo clippy --target $T --all-targets"
cargo clippy --quiet --target "$T" --all-targets -- -D warnings
took "clippy clean"

step "cargo test --target $T --lib --test collect_windows (under Wine)"
PROCNET_WINE_TIMEOUT=300 cargo test --target "$T" --lib --test collect_windows -- --nocapture 2>&1 \
    | tee target/wine-test.log | grep -E '^(test |test result|running|failures|---- )|panicked' || true
if grep -q 'test result: FAILED' target/wine-test.log || ! grep -q 'test result: ok' target/wine-test.log; then
    echo "[wine-test] FAIL: tests under Wine failed (full log: target/wine-test.log)" >&2
    exit 1
fi
took "tests passed under Wine"

step "end to end: procnet.exe snapshot with hold_conn.exe holding a connection"
cargo build --quiet --target "$T" --bin procnet --example hold_conn
exe="target/$T/debug/procnet.exe"
hold="target/$T/debug/examples/hold_conn.exe"
out="target/wine-e2e"
mkdir -p "$out"
: >"$out/hold.txt"
timeout --kill-after=5 60 "$WINE_BIN" "$hold" 40 >"$out/hold.txt" 2>"$out/hold.err" &
hold_pid=$!
ports=""
for _ in $(seq 1 300); do
    ports=$(grep -m1 '^listen=' "$out/hold.txt" || true)
    [ -n "$ports" ] && break
    sleep 0.1
done
if [ -z "$ports" ]; then
    echo "[wine-test] FAIL: hold_conn.exe printed no ports: $(cat "$out/hold.err")" >&2
    kill "$hold_pid" 2>/dev/null || true
    exit 1
fi
lport=$(sed -E 's/.*listen=([0-9]+).*/\1/' <<<"$ports")
cport=$(sed -E 's/.*client=([0-9]+).*/\1/' <<<"$ports")
echo "[wine-test] hold_conn: listener 127.0.0.1:$lport, client 127.0.0.1:$cport"
set +e
timeout --kill-after=5 60 "$WINE_BIN" "$exe" snapshot --format connections >"$out/snapshot.json" 2>"$out/snapshot.err"
rc=$?
python3 "$WINE_CI_DIR/check_snapshot.py" "$out/snapshot.json" "$lport" "$cport"
check=$?
set -e
kill "$hold_pid" 2>/dev/null || true
wait "$hold_pid" 2>/dev/null || true
timeout 30 wineserver -w 2>/dev/null || true
if [ "$check" = 0 ]; then
    took "procnet.exe sees the listener and both ends"
elif [ "$check" = 3 ] || { [ "$rc" != 0 ] && grep -qiE "unrecognized|unexpected argument|subcommand" "$out/snapshot.err"; }; then
    echo "[wine-test] SKIP: this procnet.exe has no usable 'snapshot --format connections' yet (exit $rc): $(head -c 300 "$out/snapshot.err")"
else
    echo "[wine-test] FAIL: procnet.exe snapshot (exit $rc) did not show the connection; output in $out/" >&2
    exit 1
fi

printf '\n[wine-test] all Wine checks passed in %ss\n' "$((SECONDS - total0))"
