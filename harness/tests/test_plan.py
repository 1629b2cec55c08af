"""`gmemharness plan` and `merge`: the CI definitions are valid for their engines (checked with
real validators when installed), and running the generated jobs one after another, then merging,
gives the matrix and reports of one direct run of all kernels."""
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import FAKE_QEMU, FAKE_SUITE, HARNESS, write_bzimage, write_modules
from gmemharness import cli, plan

yaml = pytest.importorskip("yaml", reason="python3-yaml reads the generated definitions")

NPM = Path(os.environ.get("GMEMTEST_NPM", Path.home() / ".cache/gmemtest/npm")) / "node_modules"
NPM_HINT = ("npm install --prefix ~/.cache/gmemtest/npm @action-validator/cli@0.6.0 gitlab-ci-local@4.75.1")


def generate(tmp_path, fmt, *args) -> Path:
    out = tmp_path / fmt
    assert cli.main(["plan", *args, "--format", fmt, "-o", str(out)]) == 0
    return out


def test_one_job_per_kernel_and_series_in_plan_order():
    jobs = plan.jobs(["7.2", "/k/bzImage"], ["/s/fix-v2", "/s/other.mbox"])
    assert [j.id for j in jobs] == ["01-7.2_fix-v2", "02-7.2_other.mbox", "03-k_bzImage_fix-v2",
                                    "04-k_bzImage_other.mbox"]
    assert jobs[0].label == "7.2+fix-v2" and jobs[0].series == "/s/fix-v2"
    assert jobs[2].label == "k_bzImage+fix-v2"     # a label holds no '/' (LABEL=PATH)
    assert [j.column for j in plan.jobs(["7.2", "7.3"], [])] == ["7.2", "7.3"]
    assert [j.label for j in plan.jobs(["7.2", "7.3"], [])] == ["", ""]


def test_the_lava_job_passes_lavas_own_schema(tmp_path):
    schemas = pytest.importorskip("lava_common.schemas", reason="apt-get install lava-common")
    out = generate(tmp_path, "lava", "7.2", "7.3")
    files = sorted(out.glob("lava-*.yaml"))
    assert [f.name for f in files] == ["lava-01-7.2.yaml", "lava-02-7.3.yaml"]
    for f in files:
        job = yaml.safe_load(f.read_text())
        schemas.validate(job, strict=True)          # raises voluptuous.Invalid
        monitor = job["actions"][2]["test"]["monitors"][0]
        for line, case, result in (("not ok 7 Creation.RejectsUnknownFlags", "Creation.RejectsUnknownFlags", "fail"),
                                   ("ok 8 Fam/B.C/guest_memfd # SKIP gmem absent", "Fam/B.C/guest_memfd", "skip"),
                                   ("ok 9 Mmap.Faults", "Mmap.Faults", "pass")):
            m = re.search(monitor["pattern"], line)
            assert (m.group("test_case_id"), monitor["fixupdict"][m.group("result")]) == (case, result)
    job["actions"][0]["deploy"]["to"] = "floppy"
    with pytest.raises(Exception):
        schemas.validate(job, strict=True)


def test_the_github_workflow_passes_the_workflow_schema(tmp_path):
    validator = NPM / ".bin" / "action-validator"
    if not validator.exists():
        pytest.skip(f"no action-validator: {NPM_HINT}")
    workflow = generate(tmp_path, "github", "7.2", "7.3", "--filter", "Creation.*") / "gmemtest.yml"
    proc = subprocess.run([str(validator), str(workflow)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    broken = tmp_path / "broken.yml"
    broken.write_text(workflow.read_text().replace("runs-on:", "runs_on:"))
    assert subprocess.run([str(validator), str(broken)], capture_output=True).returncode != 0


def test_the_gitlab_pipeline_passes_gitlabs_schema(tmp_path):
    tool = NPM / "gitlab-ci-local" / "dist" / "index.js"
    if not tool.exists() or not shutil.which("node"):
        pytest.skip(f"no gitlab-ci-local: {NPM_HINT}")
    out = generate(tmp_path, "gitlab", "7.2", "7.3", "--series", "/s/fix")
    subprocess.run(["git", "init", "-q", str(out)], check=True)

    def check(directory: Path) -> subprocess.CompletedProcess:
        return subprocess.run(["node", "--require", str(HARNESS / "tests/node_set_methods.cjs"), str(tool),
                               "--list"], cwd=directory, capture_output=True, text=True, timeout=300)
    proc = check(out)
    assert proc.returncode == 0 and "json schema validated" in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    assert proc.stdout.count("gmemtest: [") == 2
    text = (out / ".gitlab-ci.yml").read_text()
    (out / ".gitlab-ci.yml").write_text(text.replace("when: always", "when: sometimes"))
    assert check(out).returncode != 0


# -- plan -> jobs one after another -> merge == one direct run ------------------------------------

def boot(outcomes: dict[str, str]) -> list:
    events = [("harness-boot", {}), ("hello", {"version": 1})]
    for case, outcome in outcomes.items():
        events += [("start", {"case": case}),
                   ("end", {"case": case, "outcome": outcome, "message": "" if outcome == "pass" else f"{case} {outcome}"})]
    return [["stream", {"event": e, **f}] for e, f in events + [("done", {})]]


BOOTS = [boot({"Fake.A": "pass", "Fake.B": "pass", "Fake.C": "skip"}),
         boot({"Fake.A": "fail", "Fake.B": "pass", "Fake.C": "pass"}),
         boot({"Fake.A": "pass", "Fake.B": "skip", "Fake.C": "fail"})]


@pytest.fixture
def fleet(tmp_path):
    """Three kernels (bzImages of one release), a fake QEMU on PATH, a CI checkout in work/."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "qemu-system-x86_64").symlink_to(FAKE_QEMU)
    work = tmp_path / "work"
    work.mkdir()
    (work / "harness").symlink_to(HARNESS)
    mods = write_modules(tmp_path / "mods")
    kernels = []
    for name in ("base", "fix", "next"):
        (tmp_path / name).mkdir()
        kernels.append(str(write_bzimage(tmp_path / name / "bzImage")))
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", GMEMTEST_CACHE=str(tmp_path / "cache"))
    return {"work": work, "kernels": kernels, "env": env, "tmp": tmp_path,
            "args": ["--binary", str(FAKE_SUITE), "--run-arg=--accel=tcg", f"--run-arg=--modules={mods}",
                     "--suite-arg=--fake_cases=Fake.A,Fake.B,Fake.C"]}


def play(env: dict, tmp_path: Path, boots: list) -> dict:
    scripts = tmp_path / "scripts.json"
    scripts.write_text(json.dumps(boots))
    return dict(env, FAKE_GUEST_SCRIPTS=str(scripts))


def sh(command: str, cwd: Path, env: dict) -> int:
    return subprocess.run(["sh", "-c", command], cwd=cwd, env=env, capture_output=True, text=True).returncode


def gitlab_jobs(definition: dict) -> tuple[list[tuple[dict, str]], str]:
    job = definition["gmemtest"]
    runs = [({k: v[0] for k, v in entry.items()}, line) for entry in job["parallel"]["matrix"] for line in job["script"]]
    return runs, definition["merge"]["script"][0]


def github_jobs(definition: dict) -> tuple[list[tuple[dict, str]], str]:
    suite = definition["jobs"]["suite"]
    step = next(s for s in suite["steps"] if s.get("id") == "suite")
    runs = [({k.upper(): v for k, v in entry.items()}, step["run"]) for entry in suite["strategy"]["matrix"]["include"]]
    merge = next(s for s in definition["jobs"]["merge"]["steps"] if s.get("id") == "merge")
    return runs, merge["run"]


def comparable(directory: Path) -> dict:
    """The parts of a run's reports that do not depend on timing or where logs went."""
    md = (directory / "matrix.md").read_text().split("\n\n")[0]
    results = json.loads((directory / "results.json").read_text())
    kernels = [{k: run[k] for k in ("label", "release", "outcome", "counts")}
               | {"cases": [{k: c[k] for k in ("name", "outcome", "message")} for c in run["cases"]]}
               for run in results["kernels"]]
    return {"md": md, "ktap": (directory / "results.ktap").read_text(), "kernels": kernels,
            "outcome": results["outcome"]}


@pytest.mark.parametrize("fmt,read", [("gitlab", gitlab_jobs), ("github", github_jobs)])
def test_running_the_generated_jobs_and_merging_equals_a_direct_run(fleet, fmt, read, capsys):
    tmp, work, kernels = fleet["tmp"], fleet["work"], fleet["kernels"]
    direct_code = subprocess.run(
        [str(HARNESS / "gmemharness.sh"), "run", *kernels, "--binary", str(FAKE_SUITE), "--accel", "tcg",
         "--jobs", "1", "--modules", str(tmp / "mods"), "--out", str(tmp / "direct"), "--diff", kernels[0], kernels[2],
         "--", "--fake_cases=Fake.A,Fake.B,Fake.C"],
        env=play(fleet["env"], tmp, BOOTS), capture_output=True, text=True)
    assert direct_code.returncode == 1, direct_code.stderr

    out = generate(tmp, fmt, *kernels, *fleet["args"])
    definition = yaml.safe_load(next(p for p in out.iterdir() if p.is_file()).read_text())
    runs, merge = read(definition)
    assert len(runs) == 3
    for (variables, command), script in zip(runs, BOOTS):
        code = sh(command, work, dict(play(fleet["env"], tmp, [script]), **variables))
        assert code in (0, 1), f"{command} with {variables} exited {code}"
    assert sorted(p.name for p in work.glob("results-*")) == ["results-01-" + plan._slug(kernels[0]),
                                                               "results-02-" + plan._slug(kernels[1]),
                                                               "results-03-" + plan._slug(kernels[2])]
    merged = subprocess.run(["sh", "-c", merge + f" --diff {kernels[0]} {kernels[2]}"], cwd=work,
                            env=fleet["env"], capture_output=True, text=True)
    assert merged.returncode == 1, merged.stderr
    assert comparable(work / plan.MERGE_DIR) == comparable(tmp / "direct")
    assert "1 regressed" in merged.stdout
    diff_line = lambda text: next(l for l in text.splitlines() if l.startswith("diff "))
    assert diff_line(merged.stdout) == diff_line(direct_code.stdout)


def test_merge_refuses_a_kernel_in_two_files(tmp_path, capsys):
    data = {"version": 1, "outcome": "ok", "kernels": [{"label": "7.3", "cases": []}]}
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(json.dumps(data))
    code = cli.main(["merge", str(tmp_path / "a/results.json"), str(tmp_path / "b/results.json"), "-o", str(tmp_path / "m")])
    assert code == 5 and "more than one results file" in capsys.readouterr().err
