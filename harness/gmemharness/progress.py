"""Live progress while kernels run: one line per event on stderr, prefixed with the kernel."""
import sys
import threading
import time

from .outcomes import CaseOutcome
from .results import CaseResult, KernelRun

_MARK = {CaseOutcome.PASS: "ok", CaseOutcome.FAIL: "FAIL", CaseOutcome.SKIP: "skip",
         CaseOutcome.CRASH: "CRASH", CaseOutcome.TIMEOUT: "TIMEOUT", CaseOutcome.NOTRUN: "not run"}


class Progress:
    """Base: ignores everything (used by tests and the pytest plugin's quiet mode)."""

    def note(self, label: str, message: str) -> None: ...
    def case(self, label: str, result: CaseResult) -> None: ...
    def kernel_done(self, run: KernelRun) -> None: ...


class TerminalProgress(Progress):
    def __init__(self, stream=None, verbose: bool = True):
        self.stream = stream or sys.stderr
        self.verbose = verbose
        self.t0 = time.monotonic()
        self._lock = threading.Lock()

    def _print(self, label: str, text: str) -> None:
        with self._lock:
            print(f"[{time.monotonic() - self.t0:6.1f}s] {label}: {text}", file=self.stream, flush=True)

    def note(self, label: str, message: str) -> None:
        self._print(label, message)

    def case(self, label: str, result: CaseResult) -> None:
        if not self.verbose and result.outcome in (CaseOutcome.PASS, CaseOutcome.SKIP):
            return
        detail = f" ({result.message.splitlines()[0]})" if result.message else ""
        ms = f" {result.ms} ms" if result.ms is not None else ""
        self._print(label, f"{_MARK[result.outcome]:7} {result.name}{ms}{detail}")

    def kernel_done(self, run: KernelRun) -> None:
        counts = run.counts()
        summary = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
        first = f", first result after {run.first_result_s:.1f}s" if run.first_result_s else ""
        cpu = [b.qemu_cpu_s for b in run.boots if b.qemu_cpu_s is not None]
        first += f", QEMU used {sum(cpu):.1f} CPU-s" if cpu else ""
        reason = f": {run.reason}" if run.reason else ""
        self._print(run.label, f"{run.outcome.value.upper()} [{summary or 'no cases'}] in "
                               f"{run.total_s:.1f}s on {run.accel or '?'}{first}{reason}")
