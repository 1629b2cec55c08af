"""The mutation report: JSON (results.json) and Markdown (report.md), survivors first."""
import shlex
from pathlib import Path

ORDER = {"survived": 0, "timeout": 2, "killed": 3, "boot failure": 4, "build failure": 5}
COUNTED = ("killed", "timeout", "survived")


def kill_rate(records: list[dict]) -> tuple[int, int]:
    counted = [r for r in records if r["verdict"] in COUNTED]
    return sum(r["verdict"] != "survived" for r in counted), len(counted)


def command_line(opts) -> str:
    args = ["harness/gmemharness.sh", "mutate", "--kernel-tree", str(opts.tree)]
    for f in opts.files:
        args += ["--file", f]
    for f in opts.functions:
        args += ["--function", f]
    if opts.max is not None:
        args += ["--max", str(opts.max)]
    args += ["--filter", opts.gtest_filter, "--out", str(opts.out)]
    return " ".join(shlex.quote(a) for a in args)


def markdown(opts, state: dict, ids: list[str]) -> str:
    ids = list(dict.fromkeys(ids))  # a mutant listed twice is judged and counted once
    records = [state["mutants"][i] for i in ids if i in state["mutants"]]
    killed, counted = kill_rate(records)
    by_verdict: dict[str, int] = {}
    for r in records:
        by_verdict[r["verdict"]] = by_verdict.get(r["verdict"], 0) + 1
    base = state.get("baseline") or {}
    lines = [
        "# Mutation report", "",
        f"Reproduce: `{command_line(opts)}`", "",
        f"- mutants: {len(records)} of {len(ids)} judged; "
        + ", ".join(f"{v}: {n}" for v, n in sorted(by_verdict.items(), key=lambda kv: ORDER.get(kv[0], 9))),
        f"- kill rate (killed + timeout over compiling, booting mutants): "
        f"{killed}/{counted}" + (f" = {100 * killed / counted:.1f}%" if counted else ""),
        f"- baseline: {len(base.get('stable', []))} cases pass stably; unstable, ignored: "
        f"{', '.join(base.get('unstable', [])) or 'none'}",
        f"- wall time: {state.get('wall_s', 0):.0f} s for this run"
        + (f", {state.get('wall_s', 0) / max(1, len(records)):.0f} s per mutant" if records else ""), "",
        "| verdict | mutant | location | operator | change | killed by / first message |",
        "|---|---|---|---|---|---|",
    ]
    for r in sorted(records, key=lambda r: (ORDER.get(r["verdict"], 9), r["file"], r["line"])):
        change = f"`{r['original'].strip()}` → `{r['mutated'].strip()}`".replace("|", "\\|")
        who = ", ".join(r["killing"][:3]) + (f" (+{len(r['killing']) - 3})" if len(r["killing"]) > 3 else "")
        detail = who or r.get("message", "").splitlines()[0][:160] if (who or r.get("message")) else ""
        lines.append(f"| {r['verdict']} | {r['id']} | {r['file']}:{r['line']} ({r['function']}) | "
                     f"{r['operator']} | {change} | {detail.replace('|', chr(92) + '|')} |")
    return "\n".join(lines) + "\n"


def write(opts, state: dict, ids: list[str]) -> Path:
    path = Path(opts.out) / "report.md"
    path.write_text(markdown(opts, state, ids))
    return path
