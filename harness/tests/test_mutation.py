"""gmemharness mutate: each operator, the classification, and the report (no kernel builds)."""
from pathlib import Path

import pytest

from gmemharness.mutation import operators, report, runner
from gmemharness.outcomes import CaseOutcome, RunOutcome
from gmemharness.results import CaseResult, KernelRun

SOURCE = """\
/* a comment with if (x < y) inside */
static int helper(struct inode *inode, loff_t offset, loff_t len)
{
\tif (offset < 0 && len > 0)
\t\treturn -EINVAL;
\tif (!(mode & FALLOC_FL_KEEP_SIZE))
\t\treturn -EOPNOTSUPP;
\tif (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE)) {
\t\tgoto out;
\t}
\tif (offset + len >= i_size_read(inode) || flags)
\t\tgoto out;
\tpr_info("a < b and -EIO in a string");
\tn = end - 1;
\treturn do_thing(inode, offset);
}

int other(void)
{
\treturn 0;
}
"""

ALL = operators.generate("virt/kvm/x.c", SOURCE)


def mutated(op: str, line: int) -> list[str]:
    return [m.mutated.strip() for m in ALL if m.operator == op and m.line == line]


def test_functions_are_found_with_their_body_lines():
    names = [(n, a + 1, b + 1) for n, a, b in operators.functions(SOURCE.split("\n"))]
    assert names == [("helper", 4, 15), ("other", 20, 20)]


def test_if_negate():
    assert mutated("if_negate", 4) == ["if (!(offset < 0 && len > 0))"]


def test_if_drop_operand_drops_each_operand_of_the_chain():
    assert mutated("if_drop_operand", 4) == ["if (len > 0)", "if (offset < 0)"]
    assert mutated("if_drop_operand", 11) == ["if (flags)", "if (offset + len >= i_size_read(inode))"]


def test_drop_early_exit_only_when_an_if_guards_it():
    assert mutated("drop_early_exit", 5) == ["{ }"]
    assert mutated("drop_early_exit", 12) == ["{ }"]
    assert mutated("drop_early_exit", 9) == []  # inside a braced block: the if line ends with "{"


def test_relational_moves_the_bound():
    assert mutated("relational", 4) == ["if (offset <= 0 && len > 0)", "if (offset < 0 && len >= 0)"]
    assert mutated("relational", 11) == ["if (offset + len > i_size_read(inode) || flags)"]


def test_bound_plus_one_extends_the_right_operand():
    assert "if (offset + len >= i_size_read(inode) + 1 || flags)" in mutated("bound_plus_one", 11)


def test_off_by_one_swaps_the_sign():
    assert mutated("off_by_one", 14) == ["n = end + 1;"]


def test_logical_and_bitwise():
    assert mutated("logical", 4) == ["if (offset < 0 || len > 0)"]
    assert mutated("bitwise", 8) == ["if (mode | ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE)) {",
                                     "if (mode & ~(FALLOC_FL_KEEP_SIZE & FALLOC_FL_PUNCH_HOLE)) {"]


def test_swap_args():
    assert mutated("swap_args", 15) == ["return do_thing(offset, inode);"]


def test_constant_neighbour_within_the_family_used_in_the_file():
    assert mutated("constant_neighbour", 5) == ["return -EOPNOTSUPP;"]
    assert mutated("constant_neighbour", 6) == ["if (!(mode & FALLOC_FL_PUNCH_HOLE))"]


def test_strings_and_comments_are_never_mutated():
    assert not [m for m in ALL if m.line in (1, 13)]


def test_ids_are_unique_and_apply_changes_one_line():
    assert len({m.id for m in ALL}) == len(ALL)
    m = ALL[0]
    changed = [a != b for a, b in zip(SOURCE.split("\n"), operators.apply(SOURCE, m).split("\n"))]
    assert sum(changed) == 1
    assert m.diff().startswith("--- a/virt/kvm/x.c")
    with pytest.raises(ValueError):
        operators.apply(SOURCE.replace("offset < 0", "offset<0"), [x for x in ALL if x.line == 4][0])


def test_function_filter_and_sample():
    assert {m.function for m in operators.generate("x.c", SOURCE, {"other"})} <= {"other"}
    picked = operators.sample(ALL, 3)
    assert len(picked) == 3 and picked == operators.sample(ALL, 3)
    assert [m.line for m in picked] == sorted(m.line for m in picked)


def run_of(**outcomes) -> KernelRun:
    run = KernelRun(label="m")
    for name, outcome in outcomes.items():
        run.cases[name.replace("_", ".")] = CaseResult(name.replace("_", "."), CaseOutcome(outcome), message="boom")
    return run


STABLE = ["A.x", "A.y"]


def test_classify_killed_by_a_failure_naming_the_case():
    verdict, killing, message = runner.classify(run_of(A_x="pass", A_y="fail"), STABLE)
    assert (verdict, killing) == ("killed", ["A.y"]) and message == "A.y: fail: boom"


def test_classify_survived_when_every_stable_case_passes():
    assert runner.classify(run_of(A_x="pass", A_y="pass", B_z="fail"), STABLE)[0] == "survived"


def test_classify_skip_of_a_stable_case_kills():
    assert runner.classify(run_of(A_x="pass", A_y="skip"), STABLE)[:2] == ("killed", ["A.y"])


def test_classify_crash_and_timeout():
    crashed = run_of(A_x="crash")
    crashed.outcome = RunOutcome.CRASH
    assert runner.classify(crashed, STABLE)[:2] == ("killed", ["A.x", "A.y"])
    assert runner.classify(run_of(A_x="timeout", A_y="notrun"), STABLE)[0] == "timeout"


def test_classify_boot_failure():
    run = KernelRun(label="m", outcome=RunOutcome.INFRA, reason="no result before --boot-timeout")
    assert runner.classify(run, STABLE) == ("boot failure", [], "no result before --boot-timeout")


def test_stable_cases_ignore_flips():
    stable, unstable = runner.stable_cases(run_of(A_x="pass", A_y="pass", B_z="skip"),
                                           run_of(A_x="pass", A_y="fail", B_z="skip"))
    assert stable == ["A.x"] and unstable == ["A.y"]


def test_report_sorts_survivors_first_and_counts_the_rate(tmp_path):
    opts = runner.MutateOptions(tree=Path("/k"), files=["virt/kvm/x.c"], out=tmp_path, max=3)
    base = dict(file="virt/kvm/x.c", function="f", operator="if_negate", original="if (a)", mutated="if (!(a))",
                message="", build_s=1, run_s=1)
    state = {"baseline": {"stable": STABLE, "unstable": []}, "wall_s": 10, "mutants": {
        "k": dict(base, id="k", line=2, verdict="killed", killing=["A.y"]),
        "s": dict(base, id="s", line=9, verdict="survived", killing=[]),
        "b": dict(base, id="b", line=1, verdict="build failure", killing=[], message="error: x")}}
    text = report.markdown(opts, state, ["k", "s", "b"])
    assert "kill rate (killed + timeout over compiling, booting mutants): 1/2 = 50.0%" in text
    rows = [l for l in text.splitlines() if l.startswith("| ") and "verdict" not in l]
    assert [r.split("|")[1].strip() for r in rows] == ["survived", "killed", "build failure"]
    assert "--max 3" in text


class FakeBuild:
    """kbuild.build and session.run_kernel stand-ins: a mutant of line 4 breaks case A.y."""

    def __init__(self, tree: Path):
        self.tree = tree

    def build(self, tree, build_dir, **kw):
        if "!!" in (tree / "virt/kvm/x.c").read_text():
            raise runner.BuildFailed("does not compile", Path("/dev/null"))
        build_dir.mkdir(parents=True, exist_ok=True)
        (build_dir / "bzImage").write_text((tree / "virt/kvm/x.c").read_text())
        return type("A", (), {"bzimage": build_dir / "bzImage", "config": None})()

    def run_kernel(self, kernel, options):
        text = Path(kernel).read_text()
        broken = "offset < 0 && len > 0" not in text
        return run_of(A_x="pass", A_y="fail" if broken else "pass")


def test_runner_end_to_end_with_resume(tmp_path, monkeypatch):
    tree = tmp_path / "linux"
    (tree / "virt/kvm").mkdir(parents=True)
    (tree / "Makefile").write_text("VERSION = 7\n")
    (tree / "virt/kvm/x.c").write_text(SOURCE)
    fake = FakeBuild(tree)
    monkeypatch.setattr(runner.kbuild, "build", fake.build)
    monkeypatch.setattr(runner.kbuild, "check_kernel_tree", lambda *a, **k: None)
    monkeypatch.setattr(runner, "list_selected_cases", lambda *a: ["A.x", "A.y"])
    monkeypatch.setattr(runner.kernelsource, "from_bzimage", lambda path, **kw: path)
    monkeypatch.setattr(runner.session, "run_kernel", fake.run_kernel)
    opts = runner.MutateOptions(tree=tree, files=["virt/kvm/x.c"], out=tmp_path / "out", functions=["helper"])
    lines = []
    state = runner.Mutator(opts, say=lines.append).run()
    verdicts = {m["line"]: m["verdict"] for m in state["mutants"].values()}
    assert verdicts[4] == "killed" and verdicts[15] == "survived"
    assert (tree / "virt/kvm/x.c").read_text() == SOURCE, "the user's tree is never modified"
    work, _ = runner.series_kernel.mirrored_layout(tree, opts.out / "work")
    assert (work / "virt/kvm/x.c").read_text() == SOURCE, "the work copy is restored"
    assert (tmp_path / "out/report.md").is_file() and any(l.startswith("[1/") for l in lines)
    # --resume judges nothing twice.
    monkeypatch.setattr(runner.session, "run_kernel", lambda *a: pytest.fail("re-ran a judged mutant"))
    opts.resume = True
    again = runner.Mutator(opts, say=lines.append).run()
    assert again["mutants"] == state["mutants"]
