#!/bin/busybox sh
# /init of a gmemtest image. The suite's results go to the dedicated result port; this script adds
# a few "harness-*" events of its own there (see harness/gmemharness/stream.py) so the host can
# tell a kernel without KVM or a suite that never started from a crash.
/bin/busybox mkdir -p /bin /proc /sys /dev /tmp /run
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs tmpfs /tmp
mkdir -p /dev/hugepages && mount -t hugetlbfs hugetlbfs /dev/hugepages
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null

. /etc/gmemtest/boot.conf   # GMEMTEST_BINARY, GMEMTEST_ARGS, GMEMTEST_STREAM, GMEMTEST_SYSCTLS,
                            # GMEMTEST_SCRATCH_DEVICE

stty -F "$GMEMTEST_STREAM" raw -echo 2>/dev/null
emit() { echo "$1" > "$GMEMTEST_STREAM"; }
finish() { sync; reboot -f; sleep 5; echo b > /proc/sysrq-trigger; }

# Both vendor modules are packed; load only the one this (virtual) CPU can run.
grep -qw svm /proc/cpuinfo || skip_module=kvm_amd
grep -qw vmx /proc/cpuinfo || skip_module="$skip_module kvm_intel"
failed_modules=""
while read -r name path; do
    case " $skip_module " in *" $name "*) continue ;; esac
    insmod "/lib/modules/$path" 2>/dev/console || failed_modules="$failed_modules $name"
done < /etc/gmemtest/modules

# The scratch disk (harness/gmemharness/scratch_disk.py): a real block filesystem for the O_DIRECT
# cases, which find it through GMEMTEST_DIRECT_IO_DIR. virtio-blk may probe asynchronously: wait
# up to 2 s for the device node.
direct_io=""
if [ -n "$GMEMTEST_SCRATCH_DEVICE" ]; then
    tries=0
    while [ ! -b "$GMEMTEST_SCRATCH_DEVICE" ] && [ $tries -lt 20 ]; do sleep 0.1; tries=$((tries + 1)); done
    mkdir -p /mnt/direct-io
    if mount -t ext4 "$GMEMTEST_SCRATCH_DEVICE" /mnt/direct-io 2>/dev/console; then
        direct_io=/mnt/direct-io
        export GMEMTEST_DIRECT_IO_DIR=$direct_io
    else
        echo "gmemtest-init: cannot mount $GMEMTEST_SCRATCH_DEVICE (ext4) at /mnt/direct-io" > /dev/console
    fi
fi

emit "{\"event\":\"harness-boot\",\"kernel\":\"$(uname -r)\",\"failed_modules\":\"${failed_modules# }\",\"direct_io_dir\":\"$direct_io\"}"

if [ ! -e /dev/kvm ]; then
    emit '{"event":"harness-nokvm"}'
    finish
fi

for kv in $GMEMTEST_SYSCTLS; do
    sysctl -q -w "$kv" >/dev/null 2>&1 || echo "gmemtest-init: sysctl $kv failed" > /dev/console
done

cd /tmp
export GTEST_COLOR=no   # the console is a tty; colour codes would hide gtest's case lines
eval "set -- $GMEMTEST_ARGS"
"$GMEMTEST_BINARY" "$@" > /dev/console 2>&1
status=$?
echo "gmemtest-done status=$status" > /dev/console   # the end of the suite's output, for console readers (LAVA)
emit "{\"event\":\"harness-exit\",\"status\":$status}"
finish
