#!/usr/bin/env bash
# Configures and builds Tessera into build/ (clang-19, Ninja). Extra arguments go to cmake.
set -euo pipefail
cd "$(dirname "$0")/.."
WERROR=OFF
if [ "${CI:-}" = "true" ]; then WERROR=ON; fi
if [ ! -f build/build.ninja ]; then
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_COMPILER=clang-19 -DCMAKE_CXX_COMPILER=clang++-19 \
    -DTESSERA_WERROR=$WERROR -DTESSERA_PYTHON="$PWD/.venv/bin/python" "$@"
else
  cmake build -DTESSERA_WERROR=$WERROR "$@" >/dev/null
fi
ninja -C build
