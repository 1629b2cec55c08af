#!/bin/sh
# Runs inside a virtme-ng guest (gmemharness run --runner vng), which sees the host's files:
#   vng-guest.sh MODULES_LIST SUITE [ARGS...]
# MODULES_LIST holds "name host-path" lines in load order. The result stream and this script's
# harness-* events go to the virtio port named gmemtest.results (see harness/PROTOCOL.md).
modules=$1 suite=$2
shift 2
port=""
for dir in /sys/class/virtio-ports/*; do
    [ "$(cat "$dir/name" 2>/dev/null)" = gmemtest.results ] && port=/dev/${dir##*/}
done
if [ -z "$port" ]; then
    echo "gmemtest-vng: no virtio port named gmemtest.results" >&2
    exit 1
fi
emit() { echo "$1" > "$port"; }
failed=""
while read -r name path; do
    grep -qw svm /proc/cpuinfo || [ "$name" != kvm_amd ] || continue
    grep -qw vmx /proc/cpuinfo || [ "$name" != kvm_intel ] || continue
    grep -q "^$name " /proc/modules || insmod "$path" || failed="$failed $name"
done < "$modules"
emit "{\"event\":\"harness-boot\",\"kernel\":\"$(uname -r)\",\"failed_modules\":\"${failed# }\"}"
if [ ! -e /dev/kvm ]; then
    emit '{"event":"harness-nokvm"}'
    exit 0
fi
export GTEST_COLOR=no
"$suite" "--gmemtest_stream=$port" "$@"
status=$?
echo "gmemtest-done status=$status"
emit "{\"event\":\"harness-exit\",\"status\":$status}"
