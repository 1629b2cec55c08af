#!/usr/bin/env bash
# The series kernels of ci/series.txt that the harness cache holds, booted under QEMU and checked
# against ci/expect/series/<label>.txt. One the cache lacks (or whose patches are not here) gets
# one line naming it and the command that builds it, and is not a failure. Builds and downloads
# nothing, so a machine without series kernels pays only for reading the list.
#   GMEMTEST_SERIES_DIR     where the series live (directories of patches or b4 mboxes)
#   GMEMTEST_SERIES_LIST    the list (default ci/series.txt)
#   GMEMTEST_SERIES_EXPECT  the expectation lists (default ci/expect/series)
#   GMEMTEST_SERIES_OUT     reports, one directory per series kernel (default results/vm/series)
# Exit codes: gmemharness's for the worst series run (0 when none ran).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
list=$(realpath "${GMEMTEST_SERIES_LIST:-ci/series.txt}")
expect_dir=$(realpath -m "${GMEMTEST_SERIES_EXPECT:-ci/expect/series}")
suite=$(realpath -m "${GMEMTEST_BUILD:-build}/cases/gmemtest")
out=$(realpath -m "${GMEMTEST_SERIES_OUT:-results/vm/series}")
series_dir=${GMEMTEST_SERIES_DIR:-}
harness() { (cd "$repo/harness" && /usr/bin/python3 -m gmemharness "$@"); }
declare -A debian_trees
debian_tree() {   # where the harness unpacks linux-source-$1 (not fetched here)
  [[ -n "${debian_trees[$1]:-}" ]] || debian_trees[$1]=$(cd "$repo/harness" && /usr/bin/python3 -c \
    "import sys; from gmemharness import debsource; p = 'linux-source-' + sys.argv[1]; print(debsource.sources_dir() / p / p)" "$1")
  echo "${debian_trees[$1]}"
}

status=0
while read -r base rest; do
  [[ -z "$base" || "$base" == \#* ]] && continue
  read -r -a words <<<"$rest"
  args=() options=() label=""
  if [[ "$base" == */* ]]; then tree=$(realpath -m "$base"); else tree=$(debian_tree "$base"); fi
  label=$(basename "$tree")
  missing=""
  for word in "${words[@]}"; do
    if [[ "$word" == --* ]]; then options+=("$word"); continue; fi
    path="${series_dir:-\$GMEMTEST_SERIES_DIR}/$word"
    args+=(--series "$path")
    label+="+$word"
    [[ -n "$series_dir" && -e "$path" ]] || missing+=" $path"
  done
  why=""
  [[ -f "$tree/Makefile" ]] || why="its base $tree is not here (ci/check-kernels.sh fetches linux-source-$base)"
  [[ -z "$missing" ]] || why="no patches at$missing"
  if [[ -n "$why" ]]; then
    echo "series $label: not checked: $why; build it with:" \
      "$repo/harness/gmemharness.sh build --kernel-tree $tree ${args[*]}"
    continue
  fi
  check=0
  harness build --check --kernel-tree "$tree" "${args[@]}" || check=$?
  case $check in
    0) ;;
    1) continue ;;                     # it printed the label and the command that builds it
    *) status=$check; continue ;;
  esac
  code=0
  harness run --kernel-tree "$tree" "${args[@]}" "${options[@]}" --binary "$suite" \
    --out "$out/$label" --expect "$expect_dir" --resume --quiet --color never || code=$?
  ((code > status)) && status=$code
done <"$list"
exit "$status"
