"""The case x kernel matrix (terminal, Markdown, HTML) and the diff between two kernels."""
import html
from dataclasses import dataclass

from .outcomes import CaseOutcome
from .results import KernelRun

_ANSI = {CaseOutcome.PASS: "32", CaseOutcome.FAIL: "31;1", CaseOutcome.SKIP: "33",
         CaseOutcome.CRASH: "35;1", CaseOutcome.TIMEOUT: "35", CaseOutcome.NOTRUN: "90"}
_CSS = {CaseOutcome.PASS: "#c8f7c5", CaseOutcome.FAIL: "#f7c5c5", CaseOutcome.SKIP: "#f7f0c5",
        CaseOutcome.CRASH: "#e0b0f0", CaseOutcome.TIMEOUT: "#e0c8f0", CaseOutcome.NOTRUN: "#e0e0e0"}
ABSENT = "."


def case_names(runs: list[KernelRun]) -> list[str]:
    return list(dict.fromkeys(name for run in runs for name in run.cases))


def _cell(run: KernelRun, name: str) -> CaseOutcome | None:
    result = run.cases.get(name)
    return result.outcome if result else None


def terminal(runs: list[KernelRun], color: bool = False) -> str:
    names = case_names(runs)
    width = max([len(n) for n in names] + [4])
    cols = [max(len(r.label), 5) for r in runs]
    lines = [" " * width + "  " + "  ".join(r.label.ljust(c) for r, c in zip(runs, cols))]
    for name in names:
        cells = []
        for run, col in zip(runs, cols):
            outcome = _cell(run, name)
            text = (outcome.short if outcome else ABSENT).ljust(col)
            cells.append(f"\x1b[{_ANSI[outcome]}m{text}\x1b[0m" if color and outcome else text)
        lines.append(name.ljust(width) + "  " + "  ".join(cells))
    lines.append("")
    lines.append(summary_line(runs))
    return "\n".join(lines) + "\n"


def summary_line(runs: list[KernelRun]) -> str:
    parts = []
    for run in runs:
        c = run.counts()
        parts.append(f"{run.label}: {run.outcome.value} ({c['pass']} pass, {c['fail']} fail, "
                     f"{c['skip']} skip" + "".join(f", {c[k]} {k}" for k in ("crash", "timeout", "notrun") if c[k])
                     + f"; {run.accel or '?'}, {_timing(run)})")
    return "\n".join(parts)


def _timing(run: KernelRun) -> str:
    first = f"first result {run.first_result_s:.1f}s, " if run.first_result_s is not None else ""
    return f"{first}total {run.total_s:.1f}s"


def markdown(runs: list[KernelRun]) -> str:
    out = ["| case | " + " | ".join(r.label for r in runs) + " |",
           "|---|" + "---|" * len(runs)]
    for name in case_names(runs):
        cells = [(_cell(r, name).short if _cell(r, name) else ABSENT) for r in runs]
        out.append(f"| `{name}` | " + " | ".join(cells) + " |")
    out.append("")
    out += [f"- {line}" for line in summary_line(runs).splitlines()]
    return "\n".join(out) + "\n"


def html_page(runs: list[KernelRun]) -> str:
    head = "".join(f"<th>{html.escape(r.label)}<br><small>{html.escape(r.release)}</small></th>" for r in runs)
    rows = []
    for name in case_names(runs):
        cells = []
        for run in runs:
            outcome = _cell(run, name)
            result = run.cases.get(name)
            title = html.escape(result.message if result else "")
            style = f' style="background:{_CSS[outcome]}"' if outcome else ""
            cells.append(f'<td{style} title="{title}">{outcome.short if outcome else ABSENT}</td>')
        rows.append(f"<tr><th class=case>{html.escape(name)}</th>{''.join(cells)}</tr>")
    summary = "".join(f"<li>{html.escape(line)}</li>" for line in summary_line(runs).splitlines())
    return ("<!doctype html><meta charset=utf-8><title>gmemtest matrix</title>"
            "<style>table{border-collapse:collapse;font:13px monospace}td,th{border:1px solid #999;"
            "padding:2px 6px;text-align:center}th.case{text-align:left}</style>"
            f"<table><tr><th>case</th>{head}</tr>{''.join(rows)}</table><ul>{summary}</ul>\n")


@dataclass
class Diff:
    base: str
    new: str
    regressed: list[tuple[str, str, str]]   # (case, base outcome, new outcome)
    fixed: list[tuple[str, str, str]]
    changed: list[tuple[str, str, str]]     # any other change (pass->skip, appeared, vanished)

    def text(self) -> str:
        out = [f"diff {self.base} -> {self.new}: {len(self.regressed)} regressed, "
               f"{len(self.fixed)} fixed, {len(self.changed)} other changes"]
        for title, rows in (("REGRESSED", self.regressed), ("fixed", self.fixed), ("changed", self.changed)):
            out += [f"  {title:9} {case}: {a} -> {b}" for case, a, b in rows]
        return "\n".join(out) + "\n"


def diff(base: KernelRun, new: KernelRun) -> Diff:
    """What changed from `base` to `new`. A regression is a case that passed on base and does not
    pass on new (fails, crashes, times out, skips, or went missing)."""
    regressed, fixed, changed = [], [], []
    for name in case_names([base, new]):
        a, b = _cell(base, name), _cell(new, name)
        if a == b:
            continue
        row = (name, a.value if a else "absent", b.value if b else "absent")
        if a == CaseOutcome.PASS:
            regressed.append(row)
        elif b == CaseOutcome.PASS:
            fixed.append(row)
        else:
            changed.append(row)
    return Diff(base.label, new.label, regressed, fixed, changed)
