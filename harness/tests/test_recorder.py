"""Classification of a boot from its stream and console, including crashes in the middle."""
from gmemharness.console import ConsoleScanner, SplatRules
from gmemharness.outcomes import CaseOutcome, RunOutcome
from gmemharness.recorder import BootEnd, BootRecorder, conclude
from gmemharness.results import KernelRun

BOOTED = {"event": "harness-boot", "kernel": "7.2", "failed_modules": ""}
HELLO = {"event": "hello", "version": 1, "kernel": "7.2", "argv": []}


def start(case):
    return {"event": "start", "case": case}


def end(case, outcome="pass", message=""):
    return {"event": "end", "case": case, "outcome": outcome, "message": message, "ms": 2}


DONE = {"event": "done", "passed": 0, "failed": 0, "skipped": 0}


class Boot:
    """Feeds a scripted boot to a recorder: stream events and console text, in order."""

    def __init__(self, selected=None):
        self.run = KernelRun(label="7.2")
        self.recorder = BootRecorder(self.run)
        self.scanner = ConsoleScanner(SplatRules.load())
        self.reported = []
        self.recorder.on_case = self.reported.append
        self.selected = selected

    def stream(self, *events):
        for e in events:
            self.recorder.on_stream(e)
        return self

    def console(self, text):
        for e in self.scanner.feed(text.encode()):
            self.recorder.on_console(e)
        return self

    def finish(self, **end):
        self.recorder.finish(BootEnd(**end), self.scanner.last_line)
        conclude(self.run, [self.recorder], self.selected)
        return self.run

    def outcomes(self):
        return {name: c.outcome for name, c in self.run.cases.items()}


def test_a_clean_run_reports_each_case_and_ok():
    boot = Boot().stream(BOOTED, HELLO, start("A.pass"), end("A.pass"), start("A.skip"),
                         end("A.skip", "skip", "needs hugetlb"), DONE)
    run = boot.finish(qemu_status=0)
    assert run.outcome == RunOutcome.OK and run.reason == ""
    assert boot.outcomes() == {"A.pass": CaseOutcome.PASS, "A.skip": CaseOutcome.SKIP}
    assert run.cases["A.skip"].message == "needs hugetlb"
    assert [r.name for r in boot.reported] == ["A.pass", "A.skip"]


def test_a_failed_case_makes_the_run_fail():
    run = Boot().stream(BOOTED, HELLO, start("A.f"), end("A.f", "fail", "Expected 0"), DONE).finish(qemu_status=0)
    assert run.outcome == RunOutcome.FAIL
    assert "A.f" in run.reason


def test_a_panic_mid_case_crashes_that_case_and_keeps_earlier_results():
    boot = Boot(selected=["A.one", "A.two", "A.three"])
    boot.stream(BOOTED, HELLO, start("A.one"), end("A.one"), start("A.two"))
    boot.console("[ 3.6] Kernel panic - not syncing: Fatal exception\n")
    run = boot.finish(qemu_status=0)
    assert boot.outcomes() == {"A.one": CaseOutcome.PASS, "A.two": CaseOutcome.CRASH,
                               "A.three": CaseOutcome.NOTRUN}
    assert run.outcome == RunOutcome.CRASH
    assert "A.two" in run.reason and "Fatal exception" in run.cases["A.two"].message


def test_a_guest_killed_mid_case_is_a_crash_of_that_case():
    boot = Boot().stream(BOOTED, HELLO, start("A.one"), end("A.one"), start("A.two"))
    run = boot.finish(qemu_status=-9)
    assert boot.outcomes() == {"A.one": CaseOutcome.PASS, "A.two": CaseOutcome.CRASH}
    assert run.outcome == RunOutcome.CRASH
    assert "QEMU exit -9" in run.cases["A.two"].message


def test_a_case_over_its_time_limit_is_a_timeout():
    boot = Boot().stream(BOOTED, HELLO, start("A.hang"))
    run = boot.finish(case_timeout=True)
    assert boot.outcomes() == {"A.hang": CaseOutcome.TIMEOUT}
    assert run.outcome == RunOutcome.TIMEOUT


def test_no_result_before_the_boot_deadline_is_a_timeout_naming_the_last_console_line():
    run = Boot().console("[ 0.1] Booting the kernel\n").finish(boot_timeout=True)
    assert run.outcome == RunOutcome.TIMEOUT
    assert "first result" in run.reason and "Booting the kernel" in run.reason


def test_a_kernel_without_kvm_is_an_infrastructure_error():
    run = Boot().stream(dict(BOOTED, failed_modules="kvm_amd"), {"event": "harness-nokvm"}).finish(qemu_status=0)
    assert run.outcome == RunOutcome.INFRA
    assert "no /dev/kvm" in run.reason and "kvm_amd" in run.reason


def test_qemu_that_fails_to_start_is_an_infrastructure_error():
    run = Boot().finish(qemu_status=1, qemu_stderr="qemu: could not load kernel")
    assert run.outcome == RunOutcome.INFRA and "could not load kernel" in run.reason


def test_a_suite_that_never_says_hello_is_an_infrastructure_error():
    run = Boot().stream(BOOTED, {"event": "harness-exit", "status": 127}).finish(qemu_status=0)
    assert run.outcome == RunOutcome.INFRA and "127" in run.reason


def test_the_suite_dying_mid_case_crashes_the_case_but_not_the_kernel():
    boot = Boot().stream(BOOTED, HELLO, start("A.segv"), {"event": "harness-exit", "status": 139})
    run = boot.finish(qemu_status=0)
    assert boot.outcomes() == {"A.segv": CaseOutcome.CRASH}
    assert run.outcome == RunOutcome.FAIL and "139" in run.cases["A.segv"].message


def test_a_splat_fails_the_running_case_even_if_it_passed():
    boot = Boot().stream(BOOTED, HELLO, start("A.warn"))
    boot.console("[ 2.0] WARNING: CPU: 0 PID: 9 at virt/kvm/guest_memfd.c:1 f+0x0/0x1\n")
    boot.stream(end("A.warn"), start("A.next"), end("A.next"), DONE)
    run = boot.finish(qemu_status=0)
    assert boot.outcomes() == {"A.warn": CaseOutcome.FAIL, "A.next": CaseOutcome.PASS}
    assert run.cases["A.warn"].message.startswith("kernel splat: WARNING: CPU: 0")
    assert run.outcome == RunOutcome.FAIL


def test_console_markers_charge_a_splat_to_the_right_case_whatever_the_stream_says():
    # The host read the whole stream before the console: without markers the splat would
    # land on A.second.
    boot = Boot().stream(BOOTED, HELLO, start("A.first"), end("A.first"), start("A.second"))
    boot.console("[ RUN      ] A.first\n[ 1.0] BUG: unable to handle page fault\n[       OK ] A.first (1 ms)\n"
                 "[ RUN      ] A.second\n")
    boot.stream(end("A.second"), DONE)
    boot.finish(qemu_status=0)
    assert boot.outcomes() == {"A.first": CaseOutcome.FAIL, "A.second": CaseOutcome.PASS}


def test_a_splat_outside_any_case_fails_the_run_but_no_case():
    boot = Boot().console("[ 0.5] WARNING: CPU: 0 PID: 1 at arch/x86/kernel/x.c:1 boot+0x0/0x1\n")
    run = boot.stream(BOOTED, HELLO, start("A.one"), end("A.one"), DONE).finish(qemu_status=0)
    assert boot.outcomes() == {"A.one": CaseOutcome.PASS}
    assert run.outcome == RunOutcome.FAIL and "outside any case" in run.reason


def test_resumed_boots_combine_into_one_run_with_the_worst_outcome():
    run = KernelRun(label="7.2")
    first = BootRecorder(run, 1)
    for e in (BOOTED, HELLO, start("A.one"), end("A.one"), start("A.crash")):
        first.on_stream(e)
    first.finish(BootEnd(qemu_status=0))
    assert first.interrupted_case == "A.crash"
    second = BootRecorder(run, 2)
    for e in (BOOTED, HELLO, start("A.three"), end("A.three"), DONE):
        second.on_stream(e)
    second.finish(BootEnd(qemu_status=0))
    conclude(run, [first, second], ["A.one", "A.crash", "A.three"])
    assert {n: (c.outcome, c.boot) for n, c in run.cases.items()} == {
        "A.one": (CaseOutcome.PASS, 1), "A.crash": (CaseOutcome.CRASH, 1), "A.three": (CaseOutcome.PASS, 2)}
    assert run.outcome == RunOutcome.CRASH


def test_a_listed_case_the_guest_never_ran_is_not_run_and_fails_the_run():
    run = Boot(selected=["A.one", "A.lost"]).stream(BOOTED, HELLO, start("A.one"), end("A.one"), DONE).finish(qemu_status=0)
    assert run.cases["A.lost"].outcome == CaseOutcome.NOTRUN
    assert run.outcome == RunOutcome.FAIL
