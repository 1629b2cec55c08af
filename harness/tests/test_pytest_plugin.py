"""The pytest plugin, run as a real pytest session against a fake QEMU found on PATH."""
import json
import os
import re
import subprocess
import sys

from conftest import FAKE_QEMU, FAKE_SUITE, HARNESS, write_bzimage, write_modules


def event(name, **fields):
    return ["stream", {"event": name, **fields}]


def test_each_case_becomes_a_pytest_test_with_the_suites_verdict(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "qemu-system-x86_64").symlink_to(FAKE_QEMU)
    script = [event("harness-boot"), event("hello", version=1),
              event("start", case="Fake.Pass1"), event("end", case="Fake.Pass1", outcome="pass"),
              event("start", case="Fake.Fail1"), event("end", case="Fake.Fail1", outcome="fail", message="Expected: 0"),
              event("start", case="Fake.Skip1"), event("end", case="Fake.Skip1", outcome="skip", message="no hugetlb"),
              event("start", case="Fake.Pass2"), ["kill", None]]
    (tmp_path / "scripts.json").write_text(json.dumps([script]))
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", FAKE_GUEST_SCRIPTS=str(tmp_path / "scripts.json"),
               GMEMTEST_CACHE=str(tmp_path / "cache"))
    kernel = str(write_bzimage(tmp_path / "bzImage"))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA", "vmtests",
         "--gmem-kernel", kernel, "--gmem-modules", str(write_modules(tmp_path / "mods")),
         "--gmem-binary", str(FAKE_SUITE), "--gmem-accel", "tcg", "--gmem-out", str(tmp_path / "out")],
        cwd=HARNESS, env=env, capture_output=True, text=True, timeout=300)
    out = proc.stdout
    assert "1 failed, 1 passed, 1 skipped, 1 error" in out, out
    test = f"vmtests/test_gmemtest.py::test_case[{kernel}"
    assert f"PASSED {test}::Fake.Pass1]" in out
    assert f"FAILED {test}::Fake.Fail1]" in out and re.search(r"Fake\.Fail1\] _+\nExpected: 0\n", out)
    assert "SKIPPED [1]" in out and ": no hugetlb" in out
    assert f"ERROR {test}::Fake.Pass2]" in out and "RuntimeError: CRASH: the guest died during the case" in out
    assert "gmemtest kernels" in out and f"{kernel}: crash" in out   # keyed by the path given
