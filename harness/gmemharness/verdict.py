"""Turn guest runs into a bisection verdict (good / bad / skip) and an exit code.

Exit codes follow `git bisect run`: 0 good, 1 bad, 125 skip (this commit cannot be tested:
build failure, boot failure, infrastructure error, no selected case could run). Bad input that
is the same at every commit (not a kernel tree, dirty tree, missing fragment, a filter that
selects nothing) exits 128, which makes git bisect stop instead of skipping every commit.
"""
from dataclasses import dataclass

GOOD, BAD, SKIP = "good", "bad", "skip"
EXIT_GOOD, EXIT_BAD, EXIT_SKIP, EXIT_ABORT = 0, 1, 125, 128
EXIT_CODES = {GOOD: EXIT_GOOD, BAD: EXIT_BAD, SKIP: EXIT_SKIP}

# Flaky steps (some runs good, some bad): "bad" follows syzkaller (one failure is enough),
# "skip" leaves the commit out of the search.
FLAKY_POLICIES = (BAD, SKIP)
# More than this share of runs skipped (boot or infrastructure trouble) skips the step.
SKIP_SHARE = 2 / 3


@dataclass
class Verdict:
    kind: str       # good, bad, skip
    reason: str

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.kind]


def judge_run(run) -> Verdict:
    """The verdict of one run of the suite on a kernel (a results.KernelRun).

    A kernel that never got the suite started (no hello: it did not boot, QEMU failed, no
    /dev/kvm) cannot be tested: skip. Once the suite ran, a failed, crashed or timed-out case,
    or a crash or splat outside the cases, is bad."""
    outcome = run.outcome.value
    if outcome == "infra" or run.hello is None:
        return Verdict(SKIP, f"boot or infrastructure failure ({outcome}): {run.reason}")
    broken = [c for c in run.cases.values() if c.outcome.value in ("fail", "crash", "timeout")]
    if broken:
        first = broken[0]
        return Verdict(BAD, f"{first.name} {first.outcome.value}: {first_line(first.message)}".strip())
    if outcome != "ok":
        return Verdict(BAD, f"{outcome}: {run.reason}")
    passed = [c for c in run.cases.values() if c.outcome.value == "pass"]
    if passed:
        return Verdict(GOOD, f"{len(passed)} case(s) passed")
    if not run.cases:
        return Verdict(SKIP, "no selected case ran")
    reasons = sorted({c.message for c in run.cases.values() if c.message})
    return Verdict(SKIP, "every selected case skipped: " + ("; ".join(reasons) or "no reason given"))


def combine(verdicts: list[Verdict], flaky: str = BAD) -> Verdict:
    """One verdict for a step from its repeated runs (the flake rule)."""
    if not verdicts:
        raise ValueError("no runs to combine")
    if flaky not in FLAKY_POLICIES:
        raise ValueError(f"flaky policy must be one of {FLAKY_POLICIES}, not {flaky!r}")
    count = {kind: sum(v.kind == kind for v in verdicts) for kind in (GOOD, BAD, SKIP)}
    tally = f"{count[GOOD]} good, {count[BAD]} bad, {count[SKIP]} skipped of {len(verdicts)} runs"
    first = {kind: next((v.reason for v in verdicts if v.kind == kind), "") for kind in count}
    if count[SKIP] > SKIP_SHARE * len(verdicts) or count[GOOD] + count[BAD] == 0:
        return Verdict(SKIP, f"{tally}; {first[SKIP]}")
    if count[BAD] and count[GOOD]:
        return Verdict(flaky, f"flaky ({tally}); counted as {flaky}: {first[BAD]}")
    kind = BAD if count[BAD] else GOOD
    return Verdict(kind, first[kind] if len(verdicts) == 1 else f"{tally}; {first[kind]}")


def first_line(text: str, limit: int = 200) -> str:
    """The first line of a (possibly long, multi-line) message, cut at `limit` characters."""
    line = text.strip().split("\n", 1)[0]
    return line if len(line) <= limit else line[:limit] + "..."
