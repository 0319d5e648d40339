#!/usr/bin/env bash
# Installs what building and testing procnet needs on a fresh Debian machine:
# the Rust toolchain parts, Node.js/npm for the web UI, Chromium for browser
# tests, mingw + Wine for the Windows build, python3 for test processes.
# Idempotent: installs only what is missing. Usage: scripts/setup.sh [--build-only]
set -euo pipefail
cd "$(dirname "$0")/.."

build_only=0
[ "${1:-}" = "--build-only" ] && build_only=1

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"

need_apt=()
have() { command -v "$1" >/dev/null 2>&1; }
have cc || need_apt+=(build-essential)
have node || need_apt+=(nodejs)
have npm || need_apt+=(npm)
if [ "$build_only" -eq 0 ]; then
  have python3 || need_apt+=(python3)
  have chromium || need_apt+=(chromium)
  have ss || need_apt+=(iproute2)
  # tests/tcp_health.rs drops packets between two test namespaces: tc netem
  # where the kernel has it, else an iptables `statistic` rule.
  have iptables || need_apt+=(iptables)
  [ -x /usr/bin/time ] || need_apt+=(time)
  have x86_64-w64-mingw32-gcc || need_apt+=(gcc-mingw-w64-x86-64)
  have wine64 || have wine || need_apt+=(wine wine64)
  # The container end-to-end test: Podman with runc (crun cannot run on
  # hosts with a hybrid cgroup setup) and a static busybox as the image.
  have podman || need_apt+=(podman)
  have runc || need_apt+=(runc)
  dpkg -s busybox-static >/dev/null 2>&1 || need_apt+=(busybox-static)
  have curl || need_apt+=(curl)
  have bc || need_apt+=(bc)
  # Real services the tests run against: nginx (pre-fork workers, upstream
  # connections), Prometheus and VictoriaMetrics (fleet mode), dnsmasq (a
  # reverse-DNS server on loopback).
  have nginx || [ -x /usr/sbin/nginx ] || need_apt+=(nginx)
  have prometheus || need_apt+=(prometheus)
  have victoria-metrics || need_apt+=(victoria-metrics)
  have dnsmasq || [ -x /usr/sbin/dnsmasq ] || need_apt+=(dnsmasq-base)
fi
# The BPF event collector (tier T0) is C compiled by clang and loaded by libbpf.
if [ "$(uname -s)" = "Linux" ]; then
  have clang || need_apt+=(clang)
  have llvm-strip || have llvm-strip-14 || need_apt+=(llvm)
  have pkg-config || need_apt+=(pkg-config)
  dpkg -s libelf-dev >/dev/null 2>&1 || need_apt+=(libelf-dev)
  dpkg -s zlib1g-dev >/dev/null 2>&1 || need_apt+=(zlib1g-dev)
fi
if [ "${#need_apt[@]}" -gt 0 ]; then
  echo "setup: apt-get install ${need_apt[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

if ! have cargo && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! have cargo; then
  # Debian's own cargo is older than procnet needs (1.85); rustup installs a current one.
  echo "setup: installing Rust with rustup (https://rustup.rs)" >&2
  have curl || { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq curl ca-certificates >/dev/null; }
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
  export PATH="$HOME/.cargo/bin:$PATH"
  echo "setup: Rust installed; in a new shell run: . \"\$HOME/.cargo/env\"" >&2
fi
if have rustup; then
  rustup component add rustfmt clippy >/dev/null 2>&1 || true
  if [ "$build_only" -eq 0 ]; then
    rustup target add x86_64-pc-windows-gnu x86_64-apple-darwin >/dev/null 2>&1 || true
  fi
fi

# The web UI's dependencies come from the npm registry, pinned by package-lock.json
# (again when the lock file is newer than the installed tree, e.g. a new devDependency).
if [ -f web/package-lock.json ] && { [ ! -d web/node_modules ] || [ web/package-lock.json -nt web/node_modules/.package-lock.json ]; }; then
  (cd web && npm ci --no-audit --no-fund) >&2
fi
echo "setup: ok" >&2
