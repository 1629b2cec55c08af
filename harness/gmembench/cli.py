"""Command line (run from harness/: /usr/bin/python3 -m gmembench COMMAND):
  summary RESULT.json                 populate / demand-paging / conversion tables of one run
                                      (exit 1 when a benchmark failed, as opposed to skipped)
  reference RESULT.json               the reference figures' ratios beside this run's
  compare BASE.json NEW.json          per-benchmark ratio and verdict within the noise band (a,b.json:
                                      runs of one kernel pooled, so the band covers run-to-run drift)
  plot RESULT.json [...] -o FILE.png  demand-paging rate against vCPU count
  vm KERNEL [KERNEL2] [-- BENCH ARGS] run gmemtest_bench inside booted kernels (--boots N times
                                      each, alternating), write all of the above into --out,
                                      and compare two kernels
RESULT.json is gmemtest_bench's --benchmark_out (or any text holding that JSON document); where one
run is read, "a.json,b.json" pools several runs of one kernel."""
import argparse
import json
import sys
from pathlib import Path

from . import compare as compare_mod
from . import reference, summary
from .results import load, merge

REPO = Path(__file__).resolve().parents[2]
DEFAULT_BINARY = REPO / "build" / "bench" / "gmemtest_bench"
EXIT_REGRESSION = 1
EXIT_BENCH_ERROR = 1
EXIT_USAGE = 2
EXIT_RUN_FAILED = 5


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    bench_args: list[str] | None = None
    if "--" in argv:
        at = argv.index("--")
        argv, bench_args = argv[:at], argv[at + 1:]
    args = _parser().parse_args(argv)
    args.bench_args = bench_args
    try:
        return args.func(args)
    except (OSError, ValueError) as e:
        print(f"gmembench: {e}", file=sys.stderr)
        return EXIT_USAGE


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gmembench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(required=True, metavar="COMMAND")

    s = sub.add_parser("summary", help="tables of one run")
    s.add_argument("result", help="results file, or comma-separated files of one kernel to pool")
    s.set_defaults(func=cmd_summary)

    r = sub.add_parser("reference", help="reference ratios beside this run's")
    r.add_argument("result", help="results file, or comma-separated files of one kernel to pool")
    r.add_argument("--json-out", type=Path)
    r.set_defaults(func=cmd_reference)

    c = sub.add_parser("compare", help="compare two runs (base first)")
    c.add_argument("base", help="results file, or comma-separated files of one kernel to pool")
    c.add_argument("new", help="results file, or comma-separated files of one kernel to pool")
    _add_compare_args(c)
    c.add_argument("--label-base")
    c.add_argument("--label-new")
    c.set_defaults(func=cmd_compare)

    pl = sub.add_parser("plot", help="PNG of demand-paging rate vs vCPUs")
    pl.add_argument("results", type=Path, nargs="+")
    pl.add_argument("-o", "--output", type=Path, required=True)
    pl.add_argument("--no-reference", action="store_true", help="leave out the reference curves")
    pl.set_defaults(func=cmd_plot)

    v = sub.add_parser("vm", help="run the benchmarks inside booted kernels (args after -- go to the benchmark; "
                                  "default: small nested sizes with 3 repetitions)")
    v.add_argument("kernels", nargs="+", metavar="KERNEL", help="as gmemharness run takes them (Debian "
                   "release, bzImage, kernel tree); two kernels are compared first -> second")
    v.add_argument("--binary", type=Path, default=DEFAULT_BINARY)
    v.add_argument("--out", type=Path, default=Path("gmembench-results"))
    v.add_argument("--modules", type=Path, help="modules directory for a bzImage KERNEL")
    v.add_argument("--accel", choices=("auto", "kvm", "tcg"), default="auto")
    v.add_argument("--memory", type=int, default=2048, metavar="MiB")
    v.add_argument("--cpus", type=int, default=1, help="guest CPUs (default 1: under TCG a second CPU makes "
                   "every userfault wake-up an emulated IPI)")
    v.add_argument("--timeout", type=float, default=3600, metavar="S", help="per boot")
    v.add_argument("--boots", type=int, default=1, metavar="N", help="boot each kernel N times, alternating "
                   "kernels, and pool the repetitions, so the noise band covers boot-to-boot drift too")
    _add_compare_args(v)
    v.set_defaults(func=cmd_vm)
    return p


def _add_compare_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--floor", type=float, default=compare_mod.DEFAULT_FLOOR,
                   help="smallest relative change ever called (default %(default)s)")
    p.add_argument("--unknown-band", type=float, default=compare_mod.DEFAULT_UNKNOWN_BAND,
                   help="band for a side without repetitions (default %(default)s)")
    p.add_argument("--json-out", type=Path, help="write the comparison as JSON here")
    p.add_argument("--fail-on-regression", action="store_true", help=f"exit {EXIT_REGRESSION} on a regression")


def cmd_summary(args) -> int:
    run, _ = _load_pooled(args.result, None)
    print(summary.report(run), end="")
    return EXIT_BENCH_ERROR if any(b.error for b in run.benches.values()) else 0


def cmd_reference(args) -> int:
    run, _ = _load_pooled(args.result, None)
    print(reference.table(run), end="")
    if args.json_out:
        args.json_out.write_text(json.dumps(reference.to_json(run), indent=1) + "\n")
    return 0


def _compare_and_report(base, new, args) -> int:
    c = compare_mod.compare(base, new, args.floor, args.unknown_band)
    print(compare_mod.table(c), end="")
    if args.json_out:
        args.json_out.write_text(json.dumps(c.to_json(), indent=1) + "\n")
    return EXIT_REGRESSION if args.fail_on_regression and c.regressions else 0


def _load_pooled(files: str, label: str | None):
    """One kernel's run from "a.json" or "a.json,b.json" (their repetitions pooled)."""
    paths = [Path(p) for p in files.split(",") if p]
    if not paths:
        raise ValueError(f"no results file in {files!r}")
    return merge([load(p) for p in paths], label), ",".join(p.name for p in paths)


def cmd_compare(args) -> int:
    base, base_files = _load_pooled(args.base, args.label_base)
    new, new_files = _load_pooled(args.new, args.label_new)
    if base.label == new.label:
        base.label, new.label = f"{base.label} ({base_files})", f"{new.label} ({new_files})"
    return _compare_and_report(base, new, args)


def cmd_plot(args) -> int:
    from .plot import plot
    runs = [load(p) for p in args.results]
    if len({r.label for r in runs}) < len(runs):
        for r, path in zip(runs, args.results):
            r.label = f"{r.label} ({path.name})"
    print(plot(runs, args.output, reference=not args.no_reference))
    return 0


def cmd_vm(args) -> int:
    from . import vmrun
    if len(args.kernels) > 2 or len(set(args.kernels)) < len(args.kernels):
        print("gmembench: vm takes one kernel, or two different ones to compare (--boots N repeats one)",
              file=sys.stderr)
        return EXIT_USAGE
    if not args.binary.is_file():
        print(f"gmembench: {args.binary} does not exist (cmake --build build --target gmemtest_bench)",
              file=sys.stderr)
        return EXIT_USAGE
    opts = vmrun.VmOptions(binary=args.binary, out_dir=args.out.resolve(), accel=args.accel,
                           memory_mb=args.memory, cpus=args.cpus, timeout_s=args.timeout, modules=args.modules)
    if args.bench_args is not None:
        opts.bench_args = args.bench_args
    per_kernel: dict[str, list] = {spec: [] for spec in args.kernels}
    for boot in range(1, max(1, args.boots) + 1):
        for spec in args.kernels:   # alternating, so a change in host load hits both kernels alike
            try:
                result = vmrun.run_in_kernel(spec, opts, boot)
            except vmrun.VmRunError as e:
                print(f"gmembench: {e}", file=sys.stderr)
                return EXIT_RUN_FAILED
            print(f"== {spec} boot {boot} ({result.release}, {result.accel}, {result.seconds:.0f}s): "
                  f"{result.json_path}")
            per_kernel[spec].append((load(result.json_path, spec), result.json_path.parents[1]))
    runs = []
    for spec, boots in per_kernel.items():
        run, kerneldir = merge([r for r, _ in boots], spec), boots[0][1]
        runs.append(run)
        (kerneldir / "summary.md").write_text(summary.report(run))
        (kerneldir / "reference.md").write_text(reference.table(run))
        print(summary.report(run))
        print(reference.table(run))
        _try_plot([run], kerneldir / "paging.png")
    if len(runs) == 2:
        args.json_out = args.json_out or opts.out_dir / "compare.json"
        code = _compare_and_report(runs[0], runs[1], args)
        _try_plot(runs, opts.out_dir / "paging.png")
        return code
    return 0


def _try_plot(runs, out: Path) -> None:
    """The PNG where matplotlib is installed; a note instead where it is not."""
    try:
        from .plot import plot
        print(plot(runs, out))
    except RuntimeError as e:
        print(f"gmembench: no plot: {e}", file=sys.stderr)
