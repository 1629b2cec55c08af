#!/usr/bin/env bash
# The suite inside Debian kernels booted under QEMU (KVM when the host can, else TCG), checked
# against ci/expect/<kernel>.txt: fails unless every listed case did what its line says. Then
# the harness's own real-guest tests (crash mid-case, guest killed mid-case, splat, no KVM).
#   GMEMTEST_CI_KERNELS="7.2.13+deb14-cloud-amd64 ..."  kernels to boot (default: the three below)
#   GMEMTEST_SKIP_HARNESS_VM=1                          skip the harness's real-guest tests
#   GMEMTEST_CI_SOURCE="7.3 6.12"                       also build Debian's linux-source-<series> (one
#                                                       or more) with vm-images/config
#                                                       (KVM_SW_PROTECTED_VM, which Debian's kernels
#                                                       lack) and check each; "" skips. Default:
#                                                       "7.3 6.12". 6.12 is where 6.x-only behaviour
#                                                       (no MMAP flag, binding only on
#                                                       private-memory VMs) runs for real.
#                                                       Each tree is built once and kept (harness
#                                                       cache, ccache).
#   GMEMTEST_SKIP_SERIES=1                              skip the series kernels (ci/check-series.sh:
#                                                       only those the harness cache already holds)
# Exit codes: gmemharness's (0 ok, 3 crash, 4 timeout, 5 infrastructure, 6 expectation not met).
set -euo pipefail
cd "$(dirname "$0")/.."
suite=$(realpath -m "${GMEMTEST_BUILD:-build}/cases/gmemtest")
read -r -a kernels <<<"${GMEMTEST_CI_KERNELS:-7.2.13+deb14-cloud-amd64 7.3.4+deb13-cloud-amd64 6.12.107+deb13-cloud-amd64}"
out="$PWD/results/vm"
rm -rf "$out"

trees=()
read -r -a source_series <<<"${GMEMTEST_CI_SOURCE-7.3 6.12}"
for series in "${source_series[@]}"; do
  echo "== fetching linux-source-$series"
  tree=$(cd harness && /usr/bin/python3 -c "from gmemharness import debsource; print(debsource.fetch_source_tree('$series'))" | tail -n 1)
  trees+=(--kernel-tree "$tree")
done

echo "== suite in ${kernels[*]} ${trees[*]}"
(cd harness && /usr/bin/python3 -m gmemharness run "${kernels[@]}" "${trees[@]}" --binary "$suite" \
   --out "$out" --expect ../ci/expect --resume --quiet --color never)

if [[ "${GMEMTEST_SKIP_HARNESS_VM:-0}" != 1 ]]; then
  echo "== harness tests in a real guest"
  (cd harness && GMEMTEST_VM_KERNEL="${kernels[0]}" /usr/bin/python3 -m pytest -q -p no:cacheprovider -m vm tests/test_vm.py \
     --junitxml="$out/harness-vm-junit.xml")
fi

if [[ "${GMEMTEST_SKIP_SERIES:-0}" != 1 ]]; then
  echo "== series kernels of ci/series.txt that the harness cache holds"
  ci/check-series.sh
fi
