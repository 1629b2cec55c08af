"""kbuild.py without a kernel build: config merging and validation, tree checks, and build()
driven through a fake `make` on PATH."""
import os
import subprocess
import textwrap
from pathlib import Path

import pytest

from gmemharness import kbuild


def test_parse_config_reads_set_and_unset_options():
    text = "CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=\"x y\"\n# a comment\nCONFIG_D=12\n"
    assert kbuild.parse_config(text) == {"CONFIG_A": "y", "CONFIG_B": "n",
                                         "CONFIG_C": '"x y"', "CONFIG_D": "12"}


def test_merge_config_replaces_and_adds_options():
    base = "CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=y\n"
    merged = kbuild.merge_config(base, {"CONFIG_B": "y", "CONFIG_C": "n", "CONFIG_E": "y"})
    assert kbuild.parse_config(merged) == {"CONFIG_A": "y", "CONFIG_B": "y", "CONFIG_C": "n",
                                           "CONFIG_E": "y"}
    assert merged.count("CONFIG_B") == 1


def test_missing_options_names_each_dropped_or_changed_option():
    wanted = {"CONFIG_KVM": "y", "CONFIG_KVM_SW_PROTECTED_VM": "y", "CONFIG_X": "n",
              "CONFIG_N": "4"}
    actual = {"CONFIG_KVM": "y", "CONFIG_X": "y", "CONFIG_N": "8"}
    assert kbuild.missing_options(wanted, actual) == [
        "CONFIG_KVM_SW_PROTECTED_VM=y (got: not set)", "CONFIG_X=n (got: y)", "CONFIG_N=4 (got: 8)"]


def test_project_fragment_asks_for_guest_memfd_prerequisites():
    wanted = kbuild.load_fragment(kbuild.DEFAULT_FRAGMENT)
    for option in ("CONFIG_64BIT", "CONFIG_KVM", "CONFIG_KVM_AMD", "CONFIG_EXPERT",
                   "CONFIG_KVM_SW_PROTECTED_VM", "CONFIG_SERIAL_8250_CONSOLE", "CONFIG_NUMA_EMU"):
        assert wanted.get(option) == "y", option


def test_missing_fragment_is_reported(tmp_path):
    with pytest.raises(kbuild.KernelTreeError, match="does not exist"):
        kbuild.load_fragment(tmp_path / "nope.config")


def test_fragment_without_options_is_reported(tmp_path):
    empty = tmp_path / "empty.config"
    empty.write_text("# nothing here\n")
    with pytest.raises(kbuild.KernelTreeError, match="sets no CONFIG_ option"):
        kbuild.load_fragment(empty)


def make_fake_tree(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "Makefile").write_text("VERSION = 7\nPATCHLEVEL = 3\nSUBLEVEL = 4\n")
    (root / "Kconfig").write_text("")
    (root / "arch" / "x86").mkdir(parents=True)
    return root


def test_not_a_kernel_tree(tmp_path):
    with pytest.raises(kbuild.KernelTreeError, match="not a Linux kernel source tree"):
        kbuild.check_kernel_tree(tmp_path)


def test_in_tree_build_is_refused(tmp_path):
    tree = make_fake_tree(tmp_path / "linux")
    (tree / ".config").write_text("CONFIG_A=y\n")
    with pytest.raises(kbuild.KernelTreeError, match="make mrproper"):
        kbuild.check_kernel_tree(tree)


def git(tree: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(tree), "-c", "user.name=t", "-c", "user.email=t@t", *args],
                   check=True, capture_output=True)


def test_dirty_git_tree_is_refused_unless_allowed(tmp_path):
    tree = make_fake_tree(tmp_path / "linux")
    git(tree, "init", "-q")
    git(tree, "add", "-A")
    git(tree, "commit", "-qm", "base")
    kbuild.check_kernel_tree(tree)
    (tree / "Kconfig").write_text("# changed\n")
    with pytest.raises(kbuild.KernelTreeError, match="uncommitted changes to tracked files.*Kconfig"):
        kbuild.check_kernel_tree(tree)
    kbuild.check_kernel_tree(tree, require_clean=False)


def test_kernel_version(tmp_path):
    assert kbuild.kernel_version(make_fake_tree(tmp_path / "linux")) == "7.3.4"


def test_make_command_uses_ccache_only_when_installed(monkeypatch, tmp_path):
    monkeypatch.setattr(kbuild.shutil, "which", lambda name: None)
    assert "CC=ccache gcc" not in kbuild.make_command(tmp_path, tmp_path / "o", 2, "bzImage")
    monkeypatch.setattr(kbuild.shutil, "which", lambda name: f"/usr/bin/{name}")
    cmd = kbuild.make_command(tmp_path, tmp_path / "o", 2, "bzImage")
    assert "CC=ccache gcc" in cmd and cmd[-1] == "bzImage" and f"O={tmp_path / 'o'}" in cmd


# A stand-in for make: tinyconfig writes a base .config, olddefconfig drops CONFIG_DROPPED (as
# Kconfig drops an option whose dependencies are unmet), bzImage fails when FAKE_MAKE_FAIL is set.
FAKE_MAKE = textwrap.dedent("""\
    #!/bin/sh
    for a in "$@"; do case "$a" in O=*) out="${a#O=}";; esac; done
    echo "$@" >> "$out/make-calls"
    for a in "$@"; do case "$a" in
      tinyconfig) printf 'CONFIG_BASE=y\\n# CONFIG_KVM is not set\\n' > "$out/.config";;
      olddefconfig) grep -v CONFIG_DROPPED "$out/.config" > "$out/.c" && mv "$out/.c" "$out/.config";;
      bzImage)
        if [ -n "$FAKE_MAKE_FAIL" ]; then echo "virt/kvm/x.c:1:1: error: boom"; exit 2; fi
        mkdir -p "$out/arch/x86/boot" && echo image > "$out/arch/x86/boot/bzImage";;
    esac; done
    """)


@pytest.fixture
def fake_make(tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    make = bindir / "make"
    make.write_text(FAKE_MAKE)
    make.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(kbuild.shutil, "which", lambda name: None)
    return make


def write_fragment(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def test_build_merges_fragment_and_returns_artifacts(tmp_path, fake_make):
    tree = make_fake_tree(tmp_path / "linux")
    fragment = write_fragment(tmp_path / "f.config", "CONFIG_KVM=y", "CONFIG_EXTRA=y")
    artifacts = kbuild.build(tree, tmp_path / "out", fragment=fragment, jobs=1)
    assert artifacts.bzimage == (tmp_path / "out" / "arch/x86/boot/bzImage").resolve()
    assert kbuild.parse_config(artifacts.config.read_text()) == {
        "CONFIG_BASE": "y", "CONFIG_KVM": "y", "CONFIG_EXTRA": "y"}
    assert "bzImage" in artifacts.log.read_text()


def test_build_reports_options_olddefconfig_dropped(tmp_path, fake_make):
    tree = make_fake_tree(tmp_path / "linux")
    fragment = write_fragment(tmp_path / "f.config", "CONFIG_KVM=y", "CONFIG_DROPPED=y")
    with pytest.raises(kbuild.ConfigNotHonoured) as e:
        kbuild.build(tree, tmp_path / "out", fragment=fragment, jobs=1)
    assert e.value.missing == ["CONFIG_DROPPED=y (got: not set)"]
    assert "CONFIG_DROPPED=y" in str(e.value)


def test_build_failure_quotes_first_error_and_keeps_log(tmp_path, fake_make, monkeypatch):
    monkeypatch.setenv("FAKE_MAKE_FAIL", "1")
    tree = make_fake_tree(tmp_path / "linux")
    fragment = write_fragment(tmp_path / "f.config", "CONFIG_KVM=y")
    log = tmp_path / "step" / "build.log"
    with pytest.raises(kbuild.BuildFailed, match="virt/kvm/x.c:1:1: error: boom") as e:
        kbuild.build(tree, tmp_path / "out", fragment=fragment, jobs=1, log_path=log)
    assert e.value.log == log and "error: boom" in log.read_text()


def tinyconfig_runs(out: Path) -> int:
    return sum(" tinyconfig" in line for line in (out / "make-calls").read_text().splitlines())


def test_config_is_regenerated_only_when_its_inputs_change(tmp_path, fake_make):
    tree = make_fake_tree(tmp_path / "linux")
    out = tmp_path / "out"
    fragment = write_fragment(tmp_path / "f.config", "CONFIG_KVM=y")
    kbuild.build(tree, out, fragment=fragment, jobs=1)
    kbuild.build(tree, out, fragment=fragment, jobs=1)
    assert tinyconfig_runs(out) == 1
    (tree / "arch" / "x86" / "Kconfig").write_text("config NEW\n")
    kbuild.build(tree, out, fragment=fragment, jobs=1)
    assert tinyconfig_runs(out) == 2
    write_fragment(fragment, "CONFIG_KVM=y", "CONFIG_EXTRA=y")
    artifacts = kbuild.build(tree, out, fragment=fragment, jobs=1)
    assert tinyconfig_runs(out) == 3
    assert kbuild.parse_config(artifacts.config.read_text())["CONFIG_EXTRA"] == "y"
