"""Command lines for bisection.

  harness/bisect-run [options] [TREE]     a `git bisect run` predicate: build TREE (default: the
                                          current directory), boot it, run the selected cases;
                                          exit 0 good, 1 bad, 125 skip, 128 bad input (stops
                                          git bisect).
  harness/bisect-series --tree BASE --series DIR|MBOX [options]
                                          the first patch of a series after which the selected
                                          cases fail; exit 0 culprit found and verified, 1 no
                                          verified culprit, 2 bad input, 3 infrastructure error.
"""
import argparse
import subprocess
import sys
import traceback
from pathlib import Path

from . import bisect_step, series_bisect
from .bisect_step import ABORT_ERRORS, StepOptions
from .errors import InfraError
from .verdict import EXIT_ABORT, FLAKY_POLICIES

SERIES_FOUND, SERIES_NOT_FOUND, SERIES_BAD_INPUT, SERIES_INFRA = 0, 1, 2, 3


def _common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--filter", required=True, dest="gtest_filter",
                        help="gtest filter selecting the cases to run, e.g. 'Creation.*'")
    parser.add_argument("--suite", type=Path, default=bisect_step.DEFAULT_SUITE,
                        help="suite binary (default: %(default)s)")
    parser.add_argument("--fragment", type=Path, default=bisect_step.kbuild.DEFAULT_FRAGMENT,
                        help="kernel config fragment (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="boots per step (default 1); see --flaky")
    parser.add_argument("--flaky", choices=FLAKY_POLICIES, default="bad",
                        help="verdict of a step whose runs disagree (default: bad)")
    parser.add_argument("--jobs", type=int, default=None, help="make -j (default: CPU count)")
    parser.add_argument("--accel", choices=("auto", "kvm", "tcg"), default="auto",
                        help="QEMU accelerator (default: auto, KVM when usable, else TCG)")
    parser.add_argument("--boot-timeout", type=float, default=120)
    parser.add_argument("--case-timeout", type=float, default=120)


def _options(args) -> StepOptions:
    return StepOptions(gtest_filter=args.gtest_filter, suite=args.suite.resolve(),
                       fragment=args.fragment.resolve(), repeats=args.repeats, flaky=args.flaky,
                       jobs=args.jobs, accel=args.accel, boot_timeout=args.boot_timeout,
                       case_timeout=args.case_timeout)


def _git(tree: Path, *args: str) -> str | None:
    proc = subprocess.run(["git", "-C", str(tree), *args], capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else None


def default_work_dir(tree: Path) -> Path:
    """Inside the repository's git directory: out of the work tree (which stays clean) and the
    same for every commit git bisect checks out."""
    git_dir = _git(tree, "rev-parse", "--path-format=absolute", "--git-common-dir")
    if not git_dir:
        raise bisect_step.BadInput(f"{tree} is not a git work tree: pass --work DIR")
    return Path(git_dir) / "gmemtest-bisect"


def bisect_run_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bisect-run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tree", nargs="?", type=Path, default=Path.cwd(),
                        help="kernel source tree (default: the current directory)")
    parser.add_argument("--work", type=Path,
                        help="build dir and step logs (default: GIT_DIR/gmemtest-bisect)")
    _common_options(parser)
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        # argparse's usage error (2) would read as "bad" to git bisect: stop it instead.
        return e.code if e.code in (0, None) else EXIT_ABORT
    tree = args.tree.resolve()
    try:
        options = _options(args)
        bisect_step.kbuild.check_kernel_tree(tree)
        bisect_step.check_options(options)
        work = (args.work or default_work_dir(tree)).resolve()
        label = _git(tree, "rev-parse", "--short=12", "HEAD") or "tree"
        step_dir = bisect_step.new_step_dir(work / "steps", label)
        result = bisect_step.run_step(tree, work / "build", step_dir, label, options)
    except ABORT_ERRORS as e:
        print(f"bisect-run: {e}", file=sys.stderr)
        return EXIT_ABORT
    except Exception:
        # A bug of ours, the same at every commit: stop git bisect rather than skip.
        traceback.print_exc()
        print("bisect-run: internal error (above); stopping the bisection", file=sys.stderr)
        return EXIT_ABORT
    print(f"bisect-run {result.summary()}")
    if result.failing_output:
        print(result.failing_output)
    print(f"bisect-run: exit {result.verdict.exit_code}")
    return result.verdict.exit_code


def bisect_series_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bisect-series", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", type=Path, required=True, help="base kernel source tree")
    parser.add_argument("--series", type=Path, required=True,
                        help="directory of .patch files (applied in name order) or an mbox")
    parser.add_argument("--work", type=Path, required=True,
                        help="working copy, build dir and step logs (reused across runs)")
    _common_options(parser)
    args = parser.parse_args(argv)
    try:
        report = series_bisect.bisect_series(args.tree, args.series, args.work, _options(args),
                                             log=lambda line: print(line, flush=True))
    except ABORT_ERRORS as e:
        print(f"bisect-series: {e}", file=sys.stderr)
        return SERIES_BAD_INPUT
    except InfraError as e:
        print(f"bisect-series: infrastructure error: {e}", file=sys.stderr)
        return SERIES_INFRA
    text = report.text()
    (args.work / "report.txt").write_text(text + "\n")
    print(text)
    return SERIES_FOUND if report.culprit() and report.verified else SERIES_NOT_FOUND
