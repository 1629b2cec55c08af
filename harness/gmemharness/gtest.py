"""GoogleTest conventions the harness relies on: listing cases, and filters for resuming."""
import subprocess
from pathlib import Path


def parse_list_tests(text: str) -> list[str]:
    """Case names (`Suite.Name`, `Prefix/Suite.Name/3`) from --gtest_list_tests output."""
    cases, suite = [], None
    for line in text.splitlines():
        body = line.split("#", 1)[0].rstrip()
        if not body.strip():
            continue
        if not line[0].isspace():
            suite = body.strip()
        elif suite is not None:
            cases.append(suite + body.strip())
    return cases


def list_cases(binary: Path, gtest_filter: str | None, extra_args: list[str] = (),
               timeout: float = 60) -> list[str] | None:
    """The selected cases, by running the binary's listing on the host (it never opens /dev/kvm).
    None when the binary cannot run here, in which case the run has no list to check against."""
    args = [str(binary), "--gtest_list_tests", *extra_args] + (
        [f"--gtest_filter={gtest_filter}"] if gtest_filter else [])
    try:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return parse_list_tests(proc.stdout) if proc.returncode == 0 else None


def exclude(gtest_filter: str | None, names) -> str:
    """`gtest_filter` narrowed to leave out `names` (gtest syntax: POSITIVE[-NEGATIVE])."""
    names = list(names)
    base = gtest_filter or "*"
    if not names:
        return base
    positive, sep, negative = base.partition("-")
    negatives = ([negative] if sep and negative else []) + names
    return f"{positive or '*'}-{':'.join(negatives)}"
