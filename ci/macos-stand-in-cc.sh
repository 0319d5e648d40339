#!/bin/sh
# Stands in for a macOS C compiler during the macOS type-check: there is no
# macOS SDK on this machine, and `cargo check` never links, so the C sources
# of -sys crates (zstd's) only need to produce something for `ar` to pack.
# Writes an empty file wherever `-o` points and succeeds. Rust code is still
# type-checked and linted in full; no C is checked for macOS.
out=""
while [ $# -gt 0 ]; do
    case "$1" in
        -o) out="$2"; shift ;;
        -o*) out="${1#-o}" ;;
        # cc-rs may take the stand-in for an MSVC-style compiler.
        -Fo*) out="${1#-Fo}" ;;
    esac
    shift
done
[ -n "$out" ] && : >"$out"
exit 0
