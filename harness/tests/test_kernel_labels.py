"""Kernels are keyed by what the user typed (or LABEL=PATH), not by release: two builds of one
release, with and without a patch, are two columns and --diff compares them."""
import json

import pytest

from conftest import FAKE_QEMU, FAKE_SUITE, write_bzimage, write_modules
from gmemharness import cli, kernels, ktap, qemu
from gmemharness.errors import InfraError


def boot_script(outcome_a: str) -> list:
    events = [("harness-boot", {}), ("hello", {"version": 1}), ("start", {"case": "Fake.A"}),
              ("end", {"case": "Fake.A", "outcome": outcome_a, "message": "" if outcome_a == "pass" else "EINVAL"}),
              ("start", {"case": "Fake.B"}), ("end", {"case": "Fake.B", "outcome": "pass"}), ("done", {})]
    return [["stream", {"event": e, **fields}] for e, fields in events]


@pytest.fixture
def two_builds_of_one_release(tmp_path, monkeypatch):
    monkeypatch.setattr(qemu, "qemu_binary", lambda: str(FAKE_QEMU))
    scripts = tmp_path / "scripts.json"
    scripts.write_text(json.dumps([boot_script("pass"), boot_script("fail")]))
    monkeypatch.setenv("FAKE_GUEST_SCRIPTS", str(scripts))
    images = []
    for name in ("base", "patched"):
        (tmp_path / name).mkdir()
        images.append(str(write_bzimage(tmp_path / name / "bzImage", release="7.3.0-same")))
    return images, str(write_modules(tmp_path / "mods", release="7.3.0-same"))


def run(args, tmp_path, mods):
    return cli.main(["run", *args, "--modules", mods, "--binary", str(FAKE_SUITE), "--out",
                     str(tmp_path / "out"), "--accel", "tcg", "--jobs", "1", "--", "--fake_cases=Fake.A,Fake.B"])


def test_two_images_of_one_release_are_two_kernels_and_diffed(two_builds_of_one_release, tmp_path, capsys):
    (base, patched), mods = two_builds_of_one_release
    assert run([base, patched], tmp_path, mods) == 1
    out = capsys.readouterr().out
    assert f"diff {base} -> {patched}: 1 regressed" in out
    assert "REGRESSED Fake.A: pass -> fail" in out
    labels = [k["label"] for k in json.loads((tmp_path / "out/results.json").read_text())["kernels"]]
    assert labels == [base, patched]
    ktap.parse((tmp_path / "out/results.ktap").read_text())


def test_label_equals_path_names_the_column_and_diff_takes_labels(two_builds_of_one_release, tmp_path, capsys):
    (base, patched), mods = two_builds_of_one_release
    code = run([f"without={base}", f"with#fix={patched}", "--diff", "without", "with#fix"], tmp_path, mods)
    assert code == 1
    out = capsys.readouterr().out
    assert "diff without -> with#fix: 1 regressed" in out
    ktap.parse((tmp_path / "out/results.ktap").read_text())


def test_diff_by_a_release_two_kernels_share_asks_for_a_label(two_builds_of_one_release, tmp_path, capsys):
    (base, patched), mods = two_builds_of_one_release
    assert run([base, patched, "--diff", "7.3.0-same", patched], tmp_path, mods) == 5
    assert "several kernels have release 7.3.0-same" in capsys.readouterr().err


def test_the_same_path_twice_is_still_refused(two_builds_of_one_release, tmp_path, capsys):
    (base, _), mods = two_builds_of_one_release
    assert run([base, base], tmp_path, mods) == 5
    assert "kernel given twice" in capsys.readouterr().err


def test_split_label():
    assert kernels.split_label("fix=/tmp/bzImage") == ("fix", "/tmp/bzImage")
    assert kernels.split_label("/tmp/a=b/bzImage") == (None, "/tmp/a=b/bzImage")
    assert kernels.split_label("7.3") == (None, "7.3")
    with pytest.raises(InfraError, match="does not exist"):
        kernels.resolve("x=/no/such/bzImage")
