"""debsource.py with a fake apt that hands out locally built linux-source packages."""
import subprocess
from pathlib import Path

import pytest

from gmemharness import debsource
from gmemharness.errors import InfraError


class FakeApt:
    """show/download/update like debapt.PrivateApt; `tarball` decides what the .deb holds."""

    def __init__(self, tmp_path: Path, tarball: bool = True, known: bool = True):
        self.tmp_path, self.tarball, self.known = tmp_path, tarball, known
        self.config = tmp_path / "apt.conf"
        self.downloads = 0

    def update(self):
        pass

    def show(self, package):
        return {"package": package, "version": "7.3.4-1"} if self.known else None

    def download(self, packages: dict[str, str], dest: Path) -> list[Path]:
        self.downloads += 1
        (name, version), = packages.items()
        root = self.tmp_path / "pkgroot"
        src = root / "usr" / "src"
        src.mkdir(parents=True, exist_ok=True)
        (root / "DEBIAN").mkdir(exist_ok=True)
        (root / "DEBIAN" / "control").write_text(
            f"Package: {name}\nVersion: {version}\nArchitecture: all\nMaintainer: t <t@t>\nDescription: t\n")
        if self.tarball:
            tree = self.tmp_path / "content" / name
            tree.mkdir(parents=True, exist_ok=True)
            (tree / "Makefile").write_text("VERSION = 7\n")
            subprocess.run(["tar", "-cJf", str(src / f"{name}.tar.xz"), "-C", str(tree.parent), name],
                           check=True)
        deb = dest / f"{name}_{version}_all.deb"
        subprocess.run(["dpkg-deb", "-b", "-Zgzip", str(root), str(deb)], check=True, capture_output=True)
        return [deb]


def test_source_tree_is_unpacked_once_and_cached(tmp_path):
    apt = FakeApt(tmp_path)
    tree = debsource.fetch_source_tree("7.3", apt)
    assert tree.name == "linux-source-7.3" and (tree / "Makefile").read_text() == "VERSION = 7\n"
    assert debsource.fetch_source_tree("7.3", apt) == tree
    assert apt.downloads == 1


def test_unknown_package_is_a_clear_error(tmp_path):
    with pytest.raises(InfraError, match="apt knows no package linux-source-9.9"):
        debsource.fetch_source_tree("9.9", FakeApt(tmp_path, known=False))


def test_package_without_tarball_leaves_nothing_in_the_cache(tmp_path):
    with pytest.raises(InfraError, match="holds no usr/src/linux-source-7.3.tar.xz"):
        debsource.fetch_source_tree("7.3", FakeApt(tmp_path, tarball=False))
    assert not (debsource.sources_dir() / "linux-source-7.3").exists()
