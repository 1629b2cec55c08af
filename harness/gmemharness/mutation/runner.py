"""Build, boot and judge each mutant in one cached work tree (incremental builds, ccache)."""
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import kbuild, kernelsource, series_kernel, session
from ..bisect_step import DEFAULT_SUITE, list_selected_cases
from ..errors import InfraError
from ..kbuild import BuildFailed, ConfigNotHonoured
from ..outcomes import CaseOutcome, RunOutcome
from ..results import KernelRun
from . import operators, report

KILLED, SURVIVED, TIMEOUT = "killed", "survived", "timeout"
BUILD_FAILURE, BOOT_FAILURE = "build failure", "boot failure"
BROKEN = (CaseOutcome.FAIL, CaseOutcome.CRASH, CaseOutcome.TIMEOUT, CaseOutcome.NOTRUN)


@dataclass
class MutateOptions:
    tree: Path
    files: list[str]
    out: Path
    functions: list[str] = field(default_factory=list)
    max: int | None = None
    gtest_filter: str = "*"
    suite: Path = DEFAULT_SUITE
    fragment: Path = kbuild.DEFAULT_FRAGMENT
    jobs: int | None = None
    accel: str = "auto"
    boot_timeout: float = 120
    case_timeout: float = 120
    resume: bool = False


def classify(run: KernelRun, stable: list[str]) -> tuple[str, list[str], str]:
    """(verdict, killing cases, first message) of one mutant's run, judged on the cases that
    passed in both baseline runs. A case that passed there and now fails, crashes, hangs or never
    runs kills the mutant; one that now skips kills it too (the probe answered differently:
    `gmemtest --baseline` would fail it)."""
    if run.outcome == RunOutcome.INFRA and not run.cases:
        return BOOT_FAILURE, [], run.reason
    killing, message, timed_out = [], "", False
    for name in stable:
        case = run.cases.get(name)
        outcome = case.outcome if case else CaseOutcome.NOTRUN
        if outcome in BROKEN or outcome == CaseOutcome.SKIP:
            killing.append(name)
            timed_out |= outcome == CaseOutcome.TIMEOUT
            if not message:
                text = case.message if case and case.message else run.reason
                message = f"{name}: {outcome.value}: {text}".strip()
    if not killing and run.outcome == RunOutcome.CRASH:
        return KILLED, [], run.reason
    if timed_out or (not killing and run.outcome == RunOutcome.TIMEOUT):
        return TIMEOUT, killing, message or run.reason
    return (KILLED if killing else SURVIVED), killing, message


def stable_cases(first: KernelRun, second: KernelRun) -> tuple[list[str], list[str]]:
    """(cases that passed in both baseline runs, cases whose outcome differed between them)."""
    names = sorted(set(first.cases) | set(second.cases))
    outcome = lambda run, n: run.cases[n].outcome if n in run.cases else CaseOutcome.NOTRUN
    stable = [n for n in names if outcome(first, n) == outcome(second, n) == CaseOutcome.PASS]
    unstable = [n for n in names if outcome(first, n) != outcome(second, n)]
    return stable, unstable


class Mutator:
    def __init__(self, opts: MutateOptions, say=print):
        self.opts, self.say = opts, say
        # Laid out like the tree and its plain build dir, so ccache serves the first build.
        self.work, self.build_dir = series_kernel.mirrored_layout(opts.tree, opts.out / "work")
        self.state_file = opts.out / "results.json"
        self.state = {"mutants": {}, "baseline": None}

    # ---- the work tree ----
    def prepare(self) -> None:
        kbuild.check_kernel_tree(self.opts.tree, require_clean=False)
        for f in self.opts.files:
            if not (self.opts.tree / f).is_file():
                raise InfraError(f"{f}: no such file in {self.opts.tree}")
        list_selected_cases(Path(self.opts.suite), self.opts.gtest_filter)
        self.opts.out.mkdir(parents=True, exist_ok=True)
        if self.opts.resume and self.state_file.is_file():
            self.state = json.loads(self.state_file.read_text())
        if not (self.work / "Makefile").is_file():
            self.say(f"mutate: linking a work copy of {self.opts.tree} into {self.work}")
            shutil.rmtree(self.work, ignore_errors=True)
            self.work.parent.mkdir(parents=True, exist_ok=True)
            # Hard links: cheap, and every mutation replaces a file (new inode), never edits one.
            proc = subprocess.run(["cp", "-al", str(self.opts.tree), str(self.work)], capture_output=True, text=True)
            if proc.returncode != 0:
                shutil.copytree(self.opts.tree, self.work, symlinks=True)
        self.restore()

    def _write(self, relative: str, text: str) -> None:
        target = self.work / relative
        tmp = target.with_name(target.name + ".gmemtest-tmp")
        tmp.write_text(text)
        os.replace(tmp, target)

    def restore(self) -> None:
        for f in self.opts.files:
            original = (self.opts.tree / f).read_text()
            if (self.work / f).read_text() != original:
                self._write(f, original)

    def _save(self) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state, indent=1) + "\n")
        os.replace(tmp, self.state_file)

    # ---- build and run ----
    def _build_and_run(self, label: str, run_dir: Path) -> tuple[KernelRun | None, str, float, float]:
        """(run or None, error, build seconds, run seconds)."""
        t0 = time.monotonic()
        try:
            artifacts = kbuild.build(self.work, self.build_dir, fragment=self.opts.fragment, jobs=self.opts.jobs,
                                     log_path=run_dir / "build.log", require_clean=False)
        except (BuildFailed, ConfigNotHonoured) as e:
            return None, f"{BUILD_FAILURE}: {e}", time.monotonic() - t0, 0.0
        built = time.monotonic()
        kernel = kernelsource.from_bzimage(artifacts.bzimage, config=artifacts.config, label=label,
                                           origin=f"mutant of {self.opts.tree}")
        run = session.run_kernel(kernel, session.RunOptions(
            binary=Path(self.opts.suite), out_dir=run_dir, gtest_filter=self.opts.gtest_filter,
            accel=self.opts.accel, boot_timeout=self.opts.boot_timeout, case_timeout=self.opts.case_timeout))
        return run, "", built - t0, time.monotonic() - built

    def baseline(self) -> dict:
        if self.state.get("baseline"):
            return self.state["baseline"]
        runs = []
        for i in (1, 2):
            self.say(f"mutate: baseline run {i} of 2 (unmutated tree)")
            run, error, build_s, run_s = self._build_and_run("baseline", self.opts.out / "runs" / f"baseline-{i}")
            if run is None:
                raise InfraError(f"the unmutated tree does not build: {error}")
            if run.outcome == RunOutcome.INFRA:
                raise InfraError(f"the unmutated tree does not boot: {run.reason}")
            runs.append(run)
        stable, unstable = stable_cases(*runs)
        if not stable:
            raise InfraError(f"no case passed in both baseline runs with --filter {self.opts.gtest_filter!r}")
        self.state["baseline"] = {"stable": stable, "unstable": unstable, "build_s": round(build_s, 1),
                                  "run_s": round(run_s, 1)}
        self._save()
        return self.state["baseline"]

    def mutants(self) -> list[operators.Mutant]:
        names = set(self.opts.functions) if self.opts.functions else None
        out = []
        for f in self.opts.files:
            out += operators.generate(f, (self.opts.tree / f).read_text(), names)
        return operators.sample(out, self.opts.max)

    def run(self) -> dict:
        self.prepare()
        mutants = self.mutants()
        if not mutants:
            raise InfraError("no mutant: check --file and --function")
        base = self.baseline()
        self.say(f"mutate: {len(mutants)} mutants; {len(base['stable'])} cases pass stably"
                 + (f", {len(base['unstable'])} unstable (ignored)" if base["unstable"] else ""))
        t_start = time.monotonic()
        try:
            for i, m in enumerate(mutants, 1):
                if m.id in self.state["mutants"]:
                    continue
                self._write(m.file, operators.apply((self.opts.tree / m.file).read_text(), m))
                try:
                    run, error, build_s, run_s = self._build_and_run(f"mutant-{m.id}", self.opts.out / "runs" / m.id)
                finally:
                    self.restore()
                if run is None:
                    verdict, killing, message = BUILD_FAILURE, [], error
                else:
                    verdict, killing, message = classify(run, base["stable"])
                self.state["mutants"][m.id] = dict(m.to_json(), verdict=verdict, killing=killing,
                                                   message=message[:2000], build_s=round(build_s, 1),
                                                   run_s=round(run_s, 1))
                self._save()
                self.say(f"[{i}/{len(mutants)}] {m.file}:{m.line} {m.function} {m.operator}: {verdict}"
                         + (f" by {killing[0]}" + (f" (+{len(killing) - 1})" if len(killing) > 1 else "")
                            if killing else "") + f" ({build_s:.0f}+{run_s:.0f} s)")
        finally:
            self.restore()
        self.state["wall_s"] = round(self.state.get("wall_s", 0) + time.monotonic() - t_start, 1)
        self._save()
        report.write(self.opts, self.state, [m.id for m in mutants])
        return self.state
