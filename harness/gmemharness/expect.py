"""Per-kernel expectation lists: the cases that must PASS on a kernel.

File: <dir>/<kernel label>.txt (or <release>.txt), one case name or glob per line, '#' comments;
a line may start with the outcome it expects, `pass` (the default), `skip` (for a kernel that
lacks the feature: the case may skip, or pass once the suite or kernel learns it, but must not
fail), `flaky` (known to be timing-bound under emulation: may pass, skip, fail or time out, but
must not crash the kernel) or `fail` (a known kernel bug the case catches, explained in the case
and after the line: it must fail; a pass means the bug is gone, and the line must be updated). A glob must match at least one case, and every case it matches must
do that. A case that does anything else, or is missing, breaks the expectation; so does a missing
or empty file, and so does a case no line lists that fails, times out or crashes."""
import fnmatch
from pathlib import Path

from .errors import InfraError
from .outcomes import CaseOutcome
from .results import KernelRun


def expectation_file(directory: Path, run: KernelRun) -> Path | None:
    for name in (run.label, run.release):
        path = directory / f"{name}.txt"
        if name and path.is_file():
            return path
    return None


FLAKY = "flaky"
_OUTCOME_WORDS = {"pass": CaseOutcome.PASS, "skip": CaseOutcome.SKIP, FLAKY: FLAKY, "fail": CaseOutcome.FAIL}
_ACCEPTED = {CaseOutcome.PASS: {CaseOutcome.PASS}, CaseOutcome.SKIP: {CaseOutcome.SKIP, CaseOutcome.PASS},
             FLAKY: {CaseOutcome.PASS, CaseOutcome.SKIP, CaseOutcome.FAIL, CaseOutcome.TIMEOUT},
             CaseOutcome.FAIL: {CaseOutcome.FAIL}}


def read_expectations(path: Path) -> list[tuple[CaseOutcome, str]]:
    """(expected outcome, case name or glob) for each line of `path`."""
    out = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        if len(words) == 2 and words[0] in _OUTCOME_WORDS:
            out.append((_OUTCOME_WORDS[words[0]], words[1]))
        elif len(words) == 1:
            out.append((CaseOutcome.PASS, words[0]))
        else:
            raise InfraError(f"{path}:{number}: expected '[pass|skip|flaky|fail] CASE', got {line.strip()!r}")
    return out


def check(run: KernelRun, expected: list[tuple[CaseOutcome, str]]) -> list[str]:
    """Problems, one line each; empty when every listed case did what its line expects."""
    problems = []
    listed = set()
    for want, pattern in expected:
        matches = [c for name, c in run.cases.items() if fnmatch.fnmatchcase(name, pattern)]
        listed.update(c.name for c in matches)
        if not matches:
            why = f" (run ended: {run.outcome.value}: {run.reason})" if run.reason else ""
            problems.append(f"{run.label}: expected {pattern} to {want.value}, but it did not run{why}")
        for case in matches:
            if case.outcome not in _ACCEPTED[want]:
                problems.append(f"{run.label}: expected {case.name} to {_word(want)}, "
                                f"got {case.outcome.value}{_first_line(case)}")
    for case in run.cases.values():
        if case.name not in listed and case.outcome not in (CaseOutcome.PASS, CaseOutcome.SKIP):
            problems.append(f"{run.label}: {case.name} is in no line and did not pass or skip: "
                            f"{case.outcome.value}{_first_line(case)}")
    return problems


def _word(want) -> str:
    return want if want == FLAKY else want.value


def _first_line(case) -> str:
    return f": {case.message.splitlines()[0]}" if case.message else ""


def check_runs(directory: Path, runs: list[KernelRun]) -> list[str]:
    problems = []
    for run in runs:
        path = expectation_file(directory, run)
        if path is None:
            problems.append(f"{run.label}: no expectation file {directory}/{run.label}.txt "
                            f"(nor {run.release}.txt); write one with --write-expect")
            continue
        expected = read_expectations(path)
        if not expected:
            problems.append(f"{run.label}: {path} lists no case; an empty list would check nothing")
        problems += check(run, expected)
    return problems


def write_expectations(directory: Path, run: KernelRun) -> Path:
    """Record what passed and what skipped in `run` as the kernel's expectation list, to be
    reviewed by hand: a skip recorded here must stay a skip until someone edits the line."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{run.label}.txt"
    kernel = run.label if run.label == run.release else f"{run.label} ({run.release})"
    lines = [f"# What {kernel} must do with each case; written from a run with --write-expect, "
             "then reviewed.", "# Cases that must pass:"]
    lines += sorted(c.name for c in run.cases.values() if c.outcome == CaseOutcome.PASS)
    skipped = sorted((c for c in run.cases.values() if c.outcome == CaseOutcome.SKIP), key=lambda c: c.name)
    if skipped:
        lines.append("# Cases that may skip, but must not fail (the kernel lacks what they need):")
        lines += [f"skip {c.name}  # {c.message.splitlines()[0][:100] if c.message else ''}" for c in skipped]
    failed = sorted(c.name for c in run.cases.values() if c.outcome not in (CaseOutcome.PASS, CaseOutcome.SKIP))
    if failed:
        lines.append("# Not listed: " + ", ".join(failed))
    path.write_text("\n".join(lines) + "\n")
    return path
