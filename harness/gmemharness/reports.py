"""Machine-readable reports: JUnit XML, KTAP, JSON."""
import json
import xml.etree.ElementTree as ET
from pathlib import Path

from .outcomes import CaseOutcome
from .results import KernelRun, results_json


def junit_xml(runs: list[KernelRun]) -> str:
    """One <testsuite> per kernel; crash and timeout are <error>, so CI tells them from failures."""
    root = ET.Element("testsuites", name="gmemtest")
    for run in runs:
        counts = run.counts()
        suite = ET.SubElement(root, "testsuite", name=f"gmemtest[{run.label}]",
                              tests=str(len(run.cases)),
                              failures=str(counts["fail"]),
                              errors=str(counts["crash"] + counts["timeout"] + counts["notrun"]),
                              skipped=str(counts["skip"]), time=f"{run.total_s:.2f}")
        props = ET.SubElement(suite, "properties")
        for key, value in (("kernel", run.release), ("accelerator", run.accel),
                           ("outcome", run.outcome.value), ("reason", run.reason)):
            ET.SubElement(props, "property", name=key, value=value or "")
        if run.reason and not run.cases:
            case = ET.SubElement(suite, "testcase", classname=f"{run.label}", name="(run)")
            ET.SubElement(case, "error", type=run.outcome.value, message=run.reason)
        for result in run.cases.values():
            case = ET.SubElement(suite, "testcase", classname=f"{run.label}.{result.suite}",
                                 name=result.test, time=f"{(result.ms or 0) / 1000:.3f}")
            if result.outcome == CaseOutcome.SKIP:
                ET.SubElement(case, "skipped", message=result.message)
            elif result.outcome == CaseOutcome.FAIL:
                el = ET.SubElement(case, "failure", message=result.message.splitlines()[0] if result.message else "")
                el.text = "\n\n".join([result.message] + result.splats)
            elif result.outcome != CaseOutcome.PASS:
                el = ET.SubElement(case, "error", type=result.outcome.value, message=result.message)
                el.text = "\n\n".join([result.message] + result.splats)
        if run.kernel_splats:
            ET.SubElement(suite, "system-err").text = "\n\n".join(run.kernel_splats)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


_KTAP_DIRECTIVE = {CaseOutcome.SKIP: "SKIP", CaseOutcome.TIMEOUT: "TIMEOUT",
                   CaseOutcome.CRASH: "ERROR", CaseOutcome.NOTRUN: "SKIP"}


def ktap(runs: list[KernelRun]) -> str:
    """KTAP v1: a top-level test per kernel, with one subtest per case."""
    out = ["KTAP version 1", f"1..{len(runs)}"]
    for number, run in enumerate(runs, 1):
        out += ["  KTAP version 1", f"  # Subtest: {_description(run.label)}",
                f"  # kernel {run.release} accelerator {run.accel or '?'}", f"  1..{len(run.cases)}"]
        for index, result in enumerate(run.cases.values(), 1):
            ok = "ok" if result.outcome in (CaseOutcome.PASS, CaseOutcome.SKIP) else "not ok"
            directive = _KTAP_DIRECTIVE.get(result.outcome)
            tail = f" # {directive} {_one_line(result.message)}".rstrip() if directive else ""
            for line in (result.message.splitlines() if result.outcome == CaseOutcome.FAIL else []):
                out.append(f"  # {line}")
            for splat in result.splats:
                out += [f"  # {line}" for line in splat.splitlines()[:20]]
            out.append(f"  {ok} {index} {_description(result.name)}{tail}")
        if run.reason:
            out.append(f"  # {run.outcome.value}: {_one_line(run.reason)}")
        run_ok = "ok" if run.outcome.value == "ok" else "not ok"
        out.append(f"{run_ok} {number} {_description(run.label)}")
    return "\n".join(out) + "\n"


def _description(name: str) -> str:
    """A KTAP test description: one line, no '#' (a user's LABEL=PATH may hold one)."""
    return _one_line(name).replace("#", "_")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def write_json(runs: list[KernelRun], path: Path) -> None:
    path.write_text(json.dumps(results_json(runs), indent=1) + "\n")
