"""`cmake --install` lays out the suite, the expectation lists and the man page; CPack's .deb
installs on a fresh Debian (a debootstrapped chroot, cached) and `gmemtest --probe` runs there.
The .deb test builds a package and needs root and the Debian mirror: run with -m deb."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import debchroot

REPO = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("GMEMTEST_BUILD_DIR", REPO / "build"))


def built_or_skip() -> None:
    if not (BUILD / "cases" / "gmemtest").is_file() or not (BUILD / "CMakeCache.txt").is_file():
        pytest.skip(f"{BUILD} holds no configured build with the suite built")


def test_install_puts_suite_expectations_and_man_page_under_the_prefix(tmp_path):
    built_or_skip()
    prefix = tmp_path / "prefix"
    proc = subprocess.run(["cmake", "--install", str(BUILD), "--prefix", str(prefix)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert os.access(prefix / "bin/gmemtest", os.X_OK)
    expect = sorted(p.name for p in (prefix / "share/gmemtest/expect").iterdir())
    assert expect == sorted(p.name for p in (REPO / "ci/expect").iterdir())
    man = subprocess.run(["man", "-l", "-P", "cat", str(prefix / "share/man/man1/gmemtest.1")],
                         capture_output=True, text=True, env=dict(os.environ, MANWIDTH="100"))
    for flag in ("--probe", "--ktap", "--gmemtest_stream", "--series-profile", "EXIT STATUS"):
        assert flag in man.stdout.replace("\u2010", "-"), flag
    help_text = subprocess.run([str(prefix / "bin/gmemtest"), "--help"], capture_output=True, text=True).stdout
    for flag in ("--probe", "--probe-json", "--ktap", "--gmemtest_stream", "--series-profile", "--gtest_filter"):
        assert flag in help_text, flag


@pytest.mark.deb
def test_the_deb_installs_on_a_fresh_debian_and_probes(tmp_path):
    built_or_skip()
    if os.geteuid() != 0:
        pytest.skip("needs root for chroot")
    proc = subprocess.run(["cpack", "--config", str(BUILD / "CPackConfig.cmake"), "-G", "DEB", "-B", str(tmp_path / "pkg")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    deb, = (tmp_path / "pkg").glob("gmemtest_*.deb")
    root = debchroot.unpack(tmp_path / "root")
    shutil.copy(deb, root / "tmp" / deb.name)
    assert not (root / "usr/bin/gmemtest").exists()
    result = debchroot.run_in(root, f"apt-get -q update >/dev/null && apt-get install -y -q /tmp/{deb.name} "
                                    "&& gmemtest --probe && ls /usr/share/gmemtest/expect "
                                    "&& ls /usr/share/man/man1/gmemtest.1*")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "gmem" in result.stdout and "kvm" in result.stdout and "7.3.4+deb13-cloud-amd64.txt" in result.stdout
