"""Command line: run the suite on kernels, build images, fetch kernels, re-render reports."""
import argparse
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import (cli_fleet, debkernel, expect, image, kernels, matrix, profiles, qemu, reports, runner_vng,
               series_kernel, session)
from .errors import InfraError
from .mutation import command as mutation_command
from .outcomes import EXIT_CODES, EXIT_EXPECTATIONS, RunOutcome
from .progress import TerminalProgress
from .results import KernelRun, overall, runs_from_json

DEFAULT_BINARY = image.BUILT_SUITE
DEFAULT_OUT = image.REPO / "results" / "gmemharness"
EXIT_INFRA = EXIT_CODES[RunOutcome.INFRA]
EXIT_USAGE = 2

EPILOG = """kernels: a Debian kernel (7.2.13+deb14-cloud-amd64, or 7.2 for the newest 7.2 cloud
kernel), a bzImage file (modules from --modules), or a kernel source tree (built with
vm-images/config; with --series, a cached copy with those patch series applied); LABEL=KERNEL
names it LABEL in reports and --diff (default: as typed). Exit codes: 0 ok, 1 a case failed,
2 usage, 3 kernel crash, 4 timeout, 5 infrastructure error (a --series patch that does not
apply too), 6 an expected case did not pass (--expect)."""


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    argv = sys.argv[1:] if argv is None else argv
    suite_args: list[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, suite_args = argv[:at], argv[at + 1:]
    args = parser.parse_args(argv)
    args.suite_args = suite_args
    try:
        return args.func(args)
    except InfraError as e:
        print(f"gmemharness: error: {e}", file=sys.stderr)
        return EXIT_INFRA
    except KeyboardInterrupt:
        print("gmemharness: interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gmemharness", description="Run gmemtest inside kernels under QEMU.",
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="boot kernels and run the suite (args after -- go to the suite)",
                         epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("kernels", nargs="*", metavar="KERNEL")
    run.add_argument("--kernel-tree", action="append", default=[], metavar="DIR",
                     help="a kernel source tree to build (with vm-images/config) and boot; repeatable")
    _add_series_args(run)
    run.add_argument("--profile", action="append", default=[], metavar="NAME[,NAME]",
                     help="select series UAPI profiles in the suite (--series-profile=...): "
                     "names from fixtures/uapi/series/; repeatable or a comma list")
    _add_image_args(run)
    run.add_argument("--filter", dest="gtest_filter", help="--gtest_filter for the suite")
    run.add_argument("--accel", choices=("auto", "kvm", "tcg"), default="auto")
    run.add_argument("--runner", choices=("qemu", "vng"), default="qemu",
                     help="boot with the harness's own QEMU command line (default) or through virtme-ng")
    run.add_argument("--memory", type=int, default=2048, metavar="MiB")
    run.add_argument("--cpus", type=int, default=1)
    run.add_argument("--append", dest="kernel_args", action="append", default=[], metavar="ARG",
                     help="extra kernel command-line argument (repeatable)")
    run.add_argument("--boot-timeout", type=float, default=120, metavar="S",
                     help="seconds from QEMU start to the suite's first event (default 120)")
    run.add_argument("--case-timeout", type=float, default=120, metavar="S", help="per case (default 120)")
    run.add_argument("--run-timeout", type=float, default=1800, metavar="S", help="per boot (default 1800)")
    run.add_argument("--resume", action="store_true", help="after a crashed or timed-out case, reboot "
                     "and run the remaining cases")
    run.add_argument("--jobs", type=int, default=0, help="kernels booted at once (default: one per core)")
    run.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"logs and reports go here (default {DEFAULT_OUT})")
    run.add_argument("--diff", nargs=2, metavar=("BASE", "NEW"), help="name regressions from BASE to NEW "
                     "(default with exactly two kernels: first -> second)")
    run.add_argument("--expect", type=Path, metavar="DIR", help="fail (exit 6) unless every case listed "
                     "in DIR/<kernel>.txt passed")
    run.add_argument("--write-expect", type=Path, metavar="DIR", help="write each kernel's passing cases to DIR")
    run.add_argument("-q", "--quiet", action="store_true", help="progress shows only failures")
    run.add_argument("--color", choices=("auto", "always", "never"), default="auto")
    run.set_defaults(func=cmd_run)

    build = sub.add_parser("build", help="build a --kernel-tree (with --series applied) into the cache, "
                           "without booting it")
    build.add_argument("--kernel-tree", required=True, type=Path, metavar="DIR")
    _add_series_args(build)
    build.add_argument("--check", action="store_true", help="only say whether the cache holds the "
                       "series kernel (exit 0) or not (exit 1, printing the command that builds it)")
    build.add_argument("--jobs", type=int, help="make -j (default: CPU count)")
    build.set_defaults(func=cmd_build)

    img = sub.add_parser("image", help="build a test image (initramfs) for a kernel")
    img.add_argument("kernel", metavar="KERNEL")
    _add_image_args(img)
    img.add_argument("-o", "--output", type=Path, required=True)
    img.add_argument("--ktap", action="store_true", help="a complete image that runs the suite with "
                     "--ktap by itself, KTAP on the console (LAVA, any QEMU with one serial port)")
    img.set_defaults(func=cmd_image)

    fetch = sub.add_parser("fetch", help="download and cache Debian kernels, print where they are")
    fetch.add_argument("specs", nargs="+", metavar="VERSION")
    fetch.set_defaults(func=cmd_fetch)

    mutation_command.add_parser(sub)

    rep = sub.add_parser("report", help="print the matrix (and diff) of a results.json")
    rep.add_argument("results", type=Path)
    rep.add_argument("--format", choices=("terminal", "markdown", "html", "junit", "ktap"), default="terminal")
    rep.add_argument("--diff", nargs=2, metavar=("BASE", "NEW"))
    rep.set_defaults(func=cmd_report)
    cli_fleet.add_commands(sub)
    return p


def _add_series_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--series", action="append", default=[], metavar="[NAME=]S",
                   help="a patch series to apply, in order, to each --kernel-tree: a directory of "
                   ".patch files, a git format-patch output or a b4 am mbox; named after S unless "
                   "NAME= is given; repeatable (applied in the order given)")


def _load_series(args) -> list[series_kernel.Series] | None:
    """The --series of `args`, or None after printing a usage error."""
    if args.series and not getattr(args, "kernel_tree", None):
        print("gmemharness: error: --series applies to a --kernel-tree DIR; none given", file=sys.stderr)
        return None
    for arg in args.series:
        path = series_kernel.split_label(arg)[1]
        if not path.exists():
            print(f"gmemharness: error: --series {arg}: {path} does not exist", file=sys.stderr)
            return None
    return [series_kernel.load(arg) for arg in args.series]


def _profile_names(args) -> list[str] | None:
    """The --profile names of `args`, or None after printing a usage error."""
    names = profiles.split_names(args.profile)
    unknown = profiles.unknown(names)
    if unknown:
        print(f"gmemharness: error: unknown series profile {', '.join(unknown)}; known: "
              f"{', '.join(profiles.known_profiles())} (fixtures/uapi/series/)", file=sys.stderr)
        return None
    return names


def _add_image_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--binary", type=Path, default=DEFAULT_BINARY, help=f"suite binary (default {DEFAULT_BINARY})")
    p.add_argument("--extra-binary", type=Path, action="append", default=[],
                   help="another program to put in the image (e.g. build/gmemtest_bench)")
    p.add_argument("--modules", type=Path, help="modules directory for a bzImage KERNEL")
    p.add_argument("--module", dest="extra_modules", action="append", default=[],
                   help="another kernel module to load at boot")


def cmd_run(args) -> int:
    profile_names = _profile_names(args)
    if profile_names is None:
        return EXIT_USAGE
    qemu.qemu_binary()   # no QEMU (or no vng): say so before fetching or building anything
    if args.runner == "vng":
        runner_vng.vng_binary()
    all_series = _load_series(args)
    if all_series is None:
        return EXIT_USAGE
    sources = [kernels.resolve(spec, args.modules) for spec in args.kernels]
    sources += [kernels.from_tree(Path(tree), all_series) for tree in args.kernel_tree]
    if not sources:
        print("gmemharness: error: no kernel given: name a Debian kernel, a bzImage or --kernel-tree DIR",
              file=sys.stderr)
        return EXIT_USAGE
    for source in sources:
        print(f"{source.label}: {source.release} from {source.origin}", file=sys.stderr)
    if profile_names:
        print(f"series profiles selected in the suite: {', '.join(profile_names)}", file=sys.stderr)
    _check_unique_labels(sources)
    opts = session.RunOptions(
        binary=args.binary.resolve(), out_dir=args.out.resolve(),
        extra_binaries=[b.resolve() for b in args.extra_binary], gtest_filter=args.gtest_filter,
        suite_args=profiles.suite_argument(profile_names) + args.suite_args, accel=args.accel,
        memory_mb=args.memory, cpus=args.cpus,
        boot_timeout=args.boot_timeout, case_timeout=args.case_timeout, run_timeout=args.run_timeout,
        resume=args.resume, extra_modules=args.extra_modules, kernel_args=args.kernel_args,
        runner=args.runner)
    if not opts.binary.is_file():
        raise InfraError(f"suite binary {opts.binary} does not exist (build it: cmake --build build)")
    progress = TerminalProgress(verbose=not args.quiet)
    jobs = args.jobs or max(1, min(len(sources), (os.cpu_count() or 1) // max(1, args.cpus)))
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        runs = list(pool.map(lambda k: session.run_kernel(k, opts, progress), sources))
    _write_reports(runs, opts.out_dir)
    color = args.color == "always" or (args.color == "auto" and sys.stdout.isatty())
    print(matrix.terminal(runs, color=color))
    pair = args.diff or ([runs[0].label, runs[1].label] if len(runs) == 2 else None)
    if pair:
        print(matrix.diff(*_pick(runs, pair)).text())
    print(f"reports in {opts.out_dir}: results.json junit.xml results.ktap matrix.md matrix.html")
    if args.write_expect:
        for run in runs:
            if run.outcome != RunOutcome.INFRA:
                print(f"wrote {expect.write_expectations(args.write_expect, run)}")
    code = EXIT_CODES[overall(runs)]
    if args.expect:
        return _expectation_verdict(args.expect, runs, code)
    return code


def _expectation_verdict(directory: Path, runs: list[KernelRun], run_code: int) -> int:
    problems = expect.check_runs(directory, runs)
    for line in problems:
        print(f"EXPECTATION FAILED: {line}")
    if not problems:
        print(f"expectations met: every case listed in {directory} did what its line says")
        return 0
    return run_code if run_code not in (0, EXIT_CODES[RunOutcome.FAIL]) else EXIT_EXPECTATIONS


def _write_reports(runs: list[KernelRun], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    reports.write_json(runs, out / "results.json")
    (out / "junit.xml").write_text(reports.junit_xml(runs))
    (out / "results.ktap").write_text(reports.ktap(runs))
    (out / "matrix.md").write_text(matrix.markdown(runs))
    (out / "matrix.html").write_text(matrix.html_page(runs))


def _check_unique_labels(sources) -> None:
    labels = [s.label for s in sources]
    dupes = sorted({x for x in labels if labels.count(x) > 1})
    if dupes:
        raise InfraError(f"kernel given twice: {', '.join(dupes)} (name each one: LABEL=PATH)")


def _pick(runs: list[KernelRun], pair) -> tuple[KernelRun, KernelRun]:
    """The two runs --diff names: by label, or by release where only one kernel has it."""
    return _find_run(runs, pair[0]), _find_run(runs, pair[1])


def _find_run(runs: list[KernelRun], name: str) -> KernelRun:
    by_label = [r for r in runs if r.label == name]
    by_release = [r for r in runs if r.release == name]
    if len(by_label) == 1 or (not by_label and len(by_release) == 1):
        return (by_label or by_release)[0]
    if len(by_release) > 1:
        raise InfraError(f"--diff {name}: several kernels have release {name} "
                         f"({', '.join(r.label for r in by_release)}); name one by its label")
    raise InfraError(f"--diff names {name}, which is not among the kernels run "
                     f"({', '.join(r.label for r in runs)})")


def cmd_build(args) -> int:
    all_series = _load_series(args)
    if all_series is None:
        return EXIT_USAGE
    if not all_series:
        if args.check:
            print("gmemharness: error: --check needs --series (a plain tree has no cache entry)",
                  file=sys.stderr)
            return EXIT_USAGE
        source = kernels.from_tree(args.kernel_tree)
        print(f"{source.label}: {source.bzimage}")
        return 0
    kernel = series_kernel.SeriesKernel(args.kernel_tree, all_series)
    cached = kernel.cached()
    if args.check:
        if cached:
            print(f"{kernel.label}: cached in {kernel.entry}")
            return 0
        print(f"{kernel.label}: not in the cache; build it with: {kernel.build_command()}")
        return 1
    if cached:
        print(f"{kernel.label}: already cached in {kernel.entry}")
        return 0
    source = kernel.build(jobs=args.jobs)
    print(f"{source.label}: {source.bzimage}")
    return 0


def cmd_image(args) -> int:
    source = kernels.resolve(args.kernel, args.modules)
    spec = image.ImageSpec(source, [args.binary.resolve()] + [b.resolve() for b in args.extra_binary],
                           args.extra_modules)
    out = image.build_base(spec, args.output.resolve())
    if args.ktap:
        with open(out, "ab") as f:
            f.write(image.boot_layer(args.binary.name, ["--ktap"] + args.suite_args, stream="/dev/null"))
        print(f"{out}: runs {args.binary.name} --ktap at boot; the console ends with 'gmemtest-done status=N'")
        return 0
    print(f"{out} (kernel {source.bzimage}, release {source.release}); append a boot layer "
          f"(gmemharness.image.boot_layer) or boot it with `gmemharness run`")
    return 0


def cmd_fetch(args) -> int:
    for spec in args.specs:
        k = debkernel.fetch(spec)
        print(f"{spec}: {k.release} bzImage={k.bzimage} modules={k.modules_dir}")
    return 0


def cmd_report(args) -> int:
    try:
        runs = runs_from_json(json.loads(args.results.read_text()))
    except (OSError, ValueError, KeyError) as e:
        raise InfraError(f"cannot read results {args.results}: {e}") from None
    render = {"terminal": matrix.terminal, "markdown": matrix.markdown, "html": matrix.html_page,
              "junit": reports.junit_xml, "ktap": reports.ktap}[args.format]
    print(render(runs), end="")
    if args.diff:
        print(matrix.diff(*_pick(runs, args.diff)).text(), end="")
    return EXIT_CODES[overall(runs)]
