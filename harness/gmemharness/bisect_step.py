"""One bisection step: build the tree incrementally, boot it (once or more), judge the result.

Booting and result collection are the harness's own (session.run_kernel); every step leaves a
directory with build.log, config, one run-N/ per boot (console, result stream, run.json) and
step.json (verdict, timings, image digest)."""
import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import gtest, image, kbuild, kernelsource, qemu, session
from .errors import InfraError
from .kbuild import REPO_ROOT, BuildFailed, ConfigNotHonoured, KernelTreeError
from .verdict import BAD, SKIP, Verdict, combine, judge_run

DEFAULT_SUITE = image.BUILT_SUITE
FAILING_LINES = 9   # of each broken case's message in a report; run.json keeps it whole


class BadInput(InfraError):
    """Wrong arguments, the same at every commit: a bisection must stop, not skip."""


# Errors that mean "the input is wrong": stop the bisection (exit 128), never skip.
ABORT_ERRORS = (KernelTreeError, BadInput)


@dataclass
class StepOptions:
    gtest_filter: str
    suite: Path = DEFAULT_SUITE
    fragment: Path = kbuild.DEFAULT_FRAGMENT
    repeats: int = 1
    flaky: str = BAD
    jobs: int | None = None
    boot_timeout: float = 120
    case_timeout: float = 120
    accel: str = "auto"


@dataclass
class StepResult:
    label: str
    verdict: Verdict
    step_dir: Path
    build_seconds: float | None = None
    run_seconds: list[float] = field(default_factory=list)
    boot_seconds: list[float | None] = field(default_factory=list)
    image_sha256: str | None = None
    failing_output: str = ""
    total_seconds: float = 0.0

    def summary(self) -> str:
        build = f"build {self.build_seconds:.0f} s" if self.build_seconds is not None else "no build"
        runs = ", ".join(f"{s:.0f} s" for s in self.run_seconds) or "none"
        return (f"{self.label}: {self.verdict.kind.upper()} ({self.verdict.reason}); "
                f"{build}, boot+run {runs}, step {self.total_seconds:.0f} s; logs in {self.step_dir}")


def list_selected_cases(suite: Path, gtest_filter: str) -> list[str]:
    """The cases `gtest_filter` selects, asked of the suite binary on the host
    (--gtest_list_tests never opens /dev/kvm). Raises BadInput when it selects none."""
    if not suite.is_file():
        raise BadInput(f"suite binary {suite} does not exist: build it (cmake --build build) "
                       "or pass --suite")
    cases = gtest.list_cases(suite, gtest_filter)
    if cases is None:
        raise BadInput(f"{suite} --gtest_list_tests failed: is it the gmemtest suite binary?")
    if not cases:
        raise BadInput(f"the filter {gtest_filter!r} matches no case of {suite} "
                       f"(list them with: {suite} --gtest_list_tests)")
    return cases


def check_options(options: StepOptions) -> list[str]:
    """Validate everything that is the same at every commit; returns the selected cases."""
    kbuild.load_fragment(Path(options.fragment))
    if options.repeats < 1:
        raise BadInput(f"--repeats must be at least 1, not {options.repeats}")
    try:
        qemu.qemu_binary()
    except InfraError as e:
        raise BadInput(str(e)) from None
    if not image.BUSYBOX.is_file():
        raise BadInput(f"{image.BUSYBOX} not found: install busybox-static")
    return list_selected_cases(Path(options.suite), options.gtest_filter)


def new_step_dir(steps_root: Path, label: str) -> Path:
    steps_root.mkdir(parents=True, exist_ok=True)
    index = sum(1 for p in steps_root.iterdir() if p.is_dir()) + 1
    step_dir = steps_root / f"{index:03d}-{label}"
    step_dir.mkdir()
    return step_dir


def run_step(tree: Path, build_dir: Path, step_dir: Path, label: str, options: StepOptions,
             require_clean: bool = True) -> StepResult:
    """Build, boot `options.repeats` times, judge. KernelTreeError propagates (bad input);
    build, config and infrastructure failures become a skip verdict."""
    start = time.monotonic()
    result = StepResult(label, Verdict(SKIP, "not run"), step_dir)
    try:
        artifacts = kbuild.build(tree, build_dir, fragment=options.fragment, jobs=options.jobs,
                                 log_path=step_dir / "build.log", require_clean=require_clean)
        result.build_seconds = artifacts.seconds
        result.image_sha256 = artifacts.image_digest()
        shutil.copy(artifacts.config, step_dir / "config")
        kernel = kernelsource.from_bzimage(artifacts.bzimage, config=artifacts.config,
                                           label=label, origin=f"tree {tree}")
        result.verdict = _boot_and_judge(kernel, step_dir, options, result)
    except KernelTreeError:
        raise
    except ConfigNotHonoured as e:
        result.verdict = Verdict(SKIP, f"config not honoured: {'; '.join(e.missing)}")
    except BuildFailed as e:
        result.verdict = Verdict(SKIP, f"build failure: {e}")
    except InfraError as e:
        result.verdict = Verdict(SKIP, f"infrastructure error: {e}")
    result.total_seconds = time.monotonic() - start
    _write_record(result)
    return result


def _boot_and_judge(kernel, step_dir: Path, options: StepOptions, result: StepResult) -> Verdict:
    verdicts = []
    for i in range(1, options.repeats + 1):
        run_dir = step_dir / f"run-{i}"
        run = session.run_kernel(kernel, session.RunOptions(
            binary=Path(options.suite), out_dir=run_dir, gtest_filter=options.gtest_filter,
            accel=options.accel, boot_timeout=options.boot_timeout,
            case_timeout=options.case_timeout))
        verdict = judge_run(run)
        (run_dir / "run.json").write_text(json.dumps(
            {"verdict": asdict(verdict), "run": run.to_json()}, indent=2) + "\n")
        result.run_seconds.append(run.total_s)
        result.boot_seconds.append(run.first_result_s)
        if verdict.kind == BAD and not result.failing_output:
            result.failing_output = failing_output(run)
        verdicts.append(verdict)
    return combine(verdicts, options.flaky)


def failing_output(run) -> str:
    """The broken cases' messages and splats, and where the console log is."""
    lines = [f"{c.name}: {c.outcome.value}\n{_head(c.message)}".rstrip()
             + "".join(f"\n{_head(s)}" for s in c.splats)
             for c in run.cases.values() if c.outcome.value in ("fail", "crash", "timeout")]
    lines = lines or [run.reason] + run.kernel_splats[:1]
    consoles = ", ".join(b.console_log for b in run.boots)
    return "\n".join(lines) + (f"\n(console: {consoles})" if consoles else "")


def _head(text: str, lines: int = FAILING_LINES) -> str:
    kept = text.strip().splitlines()
    more = len(kept) - lines
    return "\n".join(kept[:lines] + ([f"... ({more} more lines in run.json)"] if more > 0 else []))


def _write_record(result: StepResult) -> None:
    record = asdict(result)
    record["step_dir"] = str(result.step_dir)
    (result.step_dir / "step.json").write_text(json.dumps(record, indent=2) + "\n")
    (result.step_dir / "summary.txt").write_text(result.summary() + "\n")
