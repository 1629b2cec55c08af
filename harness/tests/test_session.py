"""The boot loop end to end, with a scripted stand-in for QEMU (no real guest)."""
import json

import pytest

from conftest import FAKE_QEMU, FAKE_SUITE
from gmemharness import guest as guest_module
from gmemharness import program, qemu, session
from gmemharness.outcomes import CaseOutcome, RunOutcome
from gmemharness.progress import Progress

BOOTED = ["stream", {"event": "harness-boot", "kernel": "6.99.0-test", "failed_modules": ""}]
HELLO = ["stream", {"event": "hello", "version": 1, "kernel": "6.99.0-test", "argv": []}]


def start(case):
    return ["stream", {"event": "start", "case": case}]


def end(case, outcome="pass"):
    return ["stream", {"event": "end", "case": case, "outcome": outcome, "message": "", "ms": 1}]


DONE = ["stream", {"event": "done", "passed": 1, "failed": 0, "skipped": 0}]


@pytest.fixture
def guest(monkeypatch, tmp_path):
    """What the fake QEMU plays, one script per boot, written out when a run starts."""
    monkeypatch.setattr(qemu, "qemu_binary", lambda: str(FAKE_QEMU))
    scripts = []
    path = tmp_path / "guest-scripts.json"
    monkeypatch.setenv("FAKE_GUEST_SCRIPTS", str(path))
    real_start = guest_module.start

    def start(*args, **kwargs):
        if not path.exists():
            path.write_text(json.dumps(scripts))
        return real_start(*args, **kwargs)

    monkeypatch.setattr(guest_module, "start", start)
    return scripts


def options(tmp_path, **kw):
    defaults = dict(binary=FAKE_SUITE, out_dir=tmp_path / "out", accel="tcg", run_timeout=60,
                    suite_args=["--fake_cases=Fake.A,Fake.B,Fake.C"])
    return session.RunOptions(**{**defaults, **kw})


def test_results_stream_in_and_the_logs_are_kept(tmp_path, fake_kernel, guest):
    guest.append([["console", "[ 0.1] Linux version 6.99"], BOOTED, HELLO, start("Fake.A"), end("Fake.A"),
                  start("Fake.B"), end("Fake.B", "skip"), start("Fake.C"), end("Fake.C"), DONE])
    run = session.run_kernel(fake_kernel, options(tmp_path))
    assert run.outcome == RunOutcome.OK, run.reason
    assert [c.outcome for c in run.cases.values()] == [CaseOutcome.PASS, CaseOutcome.SKIP, CaseOutcome.PASS]
    assert run.accel == "tcg" and run.boots[0].first_result_s is not None
    assert "Linux version" in (tmp_path / "out/test/boot-1/console.log").read_text()


def test_a_guest_killed_mid_case_keeps_earlier_results_and_names_the_case(tmp_path, fake_kernel, guest):
    guest.append([BOOTED, HELLO, start("Fake.A"), end("Fake.A"), start("Fake.B"), ["kill", None]])
    run = session.run_kernel(fake_kernel, options(tmp_path))
    assert run.outcome == RunOutcome.CRASH
    assert {n: c.outcome for n, c in run.cases.items()} == {
        "Fake.A": CaseOutcome.PASS, "Fake.B": CaseOutcome.CRASH, "Fake.C": CaseOutcome.NOTRUN}


class Notes(Progress):
    def __init__(self):
        self.notes = []

    def note(self, label, message):
        self.notes.append(message)


def test_resume_reboots_without_the_finished_and_crashed_cases(tmp_path, fake_kernel, guest):
    guest.append([BOOTED, HELLO, start("Fake.A"), end("Fake.A"), start("Fake.B"),
                  ["console", "[ 2.0] Kernel panic - not syncing: Fatal exception"], ["exit", 0]])
    guest.append([BOOTED, HELLO, start("Fake.C"), end("Fake.C"), DONE])
    progress = Notes()
    run = session.run_kernel(fake_kernel, options(tmp_path, resume=True), progress)
    assert "boot 2 (tcg) --gtest_filter=*-Fake.A:Fake.B" in progress.notes
    assert {n: (c.outcome, c.boot) for n, c in run.cases.items()} == {
        "Fake.A": (CaseOutcome.PASS, 1), "Fake.B": (CaseOutcome.CRASH, 1), "Fake.C": (CaseOutcome.PASS, 2)}
    assert run.outcome == RunOutcome.CRASH
    cmdline = (tmp_path / "out/test/boot-2/qemu-cmdline.txt").read_text()
    assert "-initrd" in cmdline
    assert len(run.boots) == 2


def test_a_hung_case_is_stopped_at_the_case_timeout(tmp_path, fake_kernel, guest):
    guest.append([BOOTED, HELLO, start("Fake.A"), ["hang", None]])
    run = session.run_kernel(fake_kernel, options(tmp_path, case_timeout=0.5))
    assert run.cases["Fake.A"].outcome == CaseOutcome.TIMEOUT
    assert run.cases["Fake.A"].message == "case timed out"
    assert run.outcome == RunOutcome.TIMEOUT


def test_a_guest_that_never_reports_is_stopped_at_the_boot_timeout(tmp_path, fake_kernel, guest):
    guest.append([["console", "[ 0.0] early boot"], ["hang", None]])
    # Long enough for the fake QEMU to start and print on a loaded machine: the guest hangs anyway.
    run = session.run_kernel(fake_kernel, options(tmp_path, boot_timeout=5))
    assert run.outcome == RunOutcome.TIMEOUT and "early boot" in run.reason


def test_a_suite_whose_probe_hangs_after_hello_is_stopped_at_the_boot_timeout(tmp_path, fake_kernel, guest):
    guest.append([BOOTED, HELLO, ["hang", None]])
    run = session.run_kernel(fake_kernel, options(tmp_path, boot_timeout=3, run_timeout=600))
    assert run.outcome == RunOutcome.TIMEOUT, run.reason
    assert "feature probe did not finish" in run.reason


def test_kvm_that_prints_nothing_falls_back_to_tcg_and_is_remembered(tmp_path, fake_kernel, guest, monkeypatch):
    monkeypatch.setattr(qemu, "initial_accel", lambda requested: "kvm")
    guest.append([["hang", None]])
    guest.append([BOOTED, HELLO, start("Fake.A"), end("Fake.A"), DONE])
    progress = Notes()
    # The hung boot must have taken its script before it is killed, or the next boot plays it:
    # give the fake QEMU time to start on a loaded machine (the boot hangs anyway).
    run = session.run_kernel(fake_kernel, options(tmp_path, accel="auto", kvm_first_output_s=5, kvm_init_s=600,
                                                  suite_args=["--fake_cases=Fake.A"]), progress)
    assert run.outcome == RunOutcome.OK, run.reason
    assert run.accel == "tcg"
    assert any("KVM unusable" in n and "no console output" in n for n in progress.notes)
    assert qemu.remembered_verdict() == "tcg"


def test_kvm_requested_explicitly_but_unusable_is_an_infrastructure_error(tmp_path, fake_kernel, guest):
    guest.append([["stderr", "kvm: failed to set MSR"], ["exit", 1]])
    run = session.run_kernel(fake_kernel, options(tmp_path, accel="kvm"))
    assert run.outcome == RunOutcome.INFRA and "failed to set MSR" in run.reason


def test_a_missing_suite_binary_is_an_infrastructure_error(tmp_path, fake_kernel, guest):
    run = session.run_kernel(fake_kernel, options(tmp_path, binary=tmp_path / "nope"))
    assert run.outcome == RunOutcome.INFRA and "does not exist" in run.reason
    assert not (tmp_path / "out/test/initramfs-base.cpio").exists()


def test_a_program_run_returns_its_output_and_exit_status(tmp_path, fake_kernel, guest):
    guest.append([BOOTED, ["stream", '{"benchmarks": [1, 2]}'],
                  ["stream", {"event": "harness-exit", "status": 0}]])
    result = program.run_program(fake_kernel, FAKE_SUITE, ["--out={port}"], tmp_path, accel="tcg")
    assert result.status == 0 and result.output == '{"benchmarks": [1, 2]}\n'
    cmdline = (tmp_path / "test/program/qemu-cmdline.txt").read_text()
    assert "-accel tcg" in cmdline


def test_a_program_that_never_finishes_says_why(tmp_path, fake_kernel, guest):
    guest.append([BOOTED, ["hang", None]])
    result = program.run_program(fake_kernel, FAKE_SUITE, [], tmp_path, accel="tcg", timeout=0.5)
    assert result.status is None and "still running" in result.reason


def test_every_boot_gets_a_fresh_formatted_scratch_disk_that_is_removed_afterwards(tmp_path, fake_kernel, guest):
    guest.append([["disk", None], BOOTED, HELLO, start("Fake.A"), end("Fake.A"), start("Fake.B"), end("Fake.B"),
                  start("Fake.C"), end("Fake.C"), DONE])
    run = session.run_kernel(fake_kernel, options(tmp_path))
    assert run.outcome == RunOutcome.OK, run.reason
    bootdir = tmp_path / "out/test/boot-1"
    assert f"disk: ext4 {64 << 20}" in (bootdir / "console.log").read_text()
    assert "virtio-blk-pci,drive=scratch" in (bootdir / "qemu-cmdline.txt").read_text()
    assert not (bootdir / "scratch.img").exists()
