"""`gmemharness plan` and `gmemharness merge`: a matrix run as one CI job per kernel, merged back
into the report a single local run of all those kernels writes."""
import argparse
import json
import sys
from pathlib import Path

from . import matrix, plan
from .errors import InfraError
from .outcomes import EXIT_CODES
from .results import KernelRun, overall, runs_from_json


def add_commands(sub) -> None:
    p = sub.add_parser("plan", help="write a CI definition running one job per kernel (x series)",
                       description=plan.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("kernels", nargs="+", metavar="KERNEL")
    p.add_argument("--series", action="append", default=[], metavar="SERIES",
                   help="a patch series each kernel runs with (repeatable: kernel x series jobs)")
    p.add_argument("--format", required=True, choices=("gitlab", "github", "lava"))
    p.add_argument("--filter", dest="gtest_filter", help="--gtest_filter for every job")
    p.add_argument("--binary", default=plan.SUITE, help=f"suite binary in the job (default {plan.SUITE})")
    p.add_argument("--run-arg", action="append", default=[], metavar="ARG",
                   help="another `gmemharness run` argument for every job (repeatable)")
    p.add_argument("--suite-arg", action="append", default=[], metavar="ARG",
                   help="an argument for the suite in every job (repeatable; goes after --)")
    p.add_argument("--lava-url", default=plan.PlanOptions.lava_url,
                   help="LAVA: base URL where <job id>/bzImage and initramfs.cpio are published")
    p.add_argument("-o", "--output", type=Path, default=Path("."),
                   help="directory to write the definition(s) into (default: .)")
    p.set_defaults(func=cmd_plan)

    m = sub.add_parser("merge", help="merge per-job results.json files into one matrix and reports")
    m.add_argument("results", nargs="+", type=Path, metavar="RESULTS_JSON")
    m.add_argument("-o", "--output", type=Path, required=True, help="directory for the merged reports")
    m.add_argument("--diff", nargs=2, action="append", metavar=("BASE", "NEW"),
                   help="name regressions from BASE to NEW (repeatable; default with exactly two "
                        "kernels: first -> second)")
    m.set_defaults(func=cmd_merge)


def cmd_plan(args) -> int:
    opts = plan.PlanOptions(gtest_filter=args.gtest_filter, binary=args.binary,
                            run_args=tuple(args.run_arg), suite_args=tuple(args.suite_arg), lava_url=args.lava_url)
    kernel_jobs = plan.jobs(args.kernels, args.series)
    args.output.mkdir(parents=True, exist_ok=True)
    for name, text in plan.render(args.format, kernel_jobs, opts).items():
        (args.output / name).write_text(text)
        print(f"wrote {args.output / name}")
    print(f"{len(kernel_jobs)} job(s): " + ", ".join(job.column for job in kernel_jobs))
    return 0


def merge_runs(paths: list[Path]) -> list[KernelRun]:
    runs: list[KernelRun] = []
    for path in paths:
        try:
            runs += runs_from_json(json.loads(path.read_text()))
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise InfraError(f"cannot read results {path}: {e}") from None
    labels = [r.label for r in runs]
    dupes = sorted({x for x in labels if labels.count(x) > 1})
    if dupes:
        raise InfraError(f"kernel {', '.join(dupes)} appears in more than one results file")
    return runs


def cmd_merge(args) -> int:
    from .cli import _pick, _write_reports   # cli imports this module
    runs = merge_runs(args.results)
    if not runs:
        raise InfraError("the results files hold no kernel")
    _write_reports(runs, args.output)
    print(matrix.terminal(runs))
    pairs = args.diff or ([[runs[0].label, runs[1].label]] if len(runs) == 2 else [])
    for pair in pairs:
        print(matrix.diff(*_pick(runs, pair)).text())
    print(f"merged {len(args.results)} results file(s), {len(runs)} kernel(s), into {args.output}: "
          "results.json junit.xml results.ktap matrix.md matrix.html", file=sys.stderr)
    return EXIT_CODES[overall(runs)]
