#!/bin/sh
# gmemharness from anywhere: paths on the command line stay relative to where you are.
#   harness/gmemharness.sh run 7.2 6.12 --filter 'Creation.*'
#   harness/gmemharness.sh --help
here=$(dirname "$(readlink -f "$0")")
PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}" exec /usr/bin/python3 -m gmemharness "$@"
