#!/bin/sh
# End-to-end checks of the suite binary's run-level assertions (ctest label "unit"):
#   a case that passed on a --baseline and skips here fails, naming the baseline and the skip;
#   --require-feature with a name the probe does not know is a usage error (exit 2).
# RequiredFeatures.EveryRequiredFeatureIsPresent skips on any kernel when nothing is required.
set -u
suite=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

echo "RequiredFeatures.EveryRequiredFeatureIsPresent" >"$tmp/good.txt"
"$suite" --gtest_filter='RequiredFeatures.*' --baseline="$tmp/good.txt" >"$tmp/out" 2>&1
rc=$?
[ "$rc" = 1 ] || fail "--baseline: exit $rc, expected 1"; 
grep -q "passed on the baseline $tmp/good.txt but skips here: no feature required" "$tmp/out" ||
  fail "--baseline: no failure naming the baseline and the skip reason: $(cat "$tmp/out")"

"$suite" --gtest_filter='RequiredFeatures.*' >"$tmp/out" 2>&1 || fail "without a baseline the skip must not fail"

"$suite" --gtest_filter='RequiredFeatures.*' --require-feature=no.such.feature >"$tmp/out" 2>&1
rc=$?
[ "$rc" = 2 ] || fail "--require-feature=no.such.feature: exit $rc, expected 2"
grep -q "requires feature 'no.such.feature', which the probe does not know" "$tmp/out" || fail "$(cat "$tmp/out")"
echo "ok"
