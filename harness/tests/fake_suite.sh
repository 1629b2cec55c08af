#!/bin/sh
# A stand-in for build/cases/gmemtest that speaks harness/PROTOCOL.md, for testing the harness in a
# real guest without the C++ suite. What a case does is in its name:
#   Fake.Pass*  pass          Fake.Fail*  fail          Fake.Skip*  skip with a reason
#   Fake.Warn*  pass, but puts a WARNING splat in the kernel log
#   Fake.Panic* panics the kernel (sysrq c)            Fake.Hang*  never ends
#   Fake.Oops*  oopses the kernel; with panic_on_oops that is a panic too
set -f   # filters are globs matched with case, never file names
CASES="Fake.Pass1 Fake.Fail1 Fake.Skip1 Fake.Pass2"
[ -n "$FAKE_CASES" ] && CASES="$FAKE_CASES"
stream=/dev/null filter='*'
for arg in "$@"; do
    case "$arg" in
        --gmemtest_stream=*) stream="${arg#*=}" ;;
        --gtest_filter=*) filter="${arg#*=}" ;;
        --fake_cases=*) CASES=$(echo "${arg#*=}" | tr ',' ' ') ;;
        --gtest_list_tests) list=1 ;;
    esac
done

# gtest filter semantics: POSITIVE[-NEGATIVE], each a ':'-separated list of globs.
selected() {
    pos="${filter%%-*}" neg=""
    case "$filter" in *-*) neg="${filter#*-}" ;; esac
    [ -z "$pos" ] && pos='*'
    hit=0
    oldifs="$IFS"; IFS=:
    for p in $pos; do case "$1" in $p) hit=1 ;; esac; done
    for p in $neg; do case "$1" in $p) hit=0 ;; esac; done
    IFS="$oldifs"
    [ $hit = 1 ]
}

if [ -n "$list" ]; then
    echo "Fake."
    for c in $CASES; do selected "$c" && echo "  ${c#Fake.}"; done
    exit 0
fi

emit() { echo "$1" >> "$stream"; }
emit "{\"event\":\"hello\",\"version\":1,\"kernel\":\"$(uname -r)\",\"argv\":[\"fake_suite\"]}"
emit '{"event":"probe","features":{"kvm":{"state":"present","how":"open /dev/kvm"}},"profiles":[]}'
passed=0 failed=0 skipped=0
for c in $CASES; do
    selected "$c" || continue
    emit "{\"event\":\"start\",\"case\":\"$c\"}"
    echo "[ RUN      ] $c"
    case "$c" in
        Fake.Fail*) outcome=fail msg="Expected: 0, actual: EINVAL" ;;
        Fake.Skip*) outcome=skip msg="needs KVM_CAP_GUEST_MEMFD_MMAP" ;;
        Fake.Warn*) echo "WARNING: CPU: 0 PID: $$ at virt/kvm/guest_memfd.c:123 fake_warn+0x1/0x2" > /dev/kmsg
                    outcome=pass msg="" ;;
        Fake.Panic*) echo c > /proc/sysrq-trigger ;;
        Fake.Oops*) echo 1 > /proc/sys/kernel/panic_on_oops; echo c > /proc/sysrq-trigger ;;
        Fake.Hang*) while :; do sleep 1000; done ;;
        *) outcome=pass msg="" ;;
    esac
    case $outcome in
        pass) passed=$((passed+1)); echo "[       OK ] $c (1 ms)" ;;
        fail) failed=$((failed+1)); echo "[  FAILED  ] $c (1 ms)" ;;
        skip) skipped=$((skipped+1)); echo "[  SKIPPED ] $c (1 ms)" ;;
    esac
    emit "{\"event\":\"end\",\"case\":\"$c\",\"outcome\":\"$outcome\",\"message\":\"$msg\",\"ms\":1}"
done
emit "{\"event\":\"done\",\"passed\":$passed,\"failed\":$failed,\"skipped\":$skipped}"
[ $failed = 0 ]
