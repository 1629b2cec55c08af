#!/usr/bin/env bash
# Configures and builds the suite, its unit tests and benchmarks into ${GMEMTEST_BUILD:-build}.
# Extra arguments go to cmake's configure step (e.g. -DGMEMTEST_KERNEL_HEADERS=/path/usr).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${GMEMTEST_BUILD:-build}
launcher=()
if command -v ccache >/dev/null; then
  # Paths below the checkout are hashed relative to it, so every clone shares the cache.
  export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$PWD} CCACHE_NOHASHDIR=${CCACHE_NOHASHDIR:-1}
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo "${launcher[@]}" "$@" >/dev/null
cmake --build "$build" -j"$(nproc)"
