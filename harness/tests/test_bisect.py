"""Bisection logic without QEMU or kernel builds: verdicts and the flake rule, the prefix search,
patch series handling, and the two command lines' exit codes on good, bad and wrong input."""
import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from gmemharness import bisect, bisect_step, kbuild, series, stepvm  # noqa: E402
from gmemharness.prefix_search import first_bad_prefix  # noqa: E402
from gmemharness.stepvm import CaseResult, GuestRun  # noqa: E402
from gmemharness.verdict import BAD, GOOD, SKIP, Verdict, combine, judge_run  # noqa: E402

TESTDATA = Path(__file__).resolve().parents[1] / "testdata"


# --- one boot -> verdict ---------------------------------------------------------------------

def test_all_pass_is_good():
    run = GuestRun("done", [CaseResult("Creation.A", "pass"), CaseResult("Creation.B", "skip", "x")])
    assert judge_run(run).kind == GOOD


def test_a_failing_case_is_bad_and_named():
    run = GuestRun("done", [CaseResult("Creation.A", "pass"),
                            CaseResult("Creation.RejectsUnknownFlagBits", "fail", "flag accepted")])
    verdict = judge_run(run)
    assert verdict.kind == BAD
    assert "Creation.RejectsUnknownFlagBits fail: flag accepted" in verdict.reason


def test_crash_inside_a_case_is_bad():
    run = GuestRun("crash", [CaseResult("Creation.A", "crash", "kernel splat: BUG: oops")])
    assert judge_run(run).kind == BAD


def test_crash_between_cases_is_bad():
    assert judge_run(GuestRun("crash", [CaseResult("Creation.A", "pass")], "splat")).kind == BAD


def test_boot_failure_is_skip():
    verdict = judge_run(GuestRun("no_boot", [], "QEMU exited"))
    assert verdict.kind == SKIP and "boot failure" in verdict.reason


def test_only_skipped_cases_is_skip_with_reasons():
    run = GuestRun("done", [CaseResult("Creation.A", "skip", "no /dev/kvm")])
    verdict = judge_run(run)
    assert verdict.kind == SKIP and "no /dev/kvm" in verdict.reason


def test_no_case_ran_is_skip():
    assert judge_run(GuestRun("done", [])).kind == SKIP


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


def make_patch(tmp_path: Path, name: str, path: str, old: str, new: str) -> Path:
    """A one-file patch made with git diff --no-index."""
    a, b = tmp_path / "mk" / "a", tmp_path / "mk" / "b"
    for side, text in ((a, old), (b, new)):
        (side / path).parent.mkdir(parents=True, exist_ok=True)
        (side / path).write_text(text)
    diff = subprocess.run(["git", "diff", "--no-index", "--no-prefix", f"a/{path}", f"b/{path}"],
                          cwd=tmp_path / "mk", capture_output=True, text=True).stdout
    out = tmp_path / "series" / name
    out.parent.mkdir(exist_ok=True)
    out.write_text(f"From: t <t@t>\nSubject: [PATCH] {name}\n\n---\n{diff}")
    return out


LINES = "".join(f"line {i}\n" for i in range(1, 21))


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

GTEST_LIST = textwrap.dedent("""\
    Creation.
      RejectsUnknownFlagBits
      AcceptsSupportedFlags
    Sizes/CreationSize.
      Rejects/0  # GetParam() = 0
    """)


def test_parse_test_list():
    assert bisect_step.parse_test_list(GTEST_LIST) == [
        "Creation.RejectsUnknownFlagBits", "Creation.AcceptsSupportedFlags",
        "Sizes/CreationSize.Rejects/0"]


def fake_suite(tmp_path: Path) -> Path:
    """A suite binary stand-in that lists Creation cases for filters naming Creation."""
    suite = tmp_path / "gmemtest"
    suite.write_text("#!/bin/sh\ncase \"$2\" in *Creation*) printf 'Creation.\\n  A\\n';; esac\n")
    suite.chmod(0o755)
    return suite


def test_filter_matching_no_case_is_bad_input(tmp_path):
    suite = fake_suite(tmp_path)
    assert bisect_step.list_selected_cases(suite, "Creation.*") == ["Creation.A"]
    with pytest.raises(bisect_step.BadInput, match="matches no case"):
        bisect_step.list_selected_cases(suite, "Nothing.*")


def test_missing_suite_is_bad_input(tmp_path):
    with pytest.raises(bisect_step.BadInput, match="does not exist"):
        bisect_step.list_selected_cases(tmp_path / "none", "*")


# --- the result stream and the image -----------------------------------------------------------

def test_parse_stream_tracks_the_running_case():
    lines = ['{"event":"hello","version":1}', '{"event":"start","case":"C.a"}',
             '{"event":"end","case":"C.a","outcome":"pass","message":"","ms":1}',
             'garbage', '{"event":"start","case":"C.b"}']
    hello, cases, running, done = stepvm.parse_stream("\r\n".join(lines) + "\r\n")
    assert hello and not done and running == "C.b"
    assert cases == [CaseResult("C.a", "pass", "")]


def test_initramfs_holds_suite_and_init_with_filter(tmp_path):
    from gmemharness.cpio import read_names
    if not stepvm.BUSYBOX.is_file():
        pytest.skip("busybox-static not installed")
    image = stepvm.build_initramfs(fake_suite(tmp_path), tmp_path / "i.cpio",
                                   ["--gtest_filter=Creation.*"])
    names = read_names(image.read_bytes())
    assert {"bin/busybox", "gmemtest", "init"} <= set(names)
    assert b"/gmemtest '--gtest_filter=Creation.*' --gmemtest_stream=/dev/ttyS1" in names["init"]


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
    """kbuild.build and stepvm.run replaced; `state` says what the next step sees."""
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

    def run(bzimage, suite, gtest_args, run_dir, boot_timeout, case_timeout):
        run_dir.mkdir(parents=True)
        return state["runs"].pop(0) if state["runs"] else state["judge"](bzimage)

    monkeypatch.setattr(kbuild, "build", build)
    monkeypatch.setattr(stepvm, "run", run)
    monkeypatch.setattr(stepvm, "QEMU", "true")
    monkeypatch.setattr(stepvm, "BUSYBOX", Path(sys.executable))
    return state


def run_cli(tree: Path, tmp_path: Path, *extra: str) -> int:
    return bisect.bisect_run_main([str(tree), "--filter", "Creation.*",
                                   "--suite", str(fake_suite(tmp_path)), *extra])


def test_bisect_run_good_and_bad_and_step_directory(kernel_git_tree, tmp_path, fake_build_and_boot, capsys):
    fake_build_and_boot["runs"] = [GuestRun("done", [CaseResult("Creation.A", "pass")]),
                                   GuestRun("done", [CaseResult("Creation.A", "fail", "accepted 1<<63")])]
    assert run_cli(kernel_git_tree, tmp_path) == 0
    assert run_cli(kernel_git_tree, tmp_path) == 1
    assert "Creation.A fail: accepted 1<<63" in capsys.readouterr().out
    steps = sorted((kernel_git_tree / ".git" / "gmemtest-bisect" / "steps").iterdir())
    assert len(steps) == 2
    record = json.loads((steps[1] / "step.json").read_text())
    assert record["verdict"]["kind"] == BAD
    assert (steps[1] / "build.log").is_file() and (steps[1] / "run-1" / "run.json").is_file()


def test_bisect_run_repeats_apply_the_flake_rule(kernel_git_tree, tmp_path, fake_build_and_boot):
    ok, broken = GuestRun("done", [CaseResult("Creation.A", "pass")]), \
        GuestRun("done", [CaseResult("Creation.A", "fail", "x")])
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
    fake_build_and_boot["runs"] = [GuestRun("no_boot", [], "QEMU exited (status 1)")]
    assert run_cli(kernel_git_tree, tmp_path) == 125


def test_bisect_run_stops_on_bad_input(kernel_git_tree, tmp_path, fake_build_and_boot, capsys):
    assert bisect.bisect_run_main([str(tmp_path / "suite-dir-is-no-kernel"), "--filter", "*"]) == 128
    assert "not a Linux kernel source tree" in capsys.readouterr().err
    assert run_cli(kernel_git_tree, tmp_path, "--fragment", str(tmp_path / "none.config")) == 128
    assert "does not exist" in capsys.readouterr().err
    assert bisect.bisect_run_main([str(kernel_git_tree), "--filter", "Nothing.*",
                                   "--suite", str(fake_suite(tmp_path))]) == 128
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


def judge_broken(bzimage: Path) -> GuestRun:
    broken = b"BROKEN" in bzimage.read_bytes()
    return GuestRun("done", [CaseResult("Creation.A", "fail" if broken else "pass",
                                        "flag accepted" if broken else "")])


def run_series_cli(tmp_path: Path, tree: Path, series_dir: Path) -> int:
    return bisect.bisect_series_main(["--tree", str(tree), "--series", str(series_dir),
                                      "--work", str(tmp_path / "work"), "--filter", "Creation.*",
                                      "--suite", str(fake_suite(tmp_path))])


@pytest.mark.parametrize("culprit", [1, 3, 5])
def test_series_bisect_names_and_verifies_the_culprit(tmp_path, fake_build_and_boot, capsys, culprit):
    tree, series_dir = series_setup(tmp_path, culprit)
    fake_build_and_boot["judge"] = judge_broken
    assert run_series_cli(tmp_path, tree, series_dir) == 0
    out = capsys.readouterr().out
    assert f"first bad: patch {culprit} ({culprit:04d}-change-{culprit}.patch)" in out
    assert "verified: prefix before it passes, prefix with it fails" in out
    assert "Creation.A: fail\n  flag accepted" in out
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


# --- watching a guest (a fake QEMU process and its two output files) ----------------------------

class FakeQemu:
    def __init__(self, returncode=None):
        self.returncode = returncode

    def poll(self):
        return self.returncode


HELLO = '{"event":"hello","version":1}\n'
START_A = '{"event":"start","case":"C.a"}\n'


def watch(tmp_path, console_text, stream_text, proc=None, boot_timeout=60, case_timeout=60):
    console, stream = tmp_path / "console.log", tmp_path / "stream.jsonl"
    console.write_text(console_text)
    stream.write_text(stream_text)
    return stepvm._watch(proc or FakeQemu(), console, stream, stepvm.time.monotonic(),
                         boot_timeout, case_timeout, 600)


def test_watch_done(tmp_path):
    run = watch(tmp_path, "boot\n", HELLO + START_A + '{"event":"end","case":"C.a","outcome":"pass"}\n'
                '{"event":"done","passed":1,"failed":0,"skipped":0}\n')
    assert run.status == "done" and run.cases == [CaseResult("C.a", "pass", "")]
    assert run.boot_seconds is not None


def test_watch_splat_during_a_case_crashes_that_case(tmp_path, monkeypatch):
    console, stream = tmp_path / "console.log", tmp_path / "stream.jsonl"
    console.write_text("boot\n")
    stream.write_text(HELLO + START_A)
    polls = []

    class SplatAfterHello(FakeQemu):
        def poll(self):     # the splat appears on the second look, after the suite said hello
            polls.append(1)
            if len(polls) == 2:
                console.write_text("boot\nWARNING: CPU: 0 PID: 42 at virt/kvm/guest_memfd.c:600\n")
            return None
    monkeypatch.setattr(stepvm.time, "sleep", lambda s: None)
    run = stepvm._watch(SplatAfterHello(), console, stream, stepvm.time.monotonic(), 5, 5, 5)
    assert run.status == "crash"
    assert run.cases[-1].name == "C.a" and run.cases[-1].outcome == "crash"
    assert "WARNING: CPU: 0 PID: 42 at virt/kvm/guest_memfd.c:600" in run.detail


def test_watch_ignores_splats_before_the_suite_started(tmp_path):
    run = watch(tmp_path, "WARNING: CPU: 0 PID: 1 at boot.c:1\n",
                HELLO + '{"event":"done","passed":0,"failed":0,"skipped":0}\n')
    assert run.status == "done"


def test_watch_qemu_exit_before_hello_is_no_boot(tmp_path):
    run = watch(tmp_path, "Kernel panic - not syncing: VFS\n", "", proc=FakeQemu(0))
    assert run.status == "no_boot" and "Kernel panic" in run.detail


def test_watch_qemu_exit_mid_case_crashes_that_case(tmp_path):
    run = watch(tmp_path, "boot\n", HELLO + START_A, proc=FakeQemu(0))
    assert run.status == "crash" and run.cases == [CaseResult("C.a", "crash", run.detail)]


def test_watch_boot_timeout_is_no_boot(tmp_path):
    run = watch(tmp_path, "stuck\n", "", boot_timeout=0)
    assert run.status == "no_boot" and "did not start within" in run.detail


def test_watch_case_timeout_names_the_case(tmp_path):
    run = watch(tmp_path, "boot\n", HELLO + START_A, case_timeout=0)
    assert run.status == "timeout" and run.cases[-1] == CaseResult("C.a", "timeout", run.detail)
