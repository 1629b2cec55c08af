"""The command line: exit codes per outcome, one clear message on bad input."""
import pytest

from conftest import FAKE_SUITE, write_bzimage, write_modules
from gmemharness import cli, gtest
from gmemharness.outcomes import EXIT_CODES, EXIT_EXPECTATIONS, RunOutcome


@pytest.fixture
def kernel(tmp_path):
    return ["run", str(write_bzimage(tmp_path / "bzImage")), "--modules", str(write_modules(tmp_path / "mods")),
            "--binary", str(FAKE_SUITE), "--out", str(tmp_path / "out"), "--accel", "tcg"]


def test_a_missing_kernel_image_is_one_message_and_the_infrastructure_exit_code(tmp_path, capsys):
    code = cli.main(["run", str(tmp_path / "no/bzImage"), "--binary", str(FAKE_SUITE)])
    err = capsys.readouterr().err
    assert code == EXIT_CODES[RunOutcome.INFRA] == 5
    assert err.count("\n") == 1 and "does not exist" in err


def test_no_qemu_is_one_message_and_the_infrastructure_exit_code(kernel, monkeypatch, capsys):
    monkeypatch.setenv("PATH", "/nonexistent")
    assert cli.main(kernel) == 5
    assert "qemu-system-x86_64 not found" in capsys.readouterr().err


def test_a_run_prints_the_matrix_writes_reports_and_exits_by_outcome(kernel, guest, tmp_path, capsys):
    assert cli.main(kernel + ["--", "--fake_cases=Fake.A,Fake.B"]) == 0
    out = capsys.readouterr().out
    assert "Fake.A" in out and "SKIP" in out
    for name in ("results.json", "junit.xml", "results.ktap", "matrix.md", "matrix.html"):
        assert (tmp_path / "out" / name).is_file()


def test_an_expected_case_that_skips_turns_the_run_red(kernel, guest, tmp_path, capsys):
    expect_dir = tmp_path / "expect"
    expect_dir.mkdir()
    (expect_dir / "6.99.0-test.txt").write_text("Fake.A\nFake.B\n")
    code = cli.main(kernel + ["--expect", str(expect_dir), "--", "--fake_cases=Fake.A,Fake.B"])
    assert code == EXIT_EXPECTATIONS
    assert "expected Fake.B to pass, got skip: no hugetlb" in capsys.readouterr().out


def test_expectations_that_are_met_exit_zero(kernel, guest, tmp_path):
    expect_dir = tmp_path / "expect"
    expect_dir.mkdir()
    (expect_dir / "6.99.0-test.txt").write_text("Fake.A\n")
    assert cli.main(kernel + ["--expect", str(expect_dir), "--", "--fake_cases=Fake.A,Fake.B"]) == 0


def test_report_re_renders_a_results_file_and_exits_by_its_outcome(kernel, guest, tmp_path, capsys):
    cli.main(kernel + ["--", "--fake_cases=Fake.A,Fake.B"])
    capsys.readouterr()
    assert cli.main(["report", str(tmp_path / "out/results.json"), "--format", "markdown"]) == 0
    assert "| `Fake.B` | SKIP |" in capsys.readouterr().out


def test_a_kernel_without_kvm_modules_is_refused_before_booting(tmp_path, capsys):
    mods = write_modules(tmp_path / "mods", kvm=False)
    (mods / "lib/modules/6.99.0-test/modules.builtin").write_text("")
    code = cli.main(["run", str(write_bzimage(tmp_path / "bzImage")), "--modules", str(mods),
                     "--binary", str(FAKE_SUITE)])
    assert code == 5 and "no KVM" in capsys.readouterr().err


@pytest.mark.parametrize("base, names, expected", [
    (None, [], "*"),
    (None, ["A.b", "A.c"], "*-A.b:A.c"),
    ("A.*", ["A.b"], "A.*-A.b"),
    ("A.*-A.slow", ["A.b"], "A.*-A.slow:A.b"),
    ("-A.slow", ["A.b"], "*-A.slow:A.b"),
])
def test_resume_filters_exclude_what_already_ran(base, names, expected):
    assert gtest.exclude(base, names) == expected


def test_listing_parses_parametrised_cases():
    text = "Gmem.\n  Create\n  Mmap  # GetParam() = 4\nSizes/GmemSize.\n  Punch/0  # GetParam() = 4096\n"
    assert gtest.parse_list_tests(text) == ["Gmem.Create", "Gmem.Mmap", "Sizes/GmemSize.Punch/0"]
