"""README's bisect section, run as written: `git bisect run .../harness/bisect-run --filter ...`
in a (fake) kernel git tree, with only the kernel build and boot faked (readme_bisect/)."""
import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from gmemharness import bisect_step, image

REPO = Path(__file__).resolve().parents[2]
FAKES = Path(__file__).resolve().parent / "readme_bisect"


def readme_bisect_line() -> list[str]:
    """The README's `git bisect run` line, without its [optional part], with the repository
    where the README says /path/to/gmemtest."""
    text = (REPO / "README.md").read_text()
    line = next(l.strip() for l in text.splitlines() if l.strip().startswith("git bisect run "))
    line = re.sub(r"\s*\[.*\]\s*$", "", line).replace("/path/to/gmemtest", str(REPO))
    return shlex.split(line)


def test_the_default_suite_is_where_the_build_puts_it():
    assert bisect_step.DEFAULT_SUITE == REPO / "build" / "cases" / "gmemtest" == image.BUILT_SUITE
    assert "add_executable(gmemtest " in (REPO / "cases" / "CMakeLists.txt").read_text()


def git(tree: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(tree), "-c", "user.name=t", "-c", "user.email=t@t", *args],
                          check=True, capture_output=True, text=True).stdout


@pytest.mark.skipif(not image.BUILT_SUITE.is_file(), reason=f"{image.BUILT_SUITE} is not built")
def test_the_readme_bisect_line_finds_the_first_bad_commit(tmp_path):
    tree = tmp_path / "linux"
    (tree / "arch" / "x86").mkdir(parents=True)
    (tree / "Makefile").write_text("VERSION = 7\n")
    (tree / "Kconfig").write_text("")
    git(tree, "init", "-q")
    commits = []
    for i in range(5):
        (tree / f"change{i}").write_text(str(i))
        if i == 3:
            (tree / "broken").write_text("patch 3 breaks it\n")
        git(tree, "add", "-A")
        git(tree, "commit", "-qm", f"change {i}")
        commits.append(git(tree, "rev-parse", "HEAD").strip())
    argv = readme_bisect_line()
    assert argv[:3] == ["git", "bisect", "run"] and "--filter" in argv and "--suite" not in argv
    env = dict(os.environ, PYTHONPATH=f"{FAKES}:{REPO / 'harness'}", GMEMTEST_FAKE_BISECT_BUILD="1",
               GMEMTEST_CACHE=str(tmp_path / "cache"))
    git(tree, "bisect", "start", commits[-1], commits[0])
    proc = subprocess.run(argv, cwd=tree, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{commits[3]} is the first bad commit" in proc.stdout, proc.stdout + proc.stderr
    assert "does not exist" not in proc.stdout + proc.stderr
