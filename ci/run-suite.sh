#!/usr/bin/env bash
# Runs the suite against the running kernel: set-up, build, the feature probe, then every case
# through ctest (one ctest test per case; JUnit XML in results/). Exit status: ctest's.
set -euo pipefail
cd "$(dirname "$0")/.."
ci/setup.sh
ci/build.sh
build=${GMEMTEST_BUILD:-build}
mkdir -p results
echo "== feature probe of $(uname -r)"
. ci/direct-io-dir.sh
"$build/cases/gmemtest" --probe
echo "== cases"
# Serial: cases share machine-wide state (hugepage pools, sysctls).
ctest --test-dir "$build" -L kernel --output-on-failure \
  --output-junit "$PWD/results/kernel-junit.xml" "$@"
