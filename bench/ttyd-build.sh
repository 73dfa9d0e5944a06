#!/bin/sh
# Builds ttyd from a source tree for the echo bench (bench/echo-hops.ts), which runs it when
# `TTYD` names the binary or `ttyd` is on PATH. Debian has no ttyd package; its build needs
# cmake, a C compiler, libwebsockets-dev, libjson-c-dev, libuv1-dev and zlib1g-dev (apt).
#   bench/ttyd-build.sh SOURCE_DIR [BUILD_DIR]   (BUILD_DIR defaults to .bench-tmp/ttyd)
#   TTYD=.bench-tmp/ttyd/ttyd npm run bench -- echo-hops
set -eu
src=${1:?usage: bench/ttyd-build.sh SOURCE_DIR [BUILD_DIR]}
out=${2:-.bench-tmp/ttyd}
mkdir -p "$out"
cmake -S "$src" -B "$out" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$out" -j 2 >/dev/null
"$out/ttyd" --version
echo "TTYD=$out/ttyd"
