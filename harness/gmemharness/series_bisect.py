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
    """WORK/tree (a copy of the base carrying some prefix of the series) and WORK/build.

    WORK/state.json names the base and the digests of the patches the copy carries, and
    WORK/applied/ keeps those patches, so a later run with another series (or another revision
    of it) reverts down to the prefix the two share instead of copying the base again."""

    def __init__(self, base: Path, work: Path, patches: list[series.Patch],
                 tree: Path | None = None, build_dir: Path | None = None, identity: str | None = None):
        self.base, self.work, self.patches = base.resolve(), work.resolve(), patches
        self.identity = identity
        self.tree = (tree or self.work / "tree").resolve()
        self.build_dir = (build_dir or self.work / "build").resolve()
        self.state_file = self.work / "state.json"
        self.applied_dir = self.work / "applied"
        self.applied = 0
        self.fresh_copy = False

    def prepare(self, require_clean: bool = True) -> None:
        kbuild.check_kernel_tree(self.base, require_clean)
        self.work.mkdir(parents=True, exist_ok=True)
        shared = self._reuse_shared_prefix()
        self.fresh_copy = shared is None
        if shared is None:
            # A fresh copy keeps the base's old mtimes, which a build dir made from another
            # copy would take for up to date: start that build dir over too.
            for stale in (self.tree, self.build_dir, self.applied_dir):
                shutil.rmtree(stale, ignore_errors=True)
            self._copy_base()
            shared = 0
        self.applied = shared
        self._save()

    def _reuse_shared_prefix(self) -> int | None:
        """Revert the copy to the longest prefix it shares with our series; None when the copy
        cannot be reused (no copy, another base, unknown state)."""
        try:
            state = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return None
        carried = state.get("applied", [])
        if state.get("base") != self._base_identity() or not self.tree.is_dir():
            return None
        shared = 0
        while (shared < min(len(carried), len(self.patches))
               and carried[shared] == self.patches[shared].digest):
            shared += 1
        if shared == len(carried):
            return shared
        try:
            old = [self._carried_patch(i, digest) for i, digest in enumerate(carried)]
            self.state_file.unlink()      # an interrupted revert must not look reusable
            series.move(self.tree, old, len(carried), shared)
        except (OSError, bisect_step.BadInput):
            return None
        for i in range(shared, len(carried)):
            self._patch_file(i).unlink(missing_ok=True)
        return shared

    def _patch_file(self, i: int) -> Path:
        return self.applied_dir / f"{i + 1:04d}.patch"

    def _carried_patch(self, i: int, digest: str) -> series.Patch:
        patch = series.Patch(i + 1, self._patch_file(i).name, "(carried)", self._patch_file(i).read_bytes())
        if patch.digest != digest:
            raise bisect_step.BadInput(f"{self._patch_file(i)} is not the patch the copy carries")
        return patch

    def _copy_base(self) -> None:
        self.tree.mkdir(parents=True)
        entries = [str(p) for p in self.base.iterdir() if p.name != ".git"]
        proc = subprocess.run(["cp", "-a", "--reflink=auto", *entries, str(self.tree)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise bisect_step.BadInput(f"copying {self.base} to {self.tree} failed: {proc.stderr.strip()}")

    def _base_identity(self) -> str:
        """The base's path, version and Makefile mtime (a base replaced in place is noticed),
        unless the caller knows better."""
        if self.identity:
            return self.identity
        mtime = (self.base / "Makefile").stat().st_mtime_ns
        return f"{self.base} {kbuild.kernel_version(self.base)} {mtime}"

    def _save(self) -> None:
        self.state_file.write_text(json.dumps(
            {"base": self._base_identity(),
             "applied": [p.digest for p in self.patches[:self.applied]]}))

    def move_to(self, prefix: int) -> None:
        """Apply or revert one patch at a time, recording each step, so a patch that does not
        apply (refused by `git apply --check` before anything changed) leaves the copy in a
        known state: the patches before it."""
        try:
            while self.applied != prefix:
                if self.applied < prefix:
                    patch = self.patches[self.applied]
                    series.apply(self.tree, patch)
                    self.applied_dir.mkdir(exist_ok=True)
                    self._patch_file(self.applied).write_bytes(patch.text)
                    self.applied += 1
                else:
                    self.applied -= 1
                    series.revert(self.tree, self.patches[self.applied])
                    self._patch_file(self.applied).unlink(missing_ok=True)
                self._save()
        except series.PatchDoesNotApply:
            raise
        except Exception:
            # The tree now carries an unknown mix of patches: the next run starts afresh.
            self.state_file.unlink(missing_ok=True)
            raise


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
