"""Bisection logic without QEMU or kernel builds: verdicts and the flake rule, the prefix search,
patch series handling, and the two command lines' exit codes on good, bad and wrong input."""
import json
import math
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import FAKE_SUITE, LINES, make_patch
from gmemharness import bisect, bisect_step, image, kbuild, qemu, series, session
from gmemharness.outcomes import CaseOutcome, RunOutcome
from gmemharness.prefix_search import first_bad_prefix
from gmemharness.results import CaseResult, KernelRun
from gmemharness.verdict import BAD, GOOD, SKIP, Verdict, combine, judge_run

TESTDATA = Path(__file__).resolve().parents[1] / "testdata"


# --- one run -> verdict ------------------------------------------------------------------------

def kernel_run(*cases: tuple[str, str, str], outcome=RunOutcome.OK, reason="", hello=True) -> KernelRun:
    run = KernelRun(label="k", outcome=outcome, reason=reason,
                    hello={"event": "hello"} if hello else None)
    for name, case_outcome, message in cases:
        run.cases[name] = CaseResult(name, CaseOutcome(case_outcome), message)
    return run


def test_all_pass_is_good():
    assert judge_run(kernel_run(("Creation.A", "pass", ""), ("Creation.B", "skip", "x"))).kind == GOOD


def test_a_failing_case_is_bad_and_named():
    run = kernel_run(("Creation.A", "pass", ""),
                     ("Creation.RejectsUnknownFlagBits", "fail", "flag accepted"), outcome=RunOutcome.FAIL)
    verdict = judge_run(run)
    assert verdict.kind == BAD
    assert "Creation.RejectsUnknownFlagBits fail: flag accepted" in verdict.reason


def test_long_failure_is_cut_in_the_verdict_and_the_report():
    message = "\n".join(f"creation.cc:31: flags=0x{1 << i:x} accepted" for i in range(60))
    run = kernel_run(("Creation.RejectsUnknownFlagBits", "fail", message), outcome=RunOutcome.FAIL)
    assert judge_run(run).reason == "Creation.RejectsUnknownFlagBits fail: creation.cc:31: flags=0x1 accepted"
    report = bisect_step.failing_output(run).splitlines()
    assert report[0] == "Creation.RejectsUnknownFlagBits: fail"
    assert report[1:1 + bisect_step.FAILING_LINES] == message.splitlines()[:bisect_step.FAILING_LINES]
    assert report[1 + bisect_step.FAILING_LINES] == f"... ({60 - bisect_step.FAILING_LINES} more lines in run.json)"


def test_crash_inside_a_case_is_bad():
    run = kernel_run(("Creation.A", "crash", "kernel panic"), outcome=RunOutcome.CRASH)
    assert judge_run(run).kind == BAD


def test_splat_outside_any_case_is_bad():
    run = kernel_run(("Creation.A", "pass", ""), outcome=RunOutcome.FAIL,
                     reason="kernel splat outside any case: WARNING")
    verdict = judge_run(run)
    assert verdict.kind == BAD and "kernel splat outside any case" in verdict.reason


@pytest.mark.parametrize("outcome", [RunOutcome.CRASH, RunOutcome.TIMEOUT, RunOutcome.INFRA])
def test_kernel_that_never_started_the_suite_is_skip(outcome):
    verdict = judge_run(kernel_run(outcome=outcome, reason="the guest stopped", hello=False))
    assert verdict.kind == SKIP and "the guest stopped" in verdict.reason


def test_infrastructure_error_after_hello_is_skip():
    assert judge_run(kernel_run(outcome=RunOutcome.INFRA, reason="x")).kind == SKIP


def test_only_skipped_cases_is_skip_with_reasons():
    verdict = judge_run(kernel_run(("Creation.A", "skip", "no /dev/kvm")))
    assert verdict.kind == SKIP and "no /dev/kvm" in verdict.reason


def test_no_case_ran_is_skip():
    assert judge_run(kernel_run()).kind == SKIP


@pytest.mark.parametrize("kind,code", [(GOOD, 0), (BAD, 1), (SKIP, 125)])
def test_exit_codes_follow_git_bisect_run(kind, code):
    assert Verdict(kind, "").exit_code == code


# --- repeats -> one verdict (flake rule) -------------------------------------------------------

def v(kinds: str) -> list[Verdict]:
    names = {"g": GOOD, "b": BAD, "s": SKIP}
    return [Verdict(names[k], f"run {i}") for i, k in enumerate(kinds)]


@pytest.mark.parametrize("runs,flaky,expected", [
    ("g", BAD, GOOD), ("b", BAD, BAD), ("s", BAD, SKIP),
    ("ggg", BAD, GOOD), ("bbb", BAD, BAD),
    ("gbg", BAD, BAD), ("gbg", SKIP, SKIP),        # flaky: the policy decides
    ("gss", BAD, GOOD), ("sss", BAD, SKIP),        # 2 of 3 skipped is not more than 2/3
    ("gsss", BAD, SKIP),                           # 3 of 4 skipped is
    ("bs", BAD, BAD),
])
def test_flake_rule(runs, flaky, expected):
    assert combine(v(runs), flaky).kind == expected


def test_flaky_step_says_so():
    verdict = combine(v("gbg"), BAD)
    assert verdict.reason.startswith("flaky (2 good, 1 bad, 0 skipped of 3 runs)")


def test_flake_rule_rejects_unknown_policy():
    with pytest.raises(ValueError):
        combine(v("g"), "maybe")


# --- binary search over prefixes ---------------------------------------------------------------

def fake_series(culprit: int, skipped=()):
    calls = []

    def test(prefix: int) -> str:
        calls.append(prefix)
        if prefix in skipped:
            return SKIP
        return BAD if prefix >= culprit else GOOD
    return test, calls


@pytest.mark.parametrize("n", range(1, 10))
def test_search_finds_every_culprit_position_in_logarithmic_tests(n):
    for culprit in range(1, n + 1):
        test, calls = fake_series(culprit)
        result = first_bad_prefix(n, test)
        assert result.culprit == culprit
        assert len(calls) == len(set(calls)) == result.tests
        assert result.tests <= 2 + math.ceil(math.log2(n)) if n > 1 else result.tests == 2


def test_search_steps_around_an_untestable_prefix():
    test, calls = fake_series(3, skipped={2, 3})
    result = first_bad_prefix(5, test)
    assert result.culprit is None
    assert (result.last_good, result.first_bad) == (1, 4)
    assert "patches 2..4" in result.message


def test_search_uses_a_neighbour_of_a_skipped_middle():
    test, calls = fake_series(6, skipped={4})
    result = first_bad_prefix(8, test)
    assert result.culprit == 6 and result.verdicts[4] == SKIP


def test_search_stops_when_the_whole_series_passes():
    test, calls = fake_series(99)
    result = first_bad_prefix(5, test)
    assert result.culprit is None and "passes" in result.message and calls == [5]


def test_search_stops_when_the_base_already_fails():
    test, calls = fake_series(0)
    result = first_bad_prefix(5, test)
    assert result.culprit is None and "already fails" in result.message and calls == [5, 0]


# --- patch series ------------------------------------------------------------------------------

def test_project_series_loads_in_order():
    patches = series.load_series(TESTDATA / "series-invalid-flag")
    assert [p.index for p in patches] == [1, 2, 3, 4, 5]
    assert patches[2].subject == "KVM: guest_memfd: ignore unknown creation flags"
    assert patches[2].name.startswith("0003-")


def test_mbox_split_skips_the_cover_letter(tmp_path):
    patch_dir = TESTDATA / "series-invalid-flag"
    cover = ("From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n"
             "Subject: [PATCH 0/5] cover letter\n\nno diff here\n")
    mbox = tmp_path / "series.mbx"
    mbox.write_text(cover + "".join(p.read_text() for p in sorted(patch_dir.glob("*.patch"))))
    patches = series.load_series(mbox)
    assert [p.subject for p in patches] == [p.subject for p in series.load_series(patch_dir)]
    assert patches[2].name.startswith("0003-KVM-guest-memfd-ignore-unknown")


def test_empty_series_is_bad_input(tmp_path):
    with pytest.raises(bisect_step.BadInput, match="holds no patch"):
        series.load_series(tmp_path)


def test_missing_series_is_bad_input(tmp_path):
    with pytest.raises(bisect_step.BadInput, match="does not exist"):
        series.load_series(tmp_path / "nope")


def test_apply_and_revert_move_between_prefixes(tmp_path):
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "f.c").write_text(LINES)
    make_patch(tmp_path, "0001-a.patch", "f.c", LINES, LINES.replace("line 3\n", "line three\n"))
    two = LINES.replace("line 3\n", "line three\n").replace("line 15\n", "line fifteen\n")
    make_patch(tmp_path, "0002-b.patch", "f.c", LINES.replace("line 3\n", "line three\n"), two)
    patches = series.load_series(tmp_path / "series")
    series.move(tree, patches, 0, 2)
    assert (tree / "f.c").read_text() == two
    series.move(tree, patches, 2, 0)
    assert (tree / "f.c").read_text() == LINES


def test_patch_that_does_not_apply_names_patch_and_hunk(tmp_path):
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "f.c").write_text(LINES.replace("line 10\n", "line ten\n"))
    make_patch(tmp_path, "0001-touch-line-10.patch", "f.c", LINES,
               LINES.replace("line 10\n", "line 10 changed\n"))
    patch = series.load_series(tmp_path / "series")[0]
    with pytest.raises(series.PatchDoesNotApply) as e:
        series.apply(tree, patch)
    message = str(e.value)
    assert "patch 1 (0001-touch-line-10.patch)" in message and "does not apply" in message
    assert "rejected hunk in f.c at line 7" in message
    assert "-line 10\n+line 10 changed" in message
    assert "Traceback" not in message


def test_find_hunk_picks_the_right_file_and_hunk():
    text = (TESTDATA / "series-invalid-flag" / "0003-KVM-guest_memfd-ignore-unknown-creation-flags.patch"
            ).read_text()
    hunk = series.find_hunk(text, "virt/kvm/guest_memfd.c", 594)
    assert hunk.startswith("@@ -594,13 +594,8 @@")
    assert "+\tflags &= kvm_gmem_get_supported_flags(kvm);" in hunk
    assert series.find_hunk(text, "virt/kvm/guest_memfd.c", 1) is None
    assert series.find_hunk(text, "other.c", 594) is None


# --- which cases a filter selects --------------------------------------------------------------

def test_filter_matching_no_case_is_bad_input():
    assert bisect_step.list_selected_cases(FAKE_SUITE, "Fake.Pass*") == ["Fake.Pass1", "Fake.Pass2"]
    with pytest.raises(bisect_step.BadInput, match="matches no case"):
        bisect_step.list_selected_cases(FAKE_SUITE, "Nothing.*")


def test_missing_suite_is_bad_input(tmp_path):
    with pytest.raises(bisect_step.BadInput, match="does not exist"):
        bisect_step.list_selected_cases(tmp_path / "none", "*")


# --- git bisect run command line ---------------------------------------------------------------

@pytest.fixture
def kernel_git_tree(tmp_path):
    tree = tmp_path / "linux"
    (tree / "arch" / "x86").mkdir(parents=True)
    (tree / "Makefile").write_text("VERSION = 7\nPATCHLEVEL = 3\n")
    (tree / "Kconfig").write_text("")
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "base"]):
        subprocess.run(["git", "-C", str(tree), "-c", "user.name=t", "-c", "user.email=t@t", *args],
                       check=True, capture_output=True)
    return tree


@pytest.fixture
def fake_build_and_boot(monkeypatch, tmp_path):
    """kbuild.build and session.run_kernel replaced; `state` says what the next step sees:
    queued runs, else `judge(bzimage)`."""
    state = {"build_error": None, "runs": []}

    def build(tree, out_dir, fragment, jobs, log_path, require_clean):
        kbuild.check_kernel_tree(Path(tree), require_clean)
        Path(log_path).write_text("fake build\n")
        if state["build_error"]:
            raise state["build_error"]
        image = tmp_path / "bzImage"
        image.write_bytes(b"image of " + (Path(tree) / "f.c").read_bytes()
                          if (Path(tree) / "f.c").exists() else b"image")
        config = tmp_path / "config"
        config.write_text("CONFIG_KVM=y\n")
        return kbuild.BuildArtifacts(image, config, Path(log_path), 1.0)

    def run_kernel(kernel, opts):
        opts.out_dir.mkdir(parents=True)
        assert opts.gtest_filter == "Fake.*" and opts.binary == FAKE_SUITE
        return state["runs"].pop(0) if state["runs"] else state["judge"](kernel.bzimage)

    monkeypatch.setattr(kbuild, "build", build)
    monkeypatch.setattr(bisect_step.kernelsource, "from_bzimage",
                        lambda bzimage, config, label, origin: SimpleNamespace(bzimage=bzimage))
    monkeypatch.setattr(session, "run_kernel", run_kernel)
    monkeypatch.setattr(qemu, "qemu_binary", lambda: "true")
    monkeypatch.setattr(image, "BUSYBOX", Path("/bin/sh"))
    return state


def run_cli(tree: Path, tmp_path: Path, *extra: str) -> int:
    return bisect.bisect_run_main([str(tree), "--filter", "Fake.*", "--suite", str(FAKE_SUITE), *extra])


def test_bisect_run_good_and_bad_and_step_directory(kernel_git_tree, tmp_path, fake_build_and_boot, capsys):
    fake_build_and_boot["runs"] = [kernel_run(("Fake.A", "pass", "")),
                                   kernel_run(("Fake.A", "fail", "accepted 1<<63"), outcome=RunOutcome.FAIL)]
    assert run_cli(kernel_git_tree, tmp_path) == 0
    assert run_cli(kernel_git_tree, tmp_path) == 1
    assert "Fake.A fail: accepted 1<<63" in capsys.readouterr().out
    steps = sorted((kernel_git_tree / ".git" / "gmemtest-bisect" / "steps").iterdir())
    assert len(steps) == 2
    record = json.loads((steps[1] / "step.json").read_text())
    assert record["verdict"]["kind"] == BAD
    assert (steps[1] / "build.log").is_file() and (steps[1] / "run-1" / "run.json").is_file()


def test_bisect_run_repeats_apply_the_flake_rule(kernel_git_tree, tmp_path, fake_build_and_boot):
    ok, broken = kernel_run(("Fake.A", "pass", "")), kernel_run(("Fake.A", "fail", "x"))
    fake_build_and_boot["runs"] = [ok, broken, ok]
    assert run_cli(kernel_git_tree, tmp_path, "--repeats", "3", "--flaky", "skip") == 125
    fake_build_and_boot["runs"] = [ok, broken, ok]
    assert run_cli(kernel_git_tree, tmp_path, "--repeats", "3") == 1


def test_bisect_run_skips_build_and_boot_failures(kernel_git_tree, tmp_path, fake_build_and_boot, capsys):
    fake_build_and_boot["build_error"] = kbuild.BuildFailed("kernel build failed: error: boom",
                                                            tmp_path / "log")
    assert run_cli(kernel_git_tree, tmp_path) == 125
    assert "build failure" in capsys.readouterr().out
    fake_build_and_boot["build_error"] = kbuild.ConfigNotHonoured(["CONFIG_KVM=y (got: not set)"],
                                                                  tmp_path / "config")
    assert run_cli(kernel_git_tree, tmp_path) == 125
    fake_build_and_boot["build_error"] = None
    fake_build_and_boot["runs"] = [kernel_run(outcome=RunOutcome.CRASH, hello=False,
                                              reason="the guest stopped before /init reported")]
    assert run_cli(kernel_git_tree, tmp_path) == 125


def test_bisect_run_usage_error_stops_git_bisect(kernel_git_tree, capsys):
    assert bisect.bisect_run_main([str(kernel_git_tree)]) == 128      # --filter missing
    assert "--filter" in capsys.readouterr().err
    assert bisect.bisect_run_main(["--filter", "*", "--repeats", "x"]) == 128


def test_bisect_run_stops_on_bad_input(kernel_git_tree, tmp_path, fake_build_and_boot, capsys):
    assert bisect.bisect_run_main([str(tmp_path / "suite-dir-is-no-kernel"), "--filter", "*"]) == 128
    assert "not a Linux kernel source tree" in capsys.readouterr().err
    assert run_cli(kernel_git_tree, tmp_path, "--fragment", str(tmp_path / "none.config")) == 128
    assert "does not exist" in capsys.readouterr().err
    assert bisect.bisect_run_main([str(kernel_git_tree), "--filter", "Nothing.*",
                                   "--suite", str(FAKE_SUITE)]) == 128
    assert "matches no case" in capsys.readouterr().err
    (kernel_git_tree / "Kconfig").write_text("# dirty\n")
    assert run_cli(kernel_git_tree, tmp_path) == 128
    assert "uncommitted changes" in capsys.readouterr().err


# --- series bisect command line ----------------------------------------------------------------

def series_setup(tmp_path: Path, culprit: int, n: int = 5) -> tuple[Path, Path]:
    """A fake kernel tree with f.c and n patches each changing one line; patch `culprit`
    writes BROKEN, which the fake boot judges bad."""
    tree = tmp_path / "base"
    (tree / "arch" / "x86").mkdir(parents=True)
    (tree / "Makefile").write_text("VERSION = 7\n")
    (tree / "Kconfig").write_text("")
    text = LINES
    (tree / "f.c").write_text(text)
    for i in range(1, n + 1):
        new = text.replace(f"line {i * 3}\n", f"line {i * 3} {'BROKEN' if i == culprit else 'ok'}\n")
        make_patch(tmp_path / f"p{i}", f"{i:04d}-change-{i}.patch", "f.c", text, new)
        (tmp_path / "series").mkdir(exist_ok=True)
        (tmp_path / f"p{i}" / "series" / f"{i:04d}-change-{i}.patch").rename(
            tmp_path / "series" / f"{i:04d}-change-{i}.patch")
        text = new
    return tree, tmp_path / "series"


def judge_broken(bzimage: Path) -> KernelRun:
    if b"BROKEN" in bzimage.read_bytes():
        return kernel_run(("Fake.A", "fail", "flag accepted"), outcome=RunOutcome.FAIL)
    return kernel_run(("Fake.A", "pass", ""))


def run_series_cli(tmp_path: Path, tree: Path, series_dir: Path) -> int:
    return bisect.bisect_series_main(["--tree", str(tree), "--series", str(series_dir),
                                      "--work", str(tmp_path / "work"), "--filter", "Fake.*",
                                      "--suite", str(FAKE_SUITE)])


@pytest.mark.parametrize("culprit", [1, 3, 5])
def test_series_bisect_names_and_verifies_the_culprit(tmp_path, fake_build_and_boot, capsys, culprit):
    tree, series_dir = series_setup(tmp_path, culprit)
    fake_build_and_boot["judge"] = judge_broken
    assert run_series_cli(tmp_path, tree, series_dir) == 0
    out = capsys.readouterr().out
    assert f"first bad: patch {culprit} ({culprit:04d}-change-{culprit}.patch)" in out
    assert "verified: prefix before it passes, prefix with it fails" in out
    assert "Fake.A: fail\n  flag accepted" in out
    assert (tree / "f.c").read_text() == LINES, "the base tree must not be modified"
    assert (tmp_path / "work" / "report.txt").read_text().startswith("series bisect over 5 patches")


def test_series_bisect_reuses_its_working_copy(tmp_path, fake_build_and_boot, capsys):
    tree, series_dir = series_setup(tmp_path, 2)
    fake_build_and_boot["judge"] = judge_broken
    assert run_series_cli(tmp_path, tree, series_dir) == 0
    marker = tmp_path / "work" / "tree" / "marker"
    marker.write_text("kept")
    assert run_series_cli(tmp_path, tree, series_dir) == 0
    assert marker.exists()


def test_series_bisect_starts_afresh_when_the_base_changed(tmp_path, fake_build_and_boot, capsys):
    tree, series_dir = series_setup(tmp_path, 2)
    fake_build_and_boot["judge"] = judge_broken
    assert run_series_cli(tmp_path, tree, series_dir) == 0
    marker = tmp_path / "work" / "tree" / "marker"
    marker.write_text("stale")
    (tree / "Makefile").write_text("VERSION = 7\nPATCHLEVEL = 4\n")
    assert run_series_cli(tmp_path, tree, series_dir) == 0
    assert not marker.exists()
    assert (tmp_path / "work" / "tree" / "Makefile").read_text().endswith("PATCHLEVEL = 4\n")


def test_series_that_never_fails_has_no_culprit(tmp_path, fake_build_and_boot, capsys):
    tree, series_dir = series_setup(tmp_path, culprit=99)
    fake_build_and_boot["judge"] = judge_broken
    assert run_series_cli(tmp_path, tree, series_dir) == 1
    assert "passes: nothing to bisect" in capsys.readouterr().out


def test_series_patch_that_does_not_apply_is_reported_not_raised(tmp_path, fake_build_and_boot, capsys):
    tree, series_dir = series_setup(tmp_path, culprit=2)
    (tree / "f.c").write_text(LINES.replace("line 11\n", "line eleven\n"))
    fake_build_and_boot["judge"] = judge_broken
    assert run_series_cli(tmp_path, tree, series_dir) == 2
    err = capsys.readouterr().err
    assert "patch 3 (0003-change-3.patch): 0003-change-3.patch\ndoes not apply: " in err
    assert "rejected hunk in f.c at line 6" in err and "-line 9\n+line 9 ok" in err
    assert "Traceback" not in err


def test_series_bad_input_exit_codes(tmp_path, fake_build_and_boot, capsys):
    tree, series_dir = series_setup(tmp_path, culprit=2)
    (tmp_path / "empty").mkdir()
    assert run_series_cli(tmp_path, tree, tmp_path / "empty") == 2
    assert "holds no patch" in capsys.readouterr().err
    assert run_series_cli(tmp_path, tmp_path / "empty", series_dir) == 2
    assert "not a Linux kernel source tree" in capsys.readouterr().err


def test_series_culprit_that_fails_verification_is_not_reported_as_found(tmp_path, fake_build_and_boot, capsys):
    tree, series_dir = series_setup(tmp_path, culprit=3)
    seen = {}

    def flaky_judge(bzimage: Path) -> KernelRun:
        content = bzimage.read_bytes()
        seen[content] = seen.get(content, 0) + 1
        if b"BROKEN" in content or seen[content] > 1:   # a re-test of any prefix fails
            return kernel_run(("Fake.A", "fail", "flaky"), outcome=RunOutcome.FAIL)
        return kernel_run(("Fake.A", "pass", ""))
    fake_build_and_boot["judge"] = flaky_judge
    assert run_series_cli(tmp_path, tree, series_dir) == 1
    assert "NOT verified" in capsys.readouterr().out
