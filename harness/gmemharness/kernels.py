"""Turning what the user typed into kernels to boot: a Debian package version, a bzImage (with an
optional modules directory), or a kernel source tree (built by kbuild, issue 5's module)."""
import dataclasses
import importlib
from pathlib import Path

from . import cache, debkernel
from .errors import InfraError
from .kernelsource import KernelSource, from_bzimage


def is_kernel_tree(path: Path) -> bool:
    return path.is_dir() and (path / "Kconfig").is_file() and (path / "Makefile").is_file()


def split_label(spec: str) -> tuple[str | None, str]:
    """`LABEL=PATH` -> (LABEL, PATH); anything else -> (None, spec). Two builds of one release
    (with and without a patch) are told apart by their labels."""
    label, sep, rest = spec.partition("=")
    if sep and label and rest and "/" not in label:
        return label, rest
    return None, spec


def resolve(spec: str, modules_dir: Path | None = None) -> KernelSource:
    """A kernel named by the user; its label is what the user gave (LABEL, or the path or
    version as typed), never the release, so two images of one release stay two kernels."""
    label, spec = split_label(spec)
    path = Path(spec)
    if path.is_file():
        return from_bzimage(path, modules_dir, label=label or spec)
    if path.is_dir():
        if is_kernel_tree(path):
            return from_tree(path, label)
        raise InfraError(f"{spec} is a directory but not a kernel source tree (no Kconfig/Makefile)")
    if "/" in spec:
        raise InfraError(f"kernel image {spec} does not exist")
    kernel = debkernel.fetch(spec)
    return dataclasses.replace(kernel, label=label) if label else kernel


def from_tree(tree: Path, series: list | None = None, label: str | None = None) -> KernelSource:
    """`tree` (or LABEL=TREE) built with the project's fragment; with `series`
    (series_kernel.Series), the tree with those series applied, built in the harness's own copy
    and cached."""
    if label is None:
        label, tree = split_label(str(tree))
        tree = Path(tree)
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
    return from_bzimage(artifacts.bzimage, config=artifacts.config, label=label or tree.name,
                        origin=f"tree {tree}")


def tree_build_dir(tree: Path) -> Path:
    """Where a tree given without series is built (O=), reused across runs."""
    return cache.cache_root() / "kbuild" / Path(tree).resolve().name
