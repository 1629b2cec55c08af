"""--runner vng: one clear line and exit 5 without virtme-ng; with it (a fake vng here), the boot
goes through vng with the result stream on a virtio port and gives the same results."""
import json
import os

import pytest

from conftest import FAKE_QEMU, FAKE_SUITE, HARNESS, write_bzimage, write_modules
from gmemharness import cli, qemu, runner_vng


@pytest.fixture
def kernel_args(tmp_path):
    return ["run", str(write_bzimage(tmp_path / "bzImage")), "--modules", str(write_modules(tmp_path / "mods")),
            "--binary", str(FAKE_SUITE), "--out", str(tmp_path / "out"), "--accel", "tcg"]


def test_without_vng_one_line_and_the_infrastructure_exit_code(kernel_args, monkeypatch, capsys):
    monkeypatch.setattr(qemu, "qemu_binary", lambda: str(FAKE_QEMU))
    monkeypatch.setattr(runner_vng, "VNG", "vng-that-is-not-installed")
    assert cli.main(kernel_args + ["--runner", "vng"]) == 5
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "virtme-ng is not installed" in err


def test_through_vng_the_results_are_those_of_the_qemu_runner(kernel_args, tmp_path, monkeypatch, capsys):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "vng").symlink_to(HARNESS / "tests" / "fake_vng.py")
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setattr(qemu, "qemu_binary", lambda: str(FAKE_QEMU))
    script = [["console", "vng booted"]] + [["stream", {"event": e, **f}] for e, f in (
        ("harness-boot", {}), ("hello", {"version": 1}), ("start", {"case": "Fake.A"}),
        ("end", {"case": "Fake.A", "outcome": "pass"}), ("start", {"case": "Fake.B"}),
        ("end", {"case": "Fake.B", "outcome": "skip", "message": "no hugetlb"}), ("done", {}))]
    results = {}
    for runner in ("qemu", "vng"):
        scripts = tmp_path / f"{runner}.json"
        scripts.write_text(json.dumps([script]))
        monkeypatch.setenv("FAKE_GUEST_SCRIPTS", str(scripts))
        monkeypatch.setenv("FAKE_VNG_ARGV", str(tmp_path / "vng-argv.json"))
        out = tmp_path / runner
        args = kernel_args[:-4] + ["--out", str(out), "--accel", "tcg", "--runner", runner,
                                   "--", "--fake_cases=Fake.A,Fake.B"]
        assert cli.main(args) == 0
        data = json.loads((out / "results.json").read_text())["kernels"][0]
        results[runner] = [(c["name"], c["outcome"], c["message"]) for c in data["cases"]]
    assert results["vng"] == results["qemu"] == [("Fake.A", "pass", ""), ("Fake.B", "skip", "no hugetlb")]
    argv = json.loads((tmp_path / "vng-argv.json").read_text())
    assert argv[:2] == ["--run", str(tmp_path / "bzImage")] and "--disable-kvm" in argv
    run = argv[argv.index("--exec") + 1]
    assert str(runner_vng.GUEST_SCRIPT) in run and str(FAKE_SUITE) in run and "--gmemtest_stream" not in run
    assert f"virtserialport,chardev=results,name={runner_vng.PORT_NAME}" in argv
    modules = next((tmp_path / "vng").glob("*/boot-1/modules.txt"))
    assert "kvm " in modules.read_text()
