"""Outcomes of a case and of a run, and the exit codes the CLI maps them to."""
import enum


class CaseOutcome(str, enum.Enum):
    PASS = "pass"
    FAIL = "fail"          # the case failed, or a kernel splat happened while it ran
    SKIP = "skip"
    CRASH = "crash"        # the kernel (or the suite process) died while the case ran
    TIMEOUT = "timeout"    # the case ran longer than the per-case timeout
    NOTRUN = "notrun"      # selected but never started: an earlier crash or timeout ended the boot

    @property
    def short(self) -> str:
        return {"pass": "PASS", "fail": "FAIL", "skip": "SKIP", "crash": "CRASH",
                "timeout": "TIME", "notrun": "----"}[self.value]


class RunOutcome(str, enum.Enum):
    """How one kernel's run ended; ordered from best to worst for combining several kernels."""
    OK = "ok"
    FAIL = "fail"
    TIMEOUT = "timeout"
    CRASH = "crash"
    INFRA = "infra"


# Distinct exit codes (2 stays argparse's usage error).
EXIT_CODES = {
    RunOutcome.OK: 0,
    RunOutcome.FAIL: 1,
    RunOutcome.CRASH: 3,
    RunOutcome.TIMEOUT: 4,
    RunOutcome.INFRA: 5,
}
EXIT_EXPECTATIONS = 6   # the run itself finished, but an expected case did not pass

SEVERITY = [RunOutcome.OK, RunOutcome.FAIL, RunOutcome.TIMEOUT, RunOutcome.CRASH, RunOutcome.INFRA]


def worst(outcomes) -> RunOutcome:
    return max(outcomes, key=SEVERITY.index, default=RunOutcome.OK)
