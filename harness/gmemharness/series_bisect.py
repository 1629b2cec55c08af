"""Series bisect: the first patch of a series after which the selected cases fail.

The base tree is copied once into WORK/tree (the base itself is never modified); patches are
applied and reverted there one by one, so only the files they touch change and the O= build in
WORK/build stays incremental. WORK/state.json remembers which patches the copy carries so a
later run reuses it. Each tested prefix leaves a step directory under WORK/steps. The culprit
is verified by testing the prefix before it and the prefix with it once more."""
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from . import bisect_step, kbuild, series
from .bisect_step import StepOptions, StepResult
from .prefix_search import SearchResult, first_bad_prefix
from .verdict import BAD, GOOD


@dataclass
class SeriesReport:
    search: SearchResult
    patches: list[series.Patch]
    steps: list[StepResult]
    verified: bool = False
    notes: list[str] | None = None

    @property
    def builds(self) -> int:
        return sum(1 for s in self.steps if s.build_seconds is not None)

    def culprit(self) -> series.Patch | None:
        c = self.search.culprit
        return self.patches[c - 1] if c else None

    def text(self) -> str:
        lines = [f"series bisect over {len(self.patches)} patches: {self.search.message}"]
        patch = self.culprit()
        if patch:
            lines.append(f"first bad: {patch}")
            lines.append("verified: prefix before it passes, prefix with it fails" if self.verified
                         else "NOT verified: re-testing the prefixes around it disagreed")
            failing = next((s.failing_output for s in reversed(self.steps)
                            if s.label == f"prefix-{self.search.culprit}" and s.failing_output), "")
            if failing:
                lines.append("failing output:\n  " + failing.replace("\n", "\n  "))
        lines += [f"note: {n}" for n in self.notes or []]
        lines.append(f"{self.builds} builds, {len(self.steps)} steps:")
        lines += [f"  {s.summary()}" for s in self.steps]
        return "\n".join(lines)


class SeriesWorkspace:
    """WORK/tree (a copy of the base carrying some prefix of the series) and WORK/build."""

    def __init__(self, base: Path, work: Path, patches: list[series.Patch]):
        self.base, self.work, self.patches = base.resolve(), work.resolve(), patches
        self.tree, self.build_dir = self.work / "tree", self.work / "build"
        self.state_file = self.work / "state.json"
        self.applied = 0

    def prepare(self) -> None:
        kbuild.check_kernel_tree(self.base)
        self.work.mkdir(parents=True, exist_ok=True)
        self.applied = self._reusable_prefix()
        if self.applied is None:
            # A fresh copy keeps the base's old mtimes, which a build dir made from another
            # copy would take for up to date: start that build dir over too.
            for stale in (self.tree, self.build_dir):
                shutil.rmtree(stale, ignore_errors=True)
            self._copy_base()
            self.applied = 0
            self._save()

    def _reusable_prefix(self) -> int | None:
        try:
            state = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return None
        carried = state.get("applied", [])
        ours = [p.digest for p in self.patches[:len(carried)]]
        if state.get("base") != self._base_identity() or carried != ours or not self.tree.is_dir():
            return None
        return len(carried)

    def _copy_base(self) -> None:
        self.tree.mkdir(parents=True)
        entries = [str(p) for p in self.base.iterdir() if p.name != ".git"]
        proc = subprocess.run(["cp", "-a", "--reflink=auto", *entries, str(self.tree)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise bisect_step.BadInput(f"copying {self.base} to {self.tree} failed: {proc.stderr.strip()}")

    def _base_identity(self) -> str:
        """The base's path, version and Makefile mtime: a base replaced in place is noticed."""
        mtime = (self.base / "Makefile").stat().st_mtime_ns
        return f"{self.base} {kbuild.kernel_version(self.base)} {mtime}"

    def _save(self) -> None:
        self.state_file.write_text(json.dumps(
            {"base": self._base_identity(),
             "applied": [p.digest for p in self.patches[:self.applied]]}))

    def move_to(self, prefix: int) -> None:
        try:
            series.move(self.tree, self.patches, self.applied, prefix)
        except Exception:
            # The tree now carries an unknown mix of patches: the next run starts afresh.
            self.state_file.unlink(missing_ok=True)
            raise
        self.applied = prefix
        self._save()


def bisect_series(base: Path, series_source: Path, work: Path, options: StepOptions,
                  log=print) -> SeriesReport:
    patches = series.load_series(series_source)
    bisect_step.check_options(options)
    space = SeriesWorkspace(base, work, patches)
    space.prepare()
    steps: list[StepResult] = []

    def test(prefix: int) -> str:
        space.move_to(prefix)
        step_dir = bisect_step.new_step_dir(space.work / "steps", f"prefix-{prefix}")
        result = bisect_step.run_step(space.tree, space.build_dir, step_dir, f"prefix-{prefix}",
                                      options, require_clean=False)
        steps.append(result)
        log(result.summary())
        return result.verdict.kind

    search = first_bad_prefix(len(patches), test)
    report = SeriesReport(search, patches, steps, notes=[])
    if search.culprit:
        culprit = search.culprit
        log(f"verifying patch {culprit}: re-testing prefixes {culprit - 1} and {culprit}")
        before, with_it = test(culprit - 1), test(culprit)
        report.verified = (before, with_it) == (GOOD, BAD)
        images = {s.label: s.image_sha256 for s in steps}
        if images.get(f"prefix-{culprit - 1}") == images.get(f"prefix-{culprit}"):
            report.notes.append(f"the kernel built with patch {culprit} is byte-identical to the "
                                "one without it: the culprit is probably wrong (a flaky case?)")
    return report
