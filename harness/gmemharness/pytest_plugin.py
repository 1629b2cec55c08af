"""pytest plugin: each gtest case on each kernel becomes a pytest test.

    cd harness && /usr/bin/python3 -m pytest vmtests --gmem-kernel 7.2 --gmem-kernel 6.12

Cases are listed on the host (--gtest_list_tests). Each kernel boots once, in the background,
when its first case is reached; a test waits only for its own case's result. pass/fail/skip map to
pytest's, with the suite's message as the reason; a crash, timeout or a case that never ran is an
error (raised in setup), so pytest's summary tells them from failures."""
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from . import gtest, kernels, matrix, session
from .cli import DEFAULT_BINARY, DEFAULT_OUT
from .errors import InfraError
from .outcomes import CaseOutcome, RunOutcome
from .progress import Progress
from .results import CaseResult, KernelRun

FIXTURE = "gmemtest_case"
DEFAULT_KERNEL = "7.2"


def pytest_addoption(parser):
    group = parser.getgroup("gmemtest", "gmemtest cases inside booted kernels")
    group.addoption("--gmem-kernel", action="append", default=[], help="kernel to boot (repeatable; default 7.2)")
    group.addoption("--gmem-binary", type=Path, default=DEFAULT_BINARY)
    group.addoption("--gmem-filter", default=None, help="--gtest_filter")
    group.addoption("--gmem-accel", default="auto", choices=("auto", "kvm", "tcg"))
    group.addoption("--gmem-modules", type=Path, default=None, help="modules dir for a bzImage kernel")
    group.addoption("--gmem-out", type=Path, default=DEFAULT_OUT)
    group.addoption("--gmem-resume", action="store_true", help="reboot and go on after a crashed case")
    group.addoption("--gmem-case-timeout", type=float, default=120)


def pytest_generate_tests(metafunc):
    if FIXTURE not in metafunc.fixturenames:
        return
    opt = metafunc.config.getoption
    cases = gtest.list_cases(opt("--gmem-binary"), opt("--gmem-filter")) or ["(no cases listed)"]
    params = [(k, c) for k in opt("--gmem-kernel") or [DEFAULT_KERNEL] for c in cases]
    metafunc.parametrize(FIXTURE, params, ids=[f"{k}::{c}" for k, c in params], indirect=True)


class _Runs:
    """Boots each kernel once in the background and hands out case results as they stream in."""

    def __init__(self, config):
        self.config = config
        self.runs: dict[str, KernelRun] = {}
        self.results: dict[tuple[str, str], CaseResult] = {}
        self.finished: set[str] = set()
        self.cond = threading.Condition()
        self.pool = ThreadPoolExecutor(max_workers=2)

    def start_all(self) -> None:
        """Every kernel starts with the first case, so kernels boot in parallel."""
        with self.cond:
            if self.runs:
                return
            kernels_wanted = self.config.getoption("--gmem-kernel") or [DEFAULT_KERNEL]
            self.runs = {k: KernelRun(label=k) for k in kernels_wanted}
        for kernel in kernels_wanted:
            self.pool.submit(self._run, kernel)

    def _run(self, kernel: str) -> None:
        opt = self.config.getoption
        try:
            source = kernels.resolve(kernel, opt("--gmem-modules"))
            opts = session.RunOptions(binary=opt("--gmem-binary").resolve(), out_dir=opt("--gmem-out").resolve(),
                                      gtest_filter=opt("--gmem-filter"), accel=opt("--gmem-accel"),
                                      resume=opt("--gmem-resume"), case_timeout=opt("--gmem-case-timeout"))
            run = session.run_kernel(source, opts, progress=_Relay(self, kernel))
        except InfraError as e:
            run = KernelRun(label=kernel, outcome=RunOutcome.INFRA, reason=str(e))
        except Exception as e:  # a bug here must not leave tests waiting forever
            run = KernelRun(label=kernel, outcome=RunOutcome.INFRA, reason=f"harness error: {e!r}")
        with self.cond:
            self.runs[kernel] = run
            for name, result in run.cases.items():
                self.results[(kernel, name)] = result
            self.finished.add(kernel)
            self.cond.notify_all()

    def wait(self, kernel: str, case: str) -> tuple[CaseResult | None, KernelRun]:
        self.start_all()
        with self.cond:
            self.cond.wait_for(lambda: (kernel, case) in self.results or kernel in self.finished)
            return self.results.get((kernel, case)), self.runs[kernel]

    def wait_all(self) -> list[KernelRun]:
        with self.cond:
            self.cond.wait_for(lambda: self.finished >= set(self.runs))
            return list(self.runs.values())


class _Relay(Progress):
    def __init__(self, runs: _Runs, kernel: str):
        self.runs, self.kernel = runs, kernel

    def case(self, label: str, result: CaseResult) -> None:
        with self.runs.cond:
            self.runs.results[(self.kernel, result.name)] = result
            self.runs.cond.notify_all()


def pytest_configure(config):
    config._gmem_runs = _Runs(config)


@pytest.fixture
def gmemtest_case(request) -> CaseResult:
    kernel, case = request.param
    result, run = request.config._gmem_runs.wait(kernel, case)
    if result is None:
        raise RuntimeError(f"{case} has no result on {kernel}: {run.outcome.value}: {run.reason}")
    if result.outcome in (CaseOutcome.CRASH, CaseOutcome.TIMEOUT, CaseOutcome.NOTRUN):
        raise RuntimeError(f"{result.outcome.value.upper()}: {result.message}\n" + "\n\n".join(result.splats))
    return result


def check(result: CaseResult) -> None:
    """Turn a case's result into pytest's verdict with the suite's reason."""
    if result.outcome == CaseOutcome.SKIP:
        pytest.skip(result.message or "skipped")
    if result.outcome != CaseOutcome.PASS:
        pytest.fail("\n\n".join([result.message] + result.splats), pytrace=False)


def pytest_terminal_summary(terminalreporter, config):
    runs = config._gmem_runs.wait_all()
    if runs:
        terminalreporter.section("gmemtest kernels")
        terminalreporter.write(matrix.terminal(runs))
        for run in runs:
            if run.reason:
                terminalreporter.write_line(f"{run.label}: {run.outcome.value}: {run.reason}")


def pytest_unconfigure(config):
    runs = getattr(config, "_gmem_runs", None)
    if runs:
        runs.pool.shutdown(wait=False, cancel_futures=True)
