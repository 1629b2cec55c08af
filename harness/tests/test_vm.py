"""Real boots of a Debian kernel under QEMU with the fake suite (tests/fake_suite.sh), so the
harness's crash, splat and timeout handling is checked against a real guest. Slow-ish (a few
boots of ~5-20 s each) and needs the Debian mirror once: run with `-m vm`."""
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from conftest import FAKE_SUITE
from gmemharness import debkernel, session
from gmemharness.kernelsource import from_bzimage
from gmemharness.outcomes import CaseOutcome, RunOutcome

pytestmark = pytest.mark.vm
KERNEL = os.environ.get("GMEMTEST_VM_KERNEL", "7.2")


@pytest.fixture(scope="module")
def kernel():
    return debkernel.fetch(KERNEL)


def run(kernel, tmp_path, cases, **kw):
    opts = session.RunOptions(binary=FAKE_SUITE, out_dir=tmp_path, suite_args=[f"--fake_cases={','.join(cases)}"],
                              case_timeout=kw.pop("case_timeout", 60), **kw)
    return session.run_kernel(kernel, opts)


def outcomes(result):
    return {name: c.outcome for name, c in result.cases.items()}


def test_each_outcome_streams_back_from_a_real_guest(kernel, tmp_path):
    result = run(kernel, tmp_path, ["Fake.Pass1", "Fake.Fail1", "Fake.Skip1", "Fake.Warn1", "Fake.Pass2"])
    assert outcomes(result) == {"Fake.Pass1": CaseOutcome.PASS, "Fake.Fail1": CaseOutcome.FAIL,
                                "Fake.Skip1": CaseOutcome.SKIP, "Fake.Warn1": CaseOutcome.FAIL,
                                "Fake.Pass2": CaseOutcome.PASS}
    assert result.cases["Fake.Warn1"].message.startswith("kernel splat: WARNING: CPU:")
    assert result.cases["Fake.Skip1"].message == "needs KVM_CAP_GUEST_MEMFD_MMAP"
    assert result.accel in ("kvm", "tcg") and result.first_result_s is not None
    assert result.outcome == RunOutcome.FAIL


def test_a_panic_mid_case_is_that_cases_crash_and_resume_runs_the_rest(kernel, tmp_path):
    result = run(kernel, tmp_path, ["Fake.Pass1", "Fake.Panic1", "Fake.Pass2"], resume=True)
    assert outcomes(result) == {"Fake.Pass1": CaseOutcome.PASS, "Fake.Panic1": CaseOutcome.CRASH,
                                "Fake.Pass2": CaseOutcome.PASS}
    assert "sysrq triggered crash" in result.cases["Fake.Panic1"].message
    assert result.outcome == RunOutcome.CRASH and len(result.boots) == 2


def qemu_pids_under(directory: Path) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if cmdline and cmdline[0].endswith(b"qemu-system-x86_64") and str(directory).encode() in b" ".join(cmdline):
            pids.append(int(proc.name))
    return pids


def test_killing_the_guest_mid_case_is_a_crash_of_that_case_with_earlier_results_kept(kernel, tmp_path):
    def kill_when_hang_starts():
        stream = tmp_path / kernel.label / "boot-1" / "stream.jsonl"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if stream.is_file() and '"Fake.Hang1"' in stream.read_text():
                for pid in qemu_pids_under(tmp_path):   # the QEMU this test's run started
                    os.kill(pid, signal.SIGKILL)
                return
            time.sleep(0.1)

    killer = threading.Thread(target=kill_when_hang_starts)
    killer.start()
    result = run(kernel, tmp_path, ["Fake.Pass1", "Fake.Hang1", "Fake.Pass2"])
    killer.join()
    assert outcomes(result) == {"Fake.Pass1": CaseOutcome.PASS, "Fake.Hang1": CaseOutcome.CRASH,
                                "Fake.Pass2": CaseOutcome.NOTRUN}
    assert "QEMU exit -9" in result.cases["Fake.Hang1"].message
    assert result.outcome == RunOutcome.CRASH


def test_a_kernel_whose_modules_lack_kvm_is_an_infrastructure_error(kernel, tmp_path):
    empty = tmp_path / "mods/lib/modules" / kernel.release
    empty.mkdir(parents=True)
    (empty / "modules.dep").write_text("")
    no_kvm = from_bzimage(kernel.bzimage, tmp_path / "mods", label="no-kvm")
    result = run(no_kvm, tmp_path, ["Fake.Pass1"], accel="tcg")
    assert result.outcome == RunOutcome.INFRA and "no /dev/kvm" in result.reason
