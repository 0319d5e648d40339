#!/usr/bin/env bash
# Checks of the build itself, as a new user meets it:
#  1. a second `cargo build` is a no-op (an input that does not exist, or an
#     output watched as an input, once made every cargo call rebuild);
#  2. `cargo install --path .` gets the real web UI;
#  3. the packaged crate (`cargo package`) builds without writing into its
#     own sources (so without npm: web/dist ships with a current stamp) and
#     its binary serves the real web UI, not the placeholder page.
# Run after `cargo test`: step 3 builds the packaged copy with the shared
# target directory.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
server=""
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
fail() { echo "build-checks: FAIL: $*" >&2; exit 1; }

# Serves the UI from a binary on a free port and checks it is the real one.
check_ui() {
  local bin=$1 what=$2 port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$bin" serve --port "$port" --no-containers >"$tmp/serve.log" 2>&1 &
  server=$!
  for _ in $(seq 100); do
    curl -fsS "http://127.0.0.1:$port/" -o "$tmp/page.html" 2>/dev/null && break
    sleep 0.1
  done
  kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true; server=""
  [ -s "$tmp/page.html" ] || fail "$what: the server did not answer: $(cat "$tmp/serve.log")"
  if grep -q "built without its web UI" "$tmp/page.html" || ! grep -q 'src="/assets/index-' "$tmp/page.html"; then
    fail "$what: serves the placeholder page, not the web UI"
  fi
  echo "build-checks: $what serves the web UI"
}

echo "build-checks: a second build is a no-op"
cargo build --release --quiet
out=$(cargo build --release -v 2>&1)
grep -q "Fresh procnet" <<<"$out" || fail "a second cargo build rebuilt procnet: $(grep -i dirty <<<"$out")"

echo "build-checks: cargo install --path ."
cargo install --path . --root "$tmp/install" --offline --quiet
check_ui "$tmp/install/bin/procnet" "cargo install --path ."

echo "build-checks: cargo package"
# Verifying builds the packaged copy and fails if build.rs wrote into it
# (it would run npm if the shipped web/dist were not current).
cargo package --allow-dirty --offline --quiet
crate_dir=target/package/procnet-$(cargo pkgid | sed 's/.*[#@]//')
cargo install --path "$crate_dir" --target-dir target --root "$tmp/pkg" --debug --offline --quiet
check_ui "$tmp/pkg/bin/procnet" "the packaged crate"
