"""Build a kernel source tree with the project's config fragment.

tinyconfig, then the fragment merged on top, then olddefconfig; then every option the fragment
asks for is checked against the resulting .config (as kunit's validate_config does), because
Kconfig silently drops an option whose dependencies are not met. The build is out of tree (O=),
so the same build directory is reused and rebuilds are incremental; ccache is used when
installed. Build metadata (timestamp, user, host, build number) is fixed so that the same
source gives the same bzImage, which lets a bisection notice a culprit that changed nothing.
"""
import hashlib
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from . import stage_progress
from .errors import InfraError

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_FRAGMENT = REPO_ROOT / "vm-images" / "config" / "gmemtest.config"
ARCH = "x86_64"
BZIMAGE = Path("arch/x86/boot/bzImage")

_SET = re.compile(r"^(CONFIG_[A-Za-z0-9_]+)=(.*)$")
_UNSET = re.compile(r"^# (CONFIG_[A-Za-z0-9_]+) is not set$")

# The same source must give the same image (see the module docstring).
REPRODUCIBLE_ENV = {
    "KBUILD_BUILD_TIMESTAMP": "2000-01-01 00:00:00 UTC",
    "KBUILD_BUILD_USER": "gmemtest",
    "KBUILD_BUILD_HOST": "gmemtest",
    "KBUILD_BUILD_VERSION": "1",
}


class KernelTreeError(InfraError):
    """The input is wrong (not a kernel tree, a dirty tree, a missing fragment): the same at
    every commit, so a bisection must stop rather than skip."""


class BuildFailed(InfraError):
    """make failed; `log` holds the full output."""

    def __init__(self, message: str, log: Path):
        super().__init__(message)
        self.log = log


class ConfigNotHonoured(InfraError):
    """olddefconfig dropped or changed options the fragment asked for."""

    def __init__(self, missing: list[str], config: Path):
        self.missing = missing
        self.config = config
        super().__init__(
            f"{len(missing)} requested option(s) did not survive olddefconfig in {config}: "
            + "; ".join(missing))


@dataclass
class BuildArtifacts:
    bzimage: Path
    config: Path
    log: Path
    seconds: float

    def image_digest(self) -> str:
        return hashlib.sha256(self.bzimage.read_bytes()).hexdigest()


def parse_config(text: str) -> dict[str, str]:
    """CONFIG_* assignments of a fragment or .config; `# CONFIG_X is not set` reads as "n"."""
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        m = _SET.match(line)
        if m:
            values[m.group(1)] = m.group(2)
            continue
        m = _UNSET.match(line)
        if m:
            values[m.group(1)] = "n"
    return values


def load_fragment(fragment: Path) -> dict[str, str]:
    if not fragment.is_file():
        raise KernelTreeError(f"config fragment {fragment} does not exist")
    wanted = parse_config(fragment.read_text())
    if not wanted:
        raise KernelTreeError(f"config fragment {fragment} sets no CONFIG_ option")
    return wanted


def merge_config(base: str, wanted: dict[str, str]) -> str:
    """`base` (a .config) with every option of `wanted` replaced or added."""
    kept = [line for line in base.splitlines()
            if _symbol_of(line) not in wanted]
    added = [f"{name}={value}" if value != "n" else f"# {name} is not set"
             for name, value in wanted.items()]
    return "\n".join(kept + added) + "\n"


def _symbol_of(line: str) -> str | None:
    m = _SET.match(line) or _UNSET.match(line)
    return m.group(1) if m else None


def missing_options(wanted: dict[str, str], actual: dict[str, str]) -> list[str]:
    """Requested options the final .config does not have, each as 'CONFIG_X=y (got: ...)'."""
    missing = []
    for name, value in wanted.items():
        got = actual.get(name, "n")
        if got != value:
            shown = "not set" if got == "n" else got
            missing.append(f"{name}={value} (got: {shown})")
    return missing


def check_kernel_tree(tree: Path, require_clean: bool = True) -> None:
    """Raise KernelTreeError unless `tree` is a Linux source tree usable for an O= build."""
    makefile = tree / "Makefile"
    if not (makefile.is_file() and (tree / "Kconfig").is_file() and (tree / "arch" / "x86").is_dir()
            and re.search(r"^VERSION = \d+", makefile.read_text(errors="replace"), re.M)):
        raise KernelTreeError(f"{tree} is not a Linux kernel source tree "
                              "(no top-level Makefile with VERSION =, Kconfig and arch/x86)")
    if (tree / ".config").exists() or (tree / "include" / "config").exists():
        raise KernelTreeError(f"{tree} has an in-tree build (.config or include/config); "
                              "an out-of-tree build needs it clean: run `make mrproper` there")
    if require_clean and (tree / ".git").exists():
        changed = git_changes(tree)
        if changed:
            raise KernelTreeError(f"{tree} has uncommitted changes to tracked files "
                                  f"({', '.join(changed[:5])}{', ...' if len(changed) > 5 else ''}); "
                                  "commit or stash them first")


def git_changes(tree: Path) -> list[str]:
    proc = subprocess.run(["git", "-C", str(tree), "status", "--porcelain", "--untracked-files=no"],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise KernelTreeError(f"git status failed in {tree}: {proc.stderr.strip()}")
    return [line[3:] for line in proc.stdout.splitlines()]


def kernel_version(tree: Path) -> str:
    fields = dict(re.findall(r"^(VERSION|PATCHLEVEL|SUBLEVEL) = (\S*)",
                             (tree / "Makefile").read_text(errors="replace"), re.M))
    return ".".join(fields.get(k, "?") for k in ("VERSION", "PATCHLEVEL", "SUBLEVEL"))


def make_command(tree: Path, out_dir: Path, jobs: int, *targets: str) -> list[str]:
    cmd = ["make", "-C", str(tree), f"O={out_dir}", f"ARCH={ARCH}", f"-j{jobs}"]
    if shutil.which("ccache"):
        cmd.append("CC=ccache gcc")
    return cmd + list(targets)


def make_env(tree: Path, out_dir: Path) -> dict[str, str]:
    """REPRODUCIBLE_ENV, plus a ccache base dir so that two copies of a tree laid out alike
    (TREE beside BUILD) share cache entries: ccache rewrites absolute paths below it."""
    env = dict(os.environ, **REPRODUCIBLE_ENV)
    env.setdefault("CCACHE_BASEDIR", os.path.commonpath([tree, out_dir]))
    env.setdefault("CCACHE_NOHASHDIR", "1")
    return env


def _make(tree: Path, out_dir: Path, jobs: int, log, *targets: str) -> int:
    cmd = make_command(tree, out_dir, jobs, *targets)
    log.write(f"$ {' '.join(cmd)}\n")
    log.flush()
    if targets != ("bzImage",):
        return subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=make_env(tree, out_dir)).returncode
    return _make_with_progress(cmd, tree, out_dir, log)


_BUILD_STEP = re.compile(r"\s+(CC|AS|LD|AR|CC \[M\])\s+(\S+)")
_STEPS_FILE = ".gmemtest-build-steps"   # how many compile/link steps the last full build took


def _make_with_progress(cmd: list[str], tree: Path, out_dir: Path, log) -> int:
    """make, its output to `log`, its progress (compile and link steps against the count of the
    last complete build of this output directory, when known) on stderr."""
    steps_file = out_dir / _STEPS_FILE
    try:
        total = int(steps_file.read_text())
    except (OSError, ValueError):
        total = None
    steps = 0
    progress = stage_progress.StageProgress(f"building {tree.name} (make bzImage)", total, "steps",
                                            heartbeat=True)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=make_env(tree, out_dir), text=True, errors="replace")
    for line in proc.stdout:
        log.write(line)
        m = _BUILD_STEP.match(line)
        steps += bool(m)
        progress.update(steps, detail=line.split()[-1] if line.strip() else "")
    status = proc.wait()
    log.flush()   # callers read the log file for the first error
    progress.finish("done" if status == 0 else f"make exited {status}")
    if status == 0 and (total is None or steps > total):
        steps_file.write_text(f"{steps}\n")
    return status


def config_key(tree: Path, fragment_text: str) -> str:
    """A digest of everything the generated .config depends on: the fragment, every Kconfig
    file, the tinyconfig fragments, the top Makefile and the compiler (Kconfig probes it)."""
    digest = hashlib.sha256(fragment_text.encode())
    compiler = subprocess.run(["gcc", "--version"], capture_output=True, text=True).stdout
    digest.update(compiler.encode())
    inputs = [tree / "Makefile", *sorted((tree / "kernel" / "configs").glob("tiny*.config")),
              tree / "arch" / "x86" / "configs" / "tiny.config"]
    for root, dirs, files in os.walk(tree):
        dirs[:] = sorted(d for d in dirs if d != ".git")
        inputs += [Path(root) / f for f in sorted(files) if f.startswith("Kconfig")]
    for path in inputs:
        if path.is_file():
            digest.update(str(path.relative_to(tree)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def configure(tree: Path, out_dir: Path, fragment_text: str, log) -> Path:
    """tinyconfig + fragment + olddefconfig in `out_dir`, skipped when nothing the result
    depends on changed since the last time; returns the validated .config."""
    wanted = parse_config(fragment_text)
    config, key_file = out_dir / ".config", out_dir / "gmemtest-config.key"
    key = config_key(tree, fragment_text)
    if config.is_file() and key_file.is_file() and key_file.read_text() == key:
        log.write("gmemtest: .config inputs unchanged, keeping it\n")
    else:
        key_file.unlink(missing_ok=True)
        if _make(tree, out_dir, 1, log, "tinyconfig") != 0:
            raise BuildFailed(f"make tinyconfig failed in {tree}; see {log.name}", Path(log.name))
        config.write_text(merge_config(config.read_text(), wanted))
        if _make(tree, out_dir, 1, log, "olddefconfig") != 0:
            raise BuildFailed(f"make olddefconfig failed in {tree}; see {log.name}", Path(log.name))
        key_file.write_text(key)
    missing = missing_options(wanted, parse_config(config.read_text()))
    if missing:
        log.write("requested options that did not survive olddefconfig:\n  "
                  + "\n  ".join(missing) + "\n")
        raise ConfigNotHonoured(missing, config)
    return config


def build(tree, out_dir, fragment=DEFAULT_FRAGMENT, jobs: int | None = None,
          log_path=None, require_clean: bool = True) -> BuildArtifacts:
    """Configure and build `tree` into `out_dir` (created, reused across calls).

    Raises KernelTreeError for bad input, ConfigNotHonoured when the fragment was not honoured,
    BuildFailed when make failed. The full make output goes to `log_path`
    (default: out_dir/gmemtest-build.log)."""
    tree, out_dir = Path(tree).resolve(), Path(out_dir).resolve()
    check_kernel_tree(tree, require_clean)
    load_fragment(Path(fragment))
    fragment_text = Path(fragment).read_text()
    out_dir.mkdir(parents=True, exist_ok=True)
    log_path = Path(log_path) if log_path else out_dir / "gmemtest-build.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    jobs = jobs or os.cpu_count() or 1
    start = time.monotonic()
    with open(log_path, "w") as log:
        config = configure(tree, out_dir, fragment_text, log)
        configured = time.monotonic()
        status = _make(tree, out_dir, jobs, log, "bzImage")
        log.write(f"gmemtest: configure {configured - start:.1f} s, "
                  f"make bzImage {time.monotonic() - configured:.1f} s\n")
        if status != 0:
            raise BuildFailed(f"kernel build failed in {tree}: {_first_error(log_path)} "
                              f"(full log: {log_path})", log_path)
    bzimage = out_dir / BZIMAGE
    if not bzimage.is_file():
        raise BuildFailed(f"make succeeded but {bzimage} is missing (full log: {log_path})", log_path)
    return BuildArtifacts(bzimage, config, log_path, time.monotonic() - start)


def _first_error(log_path: Path) -> str:
    for line in log_path.read_text(errors="replace").splitlines():
        if re.search(r"\berror\b|Error \d", line):
            return line.strip()
    return "no error line found"
