"""Turning what the user typed into kernels to boot: a Debian package version, a bzImage (with an
optional modules directory), or a kernel source tree (built by kbuild, issue 5's module)."""
import importlib
from pathlib import Path

from . import cache, debkernel
from .errors import InfraError
from .kernelsource import KernelSource, from_bzimage


def is_kernel_tree(path: Path) -> bool:
    return path.is_dir() and (path / "Kconfig").is_file() and (path / "Makefile").is_file()


def resolve(spec: str, modules_dir: Path | None = None) -> KernelSource:
    path = Path(spec)
    if path.is_file():
        return from_bzimage(path, modules_dir)
    if path.is_dir():
        if is_kernel_tree(path):
            return from_tree(path)
        raise InfraError(f"{spec} is a directory but not a kernel source tree (no Kconfig/Makefile)")
    if "/" in spec:
        raise InfraError(f"kernel image {spec} does not exist")
    return debkernel.fetch(spec)


def from_tree(tree: Path, series: list | None = None) -> KernelSource:
    """`tree` built with the project's fragment; with `series` (series_kernel.Series), the
    tree with those series applied, built in the harness's own copy and cached."""
    if not is_kernel_tree(tree):
        raise InfraError(f"{tree} is not a kernel source tree (no Kconfig/Makefile)")
    try:
        kbuild = importlib.import_module("gmemharness.kbuild")
    except ImportError:
        raise InfraError("building a kernel tree needs gmemharness/kbuild.py, which is not here") from None
    tree = tree.resolve()
    if series:
        from . import series_kernel
        return series_kernel.resolve(tree, series)
    artifacts = kbuild.build(tree, tree_build_dir(tree), require_clean=False)
    return from_bzimage(artifacts.bzimage, config=artifacts.config, label=tree.name,
                        origin=f"tree {tree}")


def tree_build_dir(tree: Path) -> Path:
    """Where a tree given without series is built (O=), reused across runs."""
    return cache.cache_root() / "kbuild" / Path(tree).resolve().name
