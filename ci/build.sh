#!/usr/bin/env bash
# Configures and builds the suite, its unit tests and benchmarks into ${GMEMTEST_BUILD:-build}.
# Extra arguments go to cmake's configure step (e.g. -DGMEMTEST_KERNEL_HEADERS=/path/usr).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${GMEMTEST_BUILD:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
cmake --build "$build" -j"$(nproc)"
