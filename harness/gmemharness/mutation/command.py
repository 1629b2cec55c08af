"""The `gmemharness mutate` subcommand."""
import argparse
from pathlib import Path

from ..bisect_step import DEFAULT_SUITE
from ..errors import InfraError
from ..kbuild import REPO_ROOT
from . import report
from .runner import MutateOptions, Mutator

DEFAULT_OUT = REPO_ROOT / "results" / "mutation"


def add_parser(sub) -> None:
    p = sub.add_parser(
        "mutate", help="plant single-point bugs in kernel source files and report which ones no case catches",
        description="Generates single-point mutants (harness/gmemharness/mutation/operators.py lists the "
                    "operators), builds each incrementally in one cached work copy of the tree, boots it, "
                    "runs the selected cases and classifies it: killed, survived, timeout, build failure, "
                    "boot failure. The tree itself is never modified.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kernel-tree", type=Path, required=True, metavar="DIR")
    p.add_argument("--file", dest="files", action="append", required=True, metavar="PATH",
                   help="a source file relative to the tree (repeatable)")
    p.add_argument("--function", dest="functions", action="append", default=[], metavar="NAME",
                   help="mutate only these functions (repeatable)")
    p.add_argument("--max", type=int, metavar="N", help="at most N mutants, spread over the files")
    p.add_argument("--filter", dest="gtest_filter", default="*", help="--gtest_filter for the suite")
    p.add_argument("--suite", type=Path, default=DEFAULT_SUITE if DEFAULT_SUITE.is_file()
                   else REPO_ROOT / "build/cases/gmemtest", help="suite binary")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"work copy, logs, report (default {DEFAULT_OUT})")
    p.add_argument("--resume", action="store_true", help="keep the verdicts already in --out")
    p.add_argument("--list", action="store_true", help="only list the mutants (id, location, diff)")
    p.add_argument("--jobs", type=int, help="make -j (default: cores)")
    p.add_argument("--accel", choices=("auto", "kvm", "tcg"), default="auto")
    p.add_argument("--case-timeout", type=float, default=120, metavar="S")
    p.set_defaults(func=cmd_mutate)


def cmd_mutate(args) -> int:
    if args.max is not None and args.max < 1:
        raise SystemExit("gmemharness mutate: --max must be at least 1")
    opts = MutateOptions(tree=args.kernel_tree.resolve(), files=args.files, out=args.out.resolve(),
                         functions=args.functions, max=args.max, gtest_filter=args.gtest_filter,
                         suite=args.suite.resolve(), jobs=args.jobs, accel=args.accel,
                         case_timeout=args.case_timeout, resume=args.resume)
    mutator = Mutator(opts)
    if args.list:
        for m in mutator.mutants():
            print(f"{m.id} {m.file}:{m.line} {m.function} {m.operator}\n{m.diff()}")
        return 0
    state = mutator.run()
    ids = [m.id for m in mutator.mutants()]
    killed, counted = report.kill_rate([state["mutants"][i] for i in ids if i in state["mutants"]])
    print(f"mutate: {killed}/{counted} killed; report: {opts.out / 'report.md'}")
    survivors = [i for i in ids if state["mutants"].get(i, {}).get("verdict") == "survived"]
    return 1 if survivors else 0


__all__ = ["add_parser", "InfraError"]
