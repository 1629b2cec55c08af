"""The strict KTAP v1 reader, and the harness's own KTAP report checked against it."""
import os
import subprocess
from pathlib import Path

import pytest

from gmemharness import ktap, reports
from gmemharness.outcomes import CaseOutcome as O
from gmemharness.outcomes import RunOutcome
from gmemharness.results import CaseResult, KernelRun

REPO = Path(__file__).resolve().parents[2]

NESTED = """KTAP version 1
1..2
  KTAP version 1
  # Subtest: first
  1..2
  ok 1 Area.Passes
  # Area.c:3: expected 0
  not ok 2 Area.Fails
  # totals: 1 pass, 1 fail
# first failed
not ok 1 first
ok 2 second # SKIP nothing to run
"""


def lines(*body: str) -> str:
    return "\n".join(body) + "\n"


def test_a_nested_document_is_read_with_its_diagnostics():
    doc = ktap.parse(NESTED)
    assert doc.plan == 2 and [r.description for r in doc.results] == ["first", "second"]
    first = doc.results[0]
    assert first.failed and first.diagnostics == ["first failed"]
    assert first.subtests.header == ["Subtest: first"] and first.subtests.trailer == ["totals: 1 pass, 1 fail"]
    assert first.subtests.results[1].diagnostics == ["Area.c:3: expected 0"]
    assert doc.results[1].skipped and doc.results[1].reason == "nothing to run"
    assert ktap.exit_code(doc) == ktap.EXIT_FAIL


def test_exit_codes_follow_kselftest():
    assert ktap.exit_code(ktap.parse(lines("KTAP version 1", "1..2", "ok 1 a", "ok 2 b # SKIP x"))) == 0
    assert ktap.exit_code(ktap.parse(lines("KTAP version 1", "1..1", "ok 1 a # SKIP x"))) == 4
    assert ktap.exit_code(ktap.parse(lines("KTAP version 1", "1..0"))) == 0


@pytest.mark.parametrize("text,complaint", [
    (lines("TAP version 13", "1..0"), "expected 'KTAP version 1'"),
    (lines("KTAP version 1", "ok 1 a"), "expected the plan"),
    (lines("KTAP version 1", "1..2", "ok 1 a"), "the output ends"),
    (lines("KTAP version 1", "1..1", "ok 2 a"), "numbered 2, expected 1"),
    (lines("KTAP version 1", "1..1", "ok 1 a", "ok 2 b"), "trailing line"),
    (lines("KTAP version 1", "1..1", "some console noise", "ok 1 a"), "expected result line 1"),
    (lines("KTAP version 1", "1..1", "ok 1 a#b"), "expected result line 1"),
    (lines("KTAP version 1", "1..1", "ok 1 a # skip x"), "must be upper case"),
    (lines("KTAP version 1", "1..1", "ok 1 a # TIMEOUT 30 s"), "TIMEOUT on an 'ok' result"),
    (lines("KTAP version 1", "1..1", "   ok 1 a"), "expected result line 1"),
    (lines("KTAP version 1", "1..1", "  KTAP version 1", "  1..1", "  not ok 1 x", "ok 1 parent"),
     "although a subtest failed"),
    (lines("KTAP version 1", "1..1", "  KTAP version 1", "  1..1", "  ok 1 x", "  ok 2 y", "ok 1 p"),
     "expected result line 1"),
])
def test_the_reader_refuses(text, complaint):
    with pytest.raises(ktap.KtapError, match=complaint):
        ktap.parse(text)


def run_with(label, outcome, cases, reason="", splats=None):
    run = KernelRun(label=label, release=f"{label}-rel", accel="tcg", outcome=outcome, reason=reason)
    for name, (o, message) in cases.items():
        run.cases[name] = CaseResult(name=name, outcome=o, message=message, ms=1,
                                     splats=(splats or {}).get(name, []))
    return run


def test_the_harness_ktap_report_is_strict_ktap_for_every_outcome():
    every = {"Gmem.Pass": (O.PASS, ""), "Gmem.Skip": (O.SKIP, "needs hugetlb # really"),
             "Gmem.Fail": (O.FAIL, "Expected: 0\n\n  Actual: -22 # EINVAL"),
             "Gmem.Crash": (O.CRASH, "kernel panic"), "Gmem.Slow": (O.TIMEOUT, "ran 120 s"),
             "Fam/Backend.Case/guest_memfd": (O.NOTRUN, "")}
    runs = [run_with("6.12", RunOutcome.OK, {"Gmem.Pass": (O.PASS, ""), "Gmem.Skip": (O.SKIP, "x")}),
            run_with("7.3", RunOutcome.CRASH, every, reason="crash in Gmem.Crash\nsecond line",
                     splats={"Gmem.Fail": ["WARNING: at mm/x.c\n# call trace"]}),
            run_with("none", RunOutcome.INFRA, {}, reason="no QEMU"),
            run_with("skips", RunOutcome.OK, {"Gmem.Skip": (O.SKIP, "")})]
    doc = ktap.parse(reports.ktap(runs))
    assert [r.ok for r in doc.results] == [True, False, False, True]
    crashed = doc.results[1].subtests.results
    assert [r.description for r in crashed] == list(every)
    assert [r.directive for r in crashed] == [None, "SKIP", None, "ERROR", "TIMEOUT", "SKIP"]
    assert "Actual: -22 # EINVAL" in " ".join(crashed[2].diagnostics)


def test_the_command_line_checks_a_file_and_an_exit_code(tmp_path):
    path = tmp_path / "out.ktap"
    path.write_text(NESTED)
    assert ktap.main([str(path)]) == 0
    assert ktap.main([str(path), "--expect-exit", "1"]) == 0
    assert ktap.main([str(path), "--expect-exit", "0"]) == 1
    path.write_text("KTAP version 1\n1..1\n")
    assert ktap.main([str(path)]) == 1


SUITE = Path(os.environ.get("GMEMTEST_SUITE", REPO / "build/cases/gmemtest"))


@pytest.mark.skipif(not SUITE.is_file(), reason=f"{SUITE} is not built")
def test_the_suite_on_this_kernel_writes_strict_ktap():
    """The real suite's --ktap on the running kernel: whatever passes or skips here, the output
    parses and the exit code is the one its results call for."""
    proc = subprocess.run([str(SUITE), "--ktap", "--gtest_filter=Creation.*:Mmap.*"],
                          capture_output=True, text=True, timeout=300)
    doc = ktap.parse(proc.stdout)
    assert doc.results and all(r.description.startswith(("Creation.", "Mmap.")) for r in doc.results)
    assert proc.returncode == ktap.exit_code(doc)
