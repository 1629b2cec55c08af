"""End to end, with real kernels: Debian's linux-source-7.3 plus the project's 5-patch series in
which patch 3 makes KVM_CREATE_GUEST_MEMFD accept unknown flags. Series bisect must name
patch 3, and `git bisect run harness/bisect-run` over a git repository of the same tree must
name the commit made from patch 3.

Slow (kernel builds: minutes cold, about a minute per step warm), so it runs only on demand:

    cd harness && /usr/bin/python3 -m pytest -m e2e -s tests/test_bisect_e2e.py

GMEMTEST_SUITE names the suite binary (default build/cases/gmemtest); GMEMTEST_E2E_WORK the directory
kept between runs for incremental builds (default: the harness cache's e2e-bisect)."""
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from gmemharness import bisect, bisect_step, cache, debsource, series

HARNESS = Path(__file__).resolve().parents[1]

SERIES = HARNESS / "testdata" / "series-invalid-flag"
FILTER = "Creation.*"
CULPRIT = 3

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module", autouse=True)
def only_when_asked(request):   # module scope: decided before the other (module) fixtures run
    if "e2e" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("slow (builds kernels): run with -m e2e")


@pytest.fixture(scope="module")
def suite() -> Path:
    path = Path(os.environ.get("GMEMTEST_SUITE", bisect_step.DEFAULT_SUITE))
    cases = bisect_step.list_selected_cases(path, FILTER)   # fails the test when unusable
    assert any("Unknown" in c or "Invalid" in c for c in cases), cases
    return path


@pytest.fixture(scope="module")
def work() -> Path:
    path = Path(os.environ.get("GMEMTEST_E2E_WORK", cache.cache_root() / "e2e-bisect"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def source_tree() -> Path:
    return debsource.fetch_source_tree("7.3")


def test_series_bisect_names_patch_3(source_tree, suite, work, capsys):
    start = time.monotonic()
    code = bisect.bisect_series_main(["--tree", str(source_tree), "--series", str(SERIES),
                                      "--work", str(work / "series"), "--filter", FILTER,
                                      "--suite", str(suite)])
    report = (work / "series" / "report.txt").read_text()
    with capsys.disabled():
        print(f"\n{report}\nseries bisect took {time.monotonic() - start:.0f} s")
    assert code == 0, report
    culprit = series.load_series(SERIES)[CULPRIT - 1]
    assert f"first bad: {culprit}" in report
    assert "verified: prefix before it passes, prefix with it fails" in report


def git(tree: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(tree), "-c", "user.name=gmemtest",
                           "-c", "user.email=gmemtest@example.invalid", *args],
                          check=check, capture_output=True, text=True)


def series_repository(source_tree: Path, root: Path) -> Path:
    """root/tree: a git repository of the source tree with one commit per patch (reused)."""
    tree = root / "tree"
    subjects = [p.subject for p in series.load_series(SERIES)]
    if (tree / ".git").is_dir():
        git(tree, "bisect", "reset", check=False)
        log = git(tree, "log", "--format=%s", "-n", str(len(subjects)), check=False).stdout
        if log.splitlines() == subjects[::-1]:
            return tree
        shutil.rmtree(tree)
    tree.mkdir(parents=True)
    subprocess.run(["cp", "-a", f"{source_tree}/.", str(tree)], check=True)
    git(tree, "init", "-q")
    git(tree, "add", "-A", "--force")   # Debian's .gitignore ignores the whole top level
    git(tree, "commit", "-q", "-m", "base: Debian linux-source-7.3")
    git(tree, "am", "-q", *[str(p) for p in sorted(SERIES.glob("*.patch"))])
    return tree


def test_git_bisect_run_names_the_same_change(source_tree, suite, work, capsys):
    tree = series_repository(source_tree, work / "git")
    git(tree, "bisect", "start", "HEAD", "HEAD~5")
    start = time.monotonic()
    try:
        proc = git(tree, "bisect", "run", str(HARNESS / "bisect-run"), "--filter", FILTER,
                   "--suite", str(suite), "--work", str(work / "git"), check=False)
    finally:
        git(tree, "bisect", "reset", check=False)
    with capsys.disabled():
        print(f"\n{proc.stdout}\n{proc.stderr}\ngit bisect run took {time.monotonic() - start:.0f} s")
    assert proc.returncode == 0, proc.stderr
    first_bad = next(line.split()[0] for line in proc.stdout.splitlines()
                     if line.endswith("is the first bad commit"))
    subject = git(tree, "log", "-1", "--format=%s", first_bad).stdout.strip()
    assert subject == series.load_series(SERIES)[CULPRIT - 1].subject
