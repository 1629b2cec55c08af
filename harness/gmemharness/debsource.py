"""Debian's linux-source-X.Y package as a kernel source tree, fetched through the private apt
configuration (debkernel.private_apt) and unpacked once into the cache."""
import subprocess
import tempfile
from pathlib import Path

from . import cache, debkernel, stage_progress
from .errors import InfraError


def sources_dir() -> Path:
    return cache.cache_root() / "kernel-sources" / "debian"


def fetch_source_tree(series: str, apt=None) -> Path:
    """The unpacked tree of linux-source-`series` (e.g. "7.3"), downloading it on first use."""
    package = f"linux-source-{series}"
    entry = sources_dir() / package
    tree = entry / package
    if (tree / "Makefile").is_file():
        return tree
    apt = apt or debkernel.private_apt()
    apt.update()
    shown = apt.show(package)
    if not shown:
        raise InfraError(f"apt knows no package {package} (with the private config {apt.config})")
    with cache.staged_dir(entry) as stage, tempfile.TemporaryDirectory() as tmp:
        deb, = apt.download({package: shown["version"]}, Path(tmp))
        unpacked = Path(tmp) / "root"
        proc = subprocess.run(["dpkg-deb", "-x", str(deb), str(unpacked)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise InfraError(f"cannot unpack {deb.name}: {proc.stderr.strip()}")
        tarball = unpacked / "usr" / "src" / f"{package}.tar.xz"
        if not tarball.is_file():
            raise InfraError(f"{deb.name} holds no usr/src/{package}.tar.xz")
        progress = stage_progress.StageProgress(f"unpacking {tarball.name}", None, "B")
        with tempfile.TemporaryFile("w+") as err:
            status = stage_progress.run_watched(["tar", "-xf", str(tarball), "-C", str(stage)], progress,
                                                lambda: (stage_progress.tree_bytes(stage), ""),
                                                poll_s=2.0, stderr=err, text=True)
            err.seek(0)
            message = err.read()
        progress.finish("done" if status == 0 else f"tar exited {status}")
        if status != 0:
            raise InfraError(f"cannot unpack {tarball.name}: {message.strip()[-300:]}")
        (stage / "package.txt").write_text(deb.name + "\n")
    return tree
