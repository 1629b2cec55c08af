"""Results of running the suite on kernels: per case, per boot, per kernel; JSON round trip."""
from dataclasses import asdict, dataclass, field

from .outcomes import CaseOutcome, RunOutcome, worst


@dataclass
class CaseResult:
    name: str
    outcome: CaseOutcome
    message: str = ""
    ms: int | None = None
    splats: list[str] = field(default_factory=list)
    boot: int = 1

    @property
    def suite(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def test(self) -> str:
        return self.name.split(".", 1)[-1]


@dataclass
class BootRecord:
    number: int
    console_log: str
    stream_log: str
    accel: str
    end: str = ""                       # why the boot ended, in words
    qemu_status: int | None = None
    seconds: float = 0.0
    first_result_s: float | None = None  # QEMU start -> first case's end event
    qemu_cpu_s: float | None = None      # QEMU's CPU time: the boot's cost on an idle core
    first_result_cpu_s: float | None = None


@dataclass
class KernelRun:
    label: str
    release: str = ""
    origin: str = ""
    accel: str = ""
    outcome: RunOutcome = RunOutcome.OK
    reason: str = ""
    cases: dict[str, CaseResult] = field(default_factory=dict)
    kernel_splats: list[str] = field(default_factory=list)   # splats outside any case
    boots: list[BootRecord] = field(default_factory=list)
    hello: dict | None = None
    probe: dict | None = None
    total_s: float = 0.0

    def counts(self) -> dict[str, int]:
        out = {o.value: 0 for o in CaseOutcome}
        for case in self.cases.values():
            out[case.outcome.value] += 1
        return out

    @property
    def first_result_s(self) -> float | None:
        return self.boots[0].first_result_s if self.boots else None

    def to_json(self) -> dict:
        data = asdict(self)
        data["outcome"] = self.outcome.value
        data["cases"] = [dict(asdict(c), outcome=c.outcome.value) for c in self.cases.values()]
        data["counts"] = self.counts()
        data["first_result_s"] = self.first_result_s
        return data

    @classmethod
    def from_json(cls, data: dict) -> "KernelRun":
        run = cls(label=data["label"])
        for key in ("release", "origin", "accel", "reason", "kernel_splats", "hello", "probe", "total_s"):
            setattr(run, key, data.get(key, getattr(run, key)))
        run.outcome = RunOutcome(data.get("outcome", "ok"))
        run.boots = [BootRecord(**b) for b in data.get("boots", [])]
        for c in data.get("cases", []):
            run.cases[c["name"]] = CaseResult(**dict(c, outcome=CaseOutcome(c["outcome"])))
        return run


def overall(runs: list[KernelRun]) -> RunOutcome:
    return worst(r.outcome for r in runs)


def results_json(runs: list[KernelRun]) -> dict:
    return {"version": 1, "outcome": overall(runs).value, "kernels": [r.to_json() for r in runs]}


def runs_from_json(data: dict) -> list[KernelRun]:
    return [KernelRun.from_json(k) for k in data.get("kernels", [])]
