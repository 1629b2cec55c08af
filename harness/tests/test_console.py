import pytest

from gmemharness.console import ConsoleScanner, SplatRules
from gmemharness.errors import InfraError

WARN = b"""[    3.64] ------------[ cut here ]------------
[    3.64] WARNING: CPU: 0 PID: 113 at virt/kvm/guest_memfd.c:123 kvm_gmem_fault+0x1/0x2 [kvm]
[    3.64] Modules linked in: kvm_amd kvm
[    3.65] Call Trace:
[    3.65] ---[ end trace 0000000000000000 ]---
[    3.66] after the splat
"""


def kinds(events):
    return [(e.kind, e.text) for e in events]


@pytest.fixture
def scanner():
    return ConsoleScanner(SplatRules.load())


def test_a_warning_is_a_splat_with_its_context_up_to_the_end_of_trace(scanner):
    events = scanner.feed(WARN)
    assert kinds(events) == [("splat", "WARNING: CPU: 0 PID: 113 at virt/kvm/guest_memfd.c:123 kvm_gmem_fault+0x1/0x2 [kvm]")]
    splat = scanner.splats[0]
    assert splat.line_number == 2
    assert splat.context[-1].startswith("---[ end trace")
    assert "after the splat" not in splat.text()


@pytest.mark.parametrize("line", [
    "BUG: KASAN: slab-use-after-free in kvm_gmem_release+0x10/0x20",
    "BUG: unable to handle page fault for address: ffff888000000000",
    "WARNING: possible circular locking dependency detected",
    "INFO: task gmemtest:120 blocked for more than 30 seconds.",
    "watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [gmemtest:113]",
    "rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:",
    "UBSAN: shift-out-of-bounds in virt/kvm/guest_memfd.c:10:5",
    "kernel BUG at mm/filemap.c:1500!",
])
def test_each_kind_of_splat_is_recognised(scanner, line):
    assert kinds(scanner.feed(f"[   12.000001] {line}\n".encode())) == [("splat", line)]


@pytest.mark.parametrize("line", [
    "kvm_amd: Nested Virtualization enabled",
    "[ RUN      ] GuestMemfd.CreateRejectsBadFlags",
    "insmod: can't insert '/lib/modules/kernel/arch/x86/kvm/kvm-intel.ko': Operation not supported",
    "The test said: WARNING: CPU: 0 PID: 1 at x",   # not at the start of a line
])
def test_ordinary_lines_are_not_splats(scanner, line):
    assert [e for e in scanner.feed(f"{line}\n".encode()) if e.kind != "marker-start"] == []


def test_panic_is_reported_once_with_its_reason(scanner):
    events = scanner.feed(b"[ 3.6] sysrq: Trigger a crash\n[ 3.6] Kernel panic - not syncing: sysrq triggered crash\n"
                          b"[ 3.7] ---[ end Kernel panic - not syncing: sysrq triggered crash ]---\n")
    assert kinds(events) == [("panic", "sysrq triggered crash")]
    assert scanner.panic == "sysrq triggered crash"


def test_gtest_progress_lines_and_kmsg_lines_mark_cases(scanner):
    events = scanner.feed(b"[ RUN      ] Gmem.Create\n[       OK ] Gmem.Create (3 ms)\n"
                          b"[ 1.0] gmemtest: start Param/Gmem.Size/2\n[  FAILED  ] 1 test, listed below:\n"
                          b"[  SKIPPED ] Gmem.Mmap (0 ms)\n")
    assert kinds(events) == [("marker-start", "Gmem.Create"), ("marker-end", "Gmem.Create"),
                             ("marker-start", "Param/Gmem.Size/2"), ("marker-end", "Gmem.Mmap")]


def test_a_line_split_across_reads_is_scanned_whole(scanner):
    assert scanner.feed(b"[ 1.0] WARNING: CPU: 0 PI") == []
    assert kinds(scanner.feed(b"D: 1 at x.c:1 f+0x0/0x1\n")) == [("splat", "WARNING: CPU: 0 PID: 1 at x.c:1 f+0x0/0x1")]
    assert scanner.last_line == "WARNING: CPU: 0 PID: 1 at x.c:1 f+0x0/0x1"


def test_the_allow_list_silences_a_matching_splat(tmp_path):
    deny, allow = tmp_path / "deny.txt", tmp_path / "allow.txt"
    deny.write_text("# comment\n^WARNING: CPU\n")
    allow.write_text("at arch/x86/kernel/known_harmless.c\n")
    scanner = ConsoleScanner(SplatRules.load(deny, allow))
    assert scanner.feed(b"WARNING: CPU: 0 PID: 1 at arch/x86/kernel/known_harmless.c:3 f\n") == []
    assert len(scanner.feed(b"WARNING: CPU: 0 PID: 1 at virt/kvm/guest_memfd.c:3 f\n")) == 1


@pytest.mark.parametrize("deny_text, allow_text, message", [
    (None, "", "missing"),
    ("# only a comment\n\n", "", "no rules"),
    ("^WARNING: (\n", "", "bad regex"),
    ("^WARNING\n", None, "missing"),
])
def test_broken_rule_files_fail_closed(tmp_path, deny_text, allow_text, message):
    deny, allow = tmp_path / "deny.txt", tmp_path / "allow.txt"
    for path, text in ((deny, deny_text), (allow, allow_text)):
        if text is not None:
            path.write_text(text)
    with pytest.raises(InfraError, match=message):
        SplatRules.load(deny, allow)


def test_a_last_line_without_newline_is_scanned_when_the_guest_is_gone(scanner):
    assert scanner.feed(b"[ 1.0] Kernel panic - not syncing: Fatal exception") == []
    assert kinds(scanner.finish()) == [("panic", "Fatal exception")]
