#!/usr/bin/env bash
# The project's own tests, as CI runs them (.ci/run calls this):
#   1. build everything;
#   2. unit tests of the fixtures and probes (GoogleMock, mocked syscall seam; no kernel needed);
#   3. pytest unit tests of the harness, bisect and benchmark tools (no QEMU);
#   4. the suite against the running kernel (no case may fail), and a short benchmark smoke run
#      (reported, never judged on time);
#   5. the suite inside Debian kernels and a kernel built from Debian's linux-source, booted in
#      nested QEMU, checked against ci/expect/.
# Set GMEMTEST_SKIP_VM=1 to stop after step 4 (e.g. on a machine without QEMU).
set -euo pipefail
cd "$(dirname "$0")/.."
ci/setup.sh
ci/build.sh
build=${GMEMTEST_BUILD:-build}
mkdir -p results

echo "== unit tests of fixtures and probes"
ctest --test-dir "$build" -L unit --output-on-failure --output-junit "$PWD/results/unit-junit.xml"

echo "== harness unit tests"
(cd harness && /usr/bin/python3 -m pytest -q -p no:cacheprovider tests)

echo "== suite on the running kernel ($(uname -r))"
. ci/direct-io-dir.sh
"$build/cases/gmemtest" --probe | tail -n +1 >"results/probe-$(uname -r).txt"
ctest --test-dir "$build" -L kernel --output-on-failure --output-junit "$PWD/results/kernel-junit.xml"

echo "== benchmark smoke run"
"$build/bench/gmemtest_bench" --gmembench_mib=16 --gmembench_vcpus=1,2 --gmembench_paging_mib=2 \
  --gmembench_iterations=1 --benchmark_out="results/bench-$(uname -r).json" --benchmark_out_format=json >/dev/null
(cd harness && /usr/bin/python3 -m gmembench summary "../results/bench-$(uname -r).json")

if [[ "${GMEMTEST_SKIP_VM:-0}" != 1 ]]; then
  echo "== suite in nested kernels"
  ci/check-kernels.sh
fi
