#!/usr/bin/env bash
# Builds procnet (release) and runs it: installs what is missing first
# (scripts/setup.sh --build-only). Arguments go to procnet, e.g.
#   scripts/run.sh                      # serve on http://127.0.0.1:8765
#   scripts/run.sh snapshot --format table
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --build-only
export PATH="$HOME/.cargo/bin:$PATH"
# cargo's own progress shows while a first build runs (a few minutes on
# two cores); later runs start at once, since nothing needs rebuilding.
exec cargo run --release -- "$@"
