"""Reports: JUnit XML, KTAP, JSON, the matrix, the diff, expectation lists."""
import json
import xml.etree.ElementTree as ET

import pytest

from gmemharness import expect, matrix, reports
from gmemharness.errors import InfraError
from gmemharness.outcomes import CaseOutcome as O
from gmemharness.outcomes import RunOutcome
from gmemharness.results import CaseResult, KernelRun, results_json, runs_from_json


def make_run(label, outcomes, outcome=RunOutcome.OK, reason=""):
    run = KernelRun(label=label, release=f"{label}.0-cloud", accel="tcg", outcome=outcome, reason=reason)
    for name, (o, message) in outcomes.items():
        run.cases[name] = CaseResult(name=name, outcome=o, message=message, ms=3)
    return run


OLD = make_run("6.12", {"Gmem.Create": (O.PASS, ""), "Gmem.Mmap": (O.SKIP, "no mmap"),
                        "Gmem.Punch": (O.PASS, ""), "Gmem.Gone": (O.PASS, "")})
NEW = make_run("7.2", {"Gmem.Create": (O.FAIL, "Expected: 0\n  Actual: -22"), "Gmem.Mmap": (O.PASS, ""),
                       "Gmem.Punch": (O.CRASH, "kernel panic: Fatal exception"),
                       "Gmem.New": (O.SKIP, "needs hugetlb")},
               outcome=RunOutcome.CRASH, reason="crash in Gmem.Punch")


def test_junit_tells_failures_skips_and_crashes_apart():
    root = ET.fromstring(reports.junit_xml([OLD, NEW]))
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["gmemtest[6.12]", "gmemtest[7.2]"]
    new = {c.get("name"): c for c in suites[1].findall("testcase")}
    assert new["Create"].find("failure").get("message") == "Expected: 0"
    assert new["Punch"].find("error").get("type") == "crash"
    assert new["New"].find("skipped").get("message") == "needs hugetlb"
    assert new["Mmap"].find("*") is None
    assert suites[1].get("failures") == "1" and suites[1].get("errors") == "1" and suites[1].get("skipped") == "1"


def test_ktap_has_a_subtest_per_kernel_with_directives():
    lines = reports.ktap([OLD, NEW]).splitlines()
    assert lines[:2] == ["KTAP version 1", "1..2"]
    assert "  ok 2 Gmem.Mmap # SKIP no mmap" in lines
    assert "  not ok 1 Gmem.Create" in lines and "  # Expected: 0" in lines
    assert "  not ok 3 Gmem.Punch # ERROR kernel panic: Fatal exception" in lines
    assert lines[-1] == "not ok 2 7.2"
    assert "ok 1 6.12" in lines


def test_json_results_round_trip():
    data = json.loads(json.dumps(results_json([OLD, NEW])))
    assert data["outcome"] == "crash"
    back = runs_from_json(data)
    assert back[1].cases["Gmem.Punch"].outcome == O.CRASH
    assert back[1].outcome == RunOutcome.CRASH and back[1].reason == "crash in Gmem.Punch"
    assert back[0].counts()["pass"] == 3


def test_the_matrix_has_a_row_per_case_and_a_column_per_kernel():
    text = matrix.terminal([OLD, NEW])
    rows = {line.split()[0]: line.split()[1:] for line in text.splitlines()[1:6] if line.strip()}
    assert rows["Gmem.Create"] == ["PASS", "FAIL"]
    assert rows["Gmem.Punch"] == ["PASS", "CRASH"]
    assert rows["Gmem.Gone"] == ["PASS", matrix.ABSENT]
    assert rows["Gmem.New"] == [matrix.ABSENT, "SKIP"]
    assert "7.2: crash (1 pass, 1 fail, 1 skip, 1 crash" in text


def test_markdown_and_html_matrices_carry_the_same_cells():
    md = matrix.markdown([OLD, NEW])
    assert "| `Gmem.Punch` | PASS | CRASH |" in md
    page = matrix.html_page([OLD, make_run("x<y", {"A.b": (O.FAIL, 'said "<no>"')})])
    assert "x&lt;y" in page and 'title="said &quot;&lt;no&gt;&quot;"' in page


def test_the_diff_names_regressions_fixes_and_other_changes():
    d = matrix.diff(OLD, NEW)
    assert d.regressed == [("Gmem.Create", "pass", "fail"), ("Gmem.Punch", "pass", "crash"),
                           ("Gmem.Gone", "pass", "absent")]
    assert d.fixed == [("Gmem.Mmap", "skip", "pass")]
    assert d.changed == [("Gmem.New", "absent", "skip")]
    assert "REGRESSED Gmem.Punch: pass -> crash" in d.text()


@pytest.mark.parametrize("lines, problem", [
    ("Gmem.Mmap", None),
    ("Gmem.New", "got skip: needs hugetlb"),
    ("Gmem.Create", "got fail: Expected: 0"),
    ("Gmem.Missing", "did not run (run ended: crash: crash in Gmem.Punch)"),
    ("Gmem.M*  # a glob", None),
    ("Gmem.*", "expected Gmem.Create to pass"),
    ("Other.*", "did not run"),
    ("skip Gmem.New", None),
    ("flaky Gmem.Punch", "expected Gmem.Punch to flaky, got crash"),
    ("skip Gmem.Mmap", None),
    ("skip Gmem.Punch", "expected Gmem.Punch to skip, got crash"),
    ("pass Gmem.Mmap\nskip Gmem.Create", "expected Gmem.Create to skip, got fail"),
    ("fail Gmem.Create  # a known kernel bug", None),
    ("fail Gmem.Mmap", "expected Gmem.Mmap to fail, got pass"),
    ("fail Gmem.Punch", "expected Gmem.Punch to fail, got crash"),
])
def test_expectations_fail_on_any_listed_case_that_did_not_do_what_its_line_says(tmp_path, lines, problem):
    (tmp_path / "x.txt").write_text(lines + "\n")
    problems = [p for p in expect.check(NEW, expect.read_expectations(tmp_path / "x.txt"))
                if "is in no line" not in p]  # what unlisted cases did: the next test
    if problem is None:
        assert problems == []
    else:
        assert any(problem in p for p in problems), problems


def test_a_failing_case_no_line_lists_breaks_the_expectation_unless_flaky(tmp_path):
    (tmp_path / "x.txt").write_text("Gmem.Mmap\nskip Gmem.New\nGmem.Punch\n")
    problems = expect.check(NEW, expect.read_expectations(tmp_path / "x.txt"))
    assert any("Gmem.Create is in no line and did not pass or skip: fail" in p for p in problems), problems
    assert len(problems) == 2, problems  # and Gmem.Punch, listed as pass, crashed
    (tmp_path / "x.txt").write_text("Gmem.Mmap\nskip Gmem.New\nflaky Gmem.Create\n")
    problems = expect.check(NEW, expect.read_expectations(tmp_path / "x.txt"))
    assert problems == ["7.2: Gmem.Punch is in no line and did not pass or skip: crash: kernel panic: Fatal exception"]


def test_expectation_files_are_written_from_a_run_and_read_back(tmp_path):
    path = expect.write_expectations(tmp_path, OLD)
    assert path.name == "6.12.txt"
    assert expect.read_expectations(path) == [(O.PASS, "Gmem.Create"), (O.PASS, "Gmem.Gone"),
                                              (O.PASS, "Gmem.Punch"), (O.SKIP, "Gmem.Mmap")]
    assert expect.check_runs(tmp_path, [OLD]) == []


def test_a_malformed_expectation_line_is_an_error_naming_the_line(tmp_path):
    (tmp_path / "x.txt").write_text("Gmem.A\nbroken Gmem.B\n")
    with pytest.raises(InfraError, match="x.txt:2"):
        expect.read_expectations(tmp_path / "x.txt")


def test_a_kernel_without_an_expectation_file_or_with_an_empty_one_fails_closed(tmp_path):
    assert "no expectation file" in expect.check_runs(tmp_path, [NEW])[0]
    (tmp_path / "7.2.txt").write_text("# nothing yet\n")
    assert "lists no case" in expect.check_runs(tmp_path, [NEW])[0]
