"""CI definitions that fan a kernel (× series) matrix out over a stock CI engine, one job each.

  gmemharness plan 7.2 7.3 [--series DIR ...] --format gitlab|github|lava [-o PATH]

GitLab CI (parallel:matrix) and GitHub Actions (matrix workflow) jobs build the suite, run
`gmemharness run` on their kernel into results-<id>/ and keep it as an artifact; a last job runs
`gmemharness merge results-*/results.json -o merged/` (the same matrix, diff and reports a local
run of all kernels writes). LAVA gets one job per kernel: the kernel and a ramdisk holding the
static suite, booted by LAVA's QEMU device type, the suite's KTAP on the console read by a monitor.
"""
import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from .errors import InfraError

RUN = "harness/gmemharness.sh"
SUITE = "build/cases/gmemtest"
MERGE_DIR = "merged"
DEBIAN_IMAGE = "debian:bookworm"
SETUP = ["ci/setup.sh", "ci/build.sh"]


@dataclass(frozen=True)
class Job:
    id: str           # results-<id>/ holds this job's results; sorts in plan order
    kernel: str
    series: str = ""
    label: str = ""   # the column name with a series applied; without one, the kernel as given

    @property
    def column(self) -> str:
        return self.label or self.kernel

    def env(self) -> dict[str, str]:
        return {"JOB_ID": self.id, "KERNEL": self.kernel, "SERIES": self.series, "LABEL": self.label}


@dataclass
class PlanOptions:
    gtest_filter: str | None = None
    binary: str = SUITE
    run_args: tuple[str, ...] = ()       # further `gmemharness run` options, e.g. --expect ci/expect
    suite_args: tuple[str, ...] = ()     # arguments for the suite (after --)
    lava_url: str = "https://example.invalid/gmemtest"   # where LAVA finds each job's kernel and ramdisk


def jobs(kernels: list[str], series: list[str]) -> list[Job]:
    if not kernels:
        raise InfraError("plan needs at least one kernel")
    out = []
    for kernel in kernels:
        for s in series or [""]:
            name = _slug(kernel) if "/" in kernel else kernel     # a label holds no '/'
            label = f"{name}+{_slug(Path(s).name)}" if s else ""
            out.append(Job(f"{len(out) + 1:02d}-{_slug(label or kernel)}", kernel, s, label))
    return out


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "x"


def run_command(opts: PlanOptions) -> str:
    """A job's command; its kernel, series and output come from the job's variables."""
    extra = [f"--filter={opts.gtest_filter}"] if opts.gtest_filter else []
    extra += list(opts.run_args) + (["--", *opts.suite_args] if opts.suite_args else [])
    return (f'{RUN} run "${{LABEL:+$LABEL=}}$KERNEL" ${{SERIES:+--series "$SERIES"}} '
            f'--binary {shlex.quote(opts.binary)} --out "results-$JOB_ID" --quiet --color never '
            f'{shlex.join(extra)}'.rstrip())


def merge_command() -> str:
    return f"{RUN} merge results-*/results.json -o {MERGE_DIR}"


# -- GitLab CI -----------------------------------------------------------------------------------

def gitlab(kernel_jobs: list[Job], opts: PlanOptions) -> dict:
    return {
        "stages": ["suite", "merge"],
        "default": {"image": DEBIAN_IMAGE},
        "gmemtest": {
            "stage": "suite",
            "parallel": {"matrix": [{k: [v] for k, v in job.env().items()} for job in kernel_jobs]},
            "before_script": list(SETUP),
            "script": [run_command(opts)],
            "artifacts": {"when": "always", "paths": ["results-$JOB_ID/"], "expire_in": "1 week"},
        },
        "merge": {
            "stage": "merge",
            "when": "always",
            "before_script": ["ci/setup.sh"],
            "script": [merge_command()],
            "artifacts": {"when": "always", "paths": [f"{MERGE_DIR}/"],
                          "reports": {"junit": f"{MERGE_DIR}/junit.xml"}},
        },
    }


# -- GitHub Actions ------------------------------------------------------------------------------

def github(kernel_jobs: list[Job], opts: PlanOptions) -> dict:
    matrix_env = {k: f"${{{{ matrix.{k.lower()} }}}}" for k in Job("", "").env()}
    checkout = {"uses": "actions/checkout@v4"}
    return {
        "name": "gmemtest kernel matrix",
        "on": {"workflow_dispatch": {}, "push": {}},
        "jobs": {
            "suite": {
                "runs-on": "ubuntu-latest",
                "container": {"image": DEBIAN_IMAGE, "options": "--privileged"},
                "strategy": {"fail-fast": False,
                             "matrix": {"include": [{k.lower(): v for k, v in job.env().items()}
                                                    for job in kernel_jobs]}},
                "env": matrix_env,
                "steps": [checkout,
                          {"name": "set up and build", "run": "\n".join(SETUP)},
                          {"id": "suite", "name": "run the suite", "run": run_command(opts)},
                          {"if": "always()", "uses": "actions/upload-artifact@v4",
                           "with": {"name": "results-${{ matrix.job_id }}", "path": "results-${{ matrix.job_id }}/"}}],
            },
            "merge": {
                "needs": "suite",
                "if": "always()",
                "runs-on": "ubuntu-latest",
                "container": {"image": DEBIAN_IMAGE},
                "steps": [checkout,
                          {"name": "set up", "run": "ci/setup.sh"},
                          {"uses": "actions/download-artifact@v4", "with": {"pattern": "results-*", "path": "."}},
                          {"id": "merge", "name": "merge the matrix", "run": merge_command()},
                          {"if": "always()", "uses": "actions/upload-artifact@v4",
                           "with": {"name": "gmemtest-matrix", "path": f"{MERGE_DIR}/"}}],
            },
        },
    }


# -- LAVA ----------------------------------------------------------------------------------------

# A KTAP result line; `result` is "SKIP" on a skip line, else "ok" or "not ok" (the case name is
# read by a lookahead so that one group can sit at the directive or at the line's start).
KTAP_RESULT = r"(?=(?:not )?ok \d+ (?P<test_case_id>[^\s#]+))(?:ok \d+ [^\s#]+ # )?(?P<result>SKIP|not ok|ok)"
KTAP_FIXUP = {"ok": "pass", "not ok": "fail", "SKIP": "skip"}


def lava(job: Job, opts: PlanOptions) -> dict:
    """One LAVA job: the kernel and `gmemharness image --ktap` ramdisk published under
    opts.lava_url/<id>/, booted on LAVA's qemu device type; a monitor reads the KTAP result lines
    as pass, fail or skip."""
    base = f"{opts.lava_url.rstrip('/')}/{job.id}"
    return {
        "device_type": "qemu",
        "job_name": f"gmemtest {job.column}",
        "priority": "medium",
        "visibility": "public",
        "timeouts": {"job": {"minutes": 60}, "action": {"minutes": 50}, "connection": {"minutes": 2}},
        "context": {"arch": "amd64", "cpu": "max,cx16=off", "memory": 2048, "extra_options": [
            "-object memory-backend-ram,id=mem0,size=1024M", "-numa node,nodeid=0,memdev=mem0,cpus=0",
            "-object memory-backend-ram,id=mem1,size=1024M", "-numa node,nodeid=1,memdev=mem1"]},
        "actions": [
            {"deploy": {"to": "tmpfs", "timeout": {"minutes": 10}, "images": {
                "kernel": {"url": f"{base}/bzImage", "image_arg": "-kernel {kernel}"},
                "ramdisk": {"url": f"{base}/initramfs.cpio", "image_arg": "-initrd {ramdisk}"}}}},
            {"boot": {"method": "qemu", "media": "tmpfs", "timeout": {"minutes": 5},
                      "prompts": ["KTAP version 1"]}},
            {"test": {"timeout": {"minutes": 45}, "monitors": [{
                "name": "gmemtest", "start": "KTAP version 1", "end": "gmemtest-done",
                "pattern": KTAP_RESULT, "fixupdict": KTAP_FIXUP}]}},
        ],
    }


# -- output --------------------------------------------------------------------------------------

def render(fmt: str, kernel_jobs: list[Job], opts: PlanOptions) -> dict[str, str]:
    """File name -> text. JSON is valid YAML and every engine reads it; it is written as YAML
    when PyYAML is installed (python3-yaml), for people reading it."""
    if fmt == "gitlab":
        return {".gitlab-ci.yml": _dump(gitlab(kernel_jobs, opts))}
    if fmt == "github":
        return {"gmemtest.yml": _dump(github(kernel_jobs, opts))}
    if fmt == "lava":
        return {f"lava-{job.id}.yaml": _dump(lava(job, opts)) for job in kernel_jobs}
    raise InfraError(f"unknown plan format {fmt}")


def _dump(data: dict) -> str:
    try:
        import yaml
    except ImportError:
        return json.dumps(data, indent=1) + "\n"

    class _Dumper(yaml.SafeDumper):
        def ignore_aliases(self, data):   # no &anchors: some CI schema checkers reject them
            return True

    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, width=120, default_flow_style=False)
