"""Turns one boot's stream events, console events and ending into case results and a run outcome.

Pure logic, fed in arrival order by the boot loop (or by tests): nothing here touches QEMU."""
from dataclasses import dataclass

from .console import ConsoleEvent
from .outcomes import SEVERITY, CaseOutcome, RunOutcome
from .results import CaseResult, KernelRun


@dataclass
class BootEnd:
    """How the guest went away."""
    qemu_status: int | None = None     # negative: killed by that signal (by us on a timeout, or by someone else)
    case_timeout: bool = False         # we killed it: a case ran longer than allowed
    boot_timeout: bool = False         # we killed it: no result in time / the boot took too long
    qemu_stderr: str = ""
    killed_by_user: bool = False


class BootRecorder:
    def __init__(self, run: KernelRun, boot_number: int = 1, on_case=None):
        self.run = run
        self.boot = boot_number
        self.on_case = on_case or (lambda result: None)   # progress callback
        self.running: str | None = None                  # stream-side current case
        self.marker_case: str | None = None              # console-side, from kmsg markers
        self.saw_markers = False
        self.booted = self.hello = self.done = False
        self.started_any = False                          # a case's start event has arrived
        self.suite_status: int | None = None
        self.no_kvm = False
        self.failed_modules = ""
        self.panic: str | None = None
        self.panic_case: str | None = None
        self.splats_in_case: dict[str, list[str]] = {}
        self.outcome, self.reason = RunOutcome.OK, ""

    # -- the result stream -------------------------------------------------------------------
    def on_stream(self, event: dict) -> None:
        kind = event["event"]
        if kind == "harness-boot":
            self.booted = True
            self.failed_modules = event.get("failed_modules", "")
        elif kind == "harness-nokvm":
            self.no_kvm = True
        elif kind == "harness-exit":
            self.suite_status = int(event.get("status", -1))
        elif kind == "hello":
            self.hello = True
            self.run.hello = event
        elif kind == "probe":
            self.run.probe = event
        elif kind == "start":
            self.running = event.get("case", "?")
            self.started_any = True
        elif kind == "end":
            self._end_case(event)
        elif kind == "done":
            self.done = True

    def _end_case(self, event: dict) -> None:
        name = event.get("case", "?")
        try:
            outcome = CaseOutcome(event.get("outcome"))
        except ValueError:
            outcome, event = CaseOutcome.FAIL, dict(event, message=f"unknown outcome {event.get('outcome')!r}")
        result = CaseResult(name=name, outcome=outcome, message=event.get("message") or "",
                            ms=event.get("ms"), boot=self.boot)
        self._apply_splats(result)
        self.run.cases[name] = result
        if self.running == name:
            self.running = None
        self.on_case(result)

    # -- the console -------------------------------------------------------------------------
    def on_console(self, event: ConsoleEvent) -> None:
        if event.kind.startswith("marker-"):
            self.saw_markers = True
            self.marker_case = event.text if event.kind == "marker-start" else None
        elif event.kind == "panic":
            self.panic = event.text
            self.panic_case = self._current_case()
        elif event.kind == "splat":
            case = self._current_case()
            text = event.splat.text() if event.splat else event.text
            if case is None:
                self.run.kernel_splats.append(text)
            else:
                self.splats_in_case.setdefault(case, []).append(text)
                if case in self.run.cases:   # the splat arrived after the case's end event
                    self._apply_splats(self.run.cases[case])

    def _current_case(self) -> str | None:
        # kmsg markers order splats exactly; without them, the case whose start arrived last.
        return self.marker_case if self.saw_markers else self.running

    def _apply_splats(self, result: CaseResult) -> None:
        splats = self.splats_in_case.get(result.name, [])
        new = [s for s in splats if s not in result.splats]
        if not new:
            return
        result.splats += new
        if result.outcome in (CaseOutcome.PASS, CaseOutcome.SKIP):
            result.outcome = CaseOutcome.FAIL
            titles = "; ".join(s.splitlines()[0] for s in new)
            result.message = f"kernel splat: {titles}" + (f" ({result.message})" if result.message else "")

    # -- the end -----------------------------------------------------------------------------
    def finish(self, end: BootEnd, last_console_line: str = "") -> None:
        """Classify how this boot ended (self.outcome, self.reason); conclude() combines boots."""
        run = self.run
        where = f" (last console line: {last_console_line!r})" if last_console_line else ""
        if self.running is not None:
            self._finish_running_case(end, where)
        elif end.boot_timeout:
            stage = ("the suite's first result" if not self.hello else
                     "the first case (the suite's feature probe did not finish)" if not self.started_any else
                     "the end of the run")
            self._set(RunOutcome.TIMEOUT, f"timed out waiting for {stage}{where}")
        elif self.panic:
            self._set(RunOutcome.CRASH, f"kernel panic outside any case: {self.panic}")
        elif self.no_kvm:
            modules = f" (modules that failed to load: {self.failed_modules})" if self.failed_modules else ""
            self._set(RunOutcome.INFRA, f"kernel {run.label} has no /dev/kvm after loading its "
                                        f"modules{modules}: a kernel without KVM cannot run the suite")
        elif not self.booted:
            if end.qemu_status not in (0, None) or end.qemu_stderr:
                self._set(RunOutcome.INFRA, f"QEMU failed (exit {end.qemu_status}): "
                                            f"{end.qemu_stderr.strip()[-400:]}")
            else:
                self._set(RunOutcome.CRASH, f"the guest stopped before /init reported{where}")
        elif not self.hello:
            self._set(RunOutcome.INFRA, f"the suite binary did not start in the guest "
                                        f"(exit status {self.suite_status}){where}")
        elif not self.done:
            if self.suite_status is None:
                self._set(RunOutcome.CRASH, f"the guest died between cases{where}")
            else:
                self._set(RunOutcome.FAIL, f"the suite exited with status {self.suite_status} "
                                           "before reporting done")

    def _finish_running_case(self, end: BootEnd, where: str) -> None:
        name = self.running
        if end.case_timeout:
            outcome, run_outcome, msg = CaseOutcome.TIMEOUT, RunOutcome.TIMEOUT, "case timed out"
        elif self.panic:
            outcome, run_outcome, msg = CaseOutcome.CRASH, RunOutcome.CRASH, f"kernel panic: {self.panic}"
        elif self.suite_status is not None:
            outcome, run_outcome = CaseOutcome.CRASH, RunOutcome.FAIL
            msg = f"the suite process died with status {self.suite_status} during the case"
        elif end.boot_timeout:
            outcome, run_outcome, msg = CaseOutcome.TIMEOUT, RunOutcome.TIMEOUT, "the boot's time limit ran out during the case"
        else:
            outcome, run_outcome = CaseOutcome.CRASH, RunOutcome.CRASH
            msg = f"the guest died during the case (QEMU exit {end.qemu_status}){where}"
        result = CaseResult(name=name, outcome=outcome, message=msg, boot=self.boot)
        result.splats = list(self.splats_in_case.get(name, []))
        self.run.cases[name] = result
        self.running = None
        self._set(run_outcome, f"{outcome.value} in {name}: {msg}")
        self.on_case(result)

    def _set(self, outcome: RunOutcome, reason: str) -> None:
        self.outcome, self.reason = outcome, reason

    @property
    def interrupted_case(self) -> str | None:
        """The case a crash or timeout ended (for resuming after it)."""
        return next((c.name for c in self.run.cases.values()
                     if c.boot == self.boot and c.outcome in (CaseOutcome.CRASH, CaseOutcome.TIMEOUT)), None)


def conclude(run: KernelRun, boots: list[BootRecorder], selected: list[str] | None = None) -> None:
    """The kernel's outcome from all its boots: the worst boot, else failures among the cases,
    else splats outside any case. Selected cases that never started become NOTRUN."""
    for name in selected or []:
        run.cases.setdefault(name, CaseResult(name=name, outcome=CaseOutcome.NOTRUN,
                                              message="never started: an earlier crash or timeout ended the boot"))
    worst_boot = max(boots, key=lambda b: SEVERITY.index(b.outcome), default=None)
    if worst_boot is not None and worst_boot.outcome != RunOutcome.OK:
        run.outcome, run.reason = worst_boot.outcome, worst_boot.reason
    elif any(c.outcome in _FAILED for c in run.cases.values()):
        failed = [c.name for c in run.cases.values() if c.outcome in _FAILED]
        run.outcome, run.reason = RunOutcome.FAIL, f"{len(failed)} case(s) failed: {', '.join(failed[:5])}"
    elif run.kernel_splats:
        run.outcome = RunOutcome.FAIL
        run.reason = "kernel splat outside any case: " + run.kernel_splats[0].splitlines()[0]
    else:
        run.outcome, run.reason = RunOutcome.OK, ""


_FAILED = (CaseOutcome.FAIL, CaseOutcome.CRASH, CaseOutcome.TIMEOUT, CaseOutcome.NOTRUN)
