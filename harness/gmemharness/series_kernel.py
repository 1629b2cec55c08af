"""A kernel source tree with patch series applied, as a test kernel.

The series are applied in order to the harness's own copy of the tree (series_bisect's
SeriesWorkspace under the cache's series-work/; the tree itself is never modified), built there
incrementally with the project's fragment (kbuild), and the bzImage and .config are kept in the
cache under a key made of the base tree's identity, the fragment and every patch's digest, so
the same inputs boot the cached kernel without building. A patch that does not apply stops with
one line, and no cache entry is written."""
import fcntl
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from . import cache, kbuild, kernels, series
from .errors import InfraError
from .kernelsource import KernelSource, from_bzimage
from .series_bisect import SeriesWorkspace

_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_MBOX_SUFFIXES = (".mbx", ".mbox", ".eml")


@dataclass(frozen=True)
class Series:
    label: str                      # what the kernel's label carries: "uffd-v2-12-13"
    source: Path                    # the directory or mbox
    patches: tuple[series.Patch, ...]


def split_label(arg: str) -> tuple[str, Path]:
    """`NAME=PATH` names the series NAME; a bare PATH is named after its directory or file."""
    name, sep, rest = arg.partition("=")
    if sep and _LABEL.fullmatch(name) and not Path(arg).exists():
        return name, Path(rest)
    path = Path(arg)
    label = path.resolve().name
    if path.is_file() and path.suffix in _MBOX_SUFFIXES:
        label = path.stem
    return re.sub(r"[^A-Za-z0-9._-]+", "-", label), path


def load(arg: str) -> Series:
    label, path = split_label(arg)
    return Series(label, path.resolve(), tuple(series.load_series(path)))


def kernel_label(tree: Path, all_series: list[Series]) -> str:
    return "+".join([Path(tree).resolve().name] + [s.label for s in all_series])


def base_identity(tree: Path) -> str:
    """What the base tree is: for a git tree its HEAD and a digest of its uncommitted changes;
    otherwise its version and a digest of every file's path, size and mtime (an edited or
    replaced file is noticed)."""
    tree = Path(tree).resolve()
    if (tree / ".git").exists():
        head = _git(tree, "rev-parse", "HEAD")
        if head is not None:
            dirty = hashlib.sha256((_git(tree, "diff", "HEAD", "--binary") or "").encode()
                                   + (_git(tree, "ls-files", "--others", "--exclude-standard") or "").encode())
            return f"git {head.strip()} changes {dirty.hexdigest()[:16]}"
    digest = hashlib.sha256()
    top = len(str(tree)) + 1
    for root, dirs, files in os.walk(tree):
        dirs[:] = sorted(d for d in dirs if d != ".git")
        for name in sorted(files):
            path = os.path.join(root, name)
            st = os.lstat(path)
            digest.update(f"{path[top:]}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return f"tree {kbuild.kernel_version(tree)} files {digest.hexdigest()[:16]}"


def _git(tree: Path, *args: str) -> str | None:
    proc = subprocess.run(["git", "-C", str(tree), *args], capture_output=True, text=True,
                          env=dict(os.environ, GIT_CEILING_DIRECTORIES=str(tree.parent)))
    return proc.stdout if proc.returncode == 0 else None


def cache_key(identity: str, all_series: list[Series], fragment_text: str) -> str:
    """Base identity, fragment and the patches' contents in order; not their names or labels."""
    digest = hashlib.sha256(f"{identity}\0{fragment_text}\0".encode())
    for s in all_series:
        digest.update(b"series\0" + "".join(p.digest for p in s.patches).encode())
    return digest.hexdigest()[:24]


def kernels_dir() -> Path:
    return cache.cache_root() / "series-kernels"


def work_dir(tree: Path) -> Path:
    tree = Path(tree).resolve()
    return cache.cache_root() / "series-work" / f"{tree.name}-{hashlib.sha256(str(tree).encode()).hexdigest()[:8]}"


def mirrored_layout(tree: Path, work: Path) -> tuple[Path, Path]:
    """The copy and its build dir inside `work`, placed relative to each other as the base and
    its plain build dir are: ccache (CCACHE_BASEDIR at their common parent, see kbuild) then
    serves the copy's unpatched files from objects the plain build compiled."""
    tree, build = Path(tree).resolve(), kernels.tree_build_dir(tree)
    common = Path(os.path.commonpath([tree, build]))
    return work / "t" / tree.relative_to(common), work / "t" / build.relative_to(common)


class SeriesKernel:
    """One base tree plus series: its label, cache key and cache entry."""

    def __init__(self, tree: Path, all_series: list[Series], fragment: Path = kbuild.DEFAULT_FRAGMENT):
        self.tree, self.all_series, self.fragment = Path(tree).resolve(), list(all_series), Path(fragment)
        if not all_series:
            raise InfraError("a series kernel needs at least one series")
        kbuild.check_kernel_tree(self.tree, require_clean=False)
        self.identity = base_identity(self.tree)
        self.label = kernel_label(self.tree, self.all_series)
        kbuild.load_fragment(self.fragment)
        self.key = cache_key(self.identity, self.all_series, self.fragment.read_text())
        self.entry = kernels_dir() / self.key

    @property
    def patches(self) -> list[series.Patch]:
        return [p for s in self.all_series for p in s.patches]

    def build_command(self) -> str:
        args = [str(kbuild.REPO_ROOT / "harness" / "gmemharness.sh"), "build", "--kernel-tree", str(self.tree)]
        for s in self.all_series:
            args += ["--series", f"{s.label}={s.source}" if s.label != split_label(str(s.source))[0]
                     else str(s.source)]
        return shlex.join(args)

    def cached(self) -> KernelSource | None:
        if not (self.entry / "bzImage").is_file() or not (self.entry / "config").is_file():
            return None
        return self._source("cached")

    def _source(self, how: str) -> KernelSource:
        names = " + ".join(f"{s.label} ({len(s.patches)} patches)" for s in self.all_series)
        return from_bzimage(self.entry / "bzImage", config=self.entry / "config", label=self.label,
                            origin=f"tree {self.tree} + {names}, {how} {self.entry}")

    def build(self, jobs: int | None = None, log=None) -> KernelSource:
        """Apply every series to the copy, build it, and store the kernel in the cache."""
        log = log or _stderr
        work = work_dir(self.tree)
        copy, build_dir = mirrored_layout(self.tree, work)
        with _locked(work, log):
            cached = self.cached()      # built by the run we waited for
            if cached:
                log(f"{self.label}: reusing the cached kernel {self.entry}, built meanwhile")
                return cached
            self._build_into_cache(work, copy, build_dir, jobs, log)
        return self._source("built")

    def _build_into_cache(self, work: Path, copy: Path, build_dir: Path, jobs: int | None, log) -> None:
        build_log = work / "build.log"
        with cache.staged_dir(self.entry) as stage:
            space = SeriesWorkspace(self.tree, work, self.patches, tree=copy, build_dir=build_dir,
                                    identity=self.identity)
            space.prepare(require_clean=False)   # the identity covers uncommitted changes
            shared = space.applied
            try:
                space.move_to(len(self.patches))
            except series.PatchDoesNotApply as e:
                raise InfraError(self._rejection_line(e, space)) from None
            how = "a fresh copy of the base" if space.fresh_copy else f"the reused copy (kept {shared} of its patches)"
            log(f"{self.label}: {len(self.patches)} patches applied to {how} ({space.tree}); "
                f"building in {space.build_dir} (log: {build_log})")
            artifacts = kbuild.build(space.tree, space.build_dir, fragment=self.fragment, jobs=jobs,
                                     log_path=build_log, require_clean=False)
            shutil.copy(build_log, stage / "build.log")
            shutil.copy(artifacts.bzimage, stage / "bzImage")
            shutil.copy(artifacts.config, stage / "config")
            (stage / "meta.json").write_text(json.dumps(self._meta(artifacts), indent=1) + "\n")
        log(f"{self.label}: built in {artifacts.seconds:.0f} s, cached as {self.entry}")

    def _meta(self, artifacts: kbuild.BuildArtifacts) -> dict:
        return {"label": self.label, "base": str(self.tree), "base_identity": self.identity,
                "fragment": str(self.fragment), "build_seconds": round(artifacts.seconds, 1),
                "series": [{"label": s.label, "source": str(s.source),
                            "patches": [{"name": p.name, "subject": p.subject, "sha256": p.digest}
                                        for p in s.patches]} for s in self.all_series]}

    def _rejection_line(self, e: series.PatchDoesNotApply, space: SeriesWorkspace) -> str:
        owner, number = self._locate(e.patch)
        path = owner.source / e.patch.name if owner.source.is_dir() else None
        if path is None or not path.is_file():
            path = space.work / "rejected" / e.patch.name
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(e.patch.text)
        return (f"{self.label}: patch {number}/{len(owner.patches)} of series {owner.label} "
                f"({e.patch.name}, \"{e.patch.subject}\") does not apply: {e.where()}; "
                f"the rejects: cd {shlex.quote(str(space.tree))} && git apply --check --verbose "
                f"{shlex.quote(str(path))}")

    def _locate(self, patch: series.Patch) -> tuple[Series, int]:
        for s in self.all_series:
            for number, p in enumerate(s.patches, 1):
                if p is patch:
                    return s, number
        raise AssertionError(f"{patch} is in no series")


def resolve(tree: Path, all_series: list[Series], fragment: Path = kbuild.DEFAULT_FRAGMENT,
            log=None) -> KernelSource:
    """The cached kernel for these inputs, built first when the cache lacks it."""
    log = log or _stderr
    kernel = SeriesKernel(tree, all_series, fragment)
    cached = kernel.cached()
    if cached:
        log(f"{kernel.label}: reusing the cached kernel {kernel.entry} (same base, fragment and patches)")
        return cached
    return kernel.build(log=log)


@contextmanager
def _locked(work: Path, log):
    """One build per copy at a time; a second run on the same base waits."""
    work.mkdir(parents=True, exist_ok=True)
    with open(work / ".lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"waiting for another build in {work}")
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
