"""Comparing two kernels' runs: the ratio of each benchmark's median, and a verdict that calls a
change a regression (or an improvement) only when it lies beyond the noise band, the larger of the
two kernels' own run-to-run spread over --benchmark_repetitions and a floor."""
from dataclasses import asdict, dataclass

from .results import Bench, BenchRun

DEFAULT_FLOOR = 0.05          # changes within 5% are never called, however quiet the runs were
DEFAULT_UNKNOWN_BAND = 0.15   # the band when a side has a single value (no repetitions)

REGRESSION, IMPROVEMENT, NOISE = "regression", "improvement", "within noise"
SKIPPED, LOST, GAINED, ERROR = "skipped", "lost", "gained", "error"


@dataclass
class Row:
    name: str
    unit: str
    higher_is_better: bool
    base: float | None
    new: float | None
    ratio: float | None        # new / base of the figure of merit
    speedup: float | None      # > 1: the new kernel is faster (ratio, or 1/ratio for times)
    band: float | None         # relative noise band used
    base_spread: float | None
    new_spread: float | None
    verdict: str
    note: str = ""


def noise_band(base: Bench, new: Bench, floor: float = DEFAULT_FLOOR,
               unknown: float = DEFAULT_UNKNOWN_BAND) -> float:
    """The relative change repeated runs alone can produce: the larger relative range of the two
    sides' repetitions, at least `floor`; `unknown` stands in for a side without repetitions."""
    spreads = [b.rel_range if b.rel_range is not None else unknown for b in (base, new)]
    return max([floor] + spreads)


def compare_bench(base: Bench | None, new: Bench | None, floor: float = DEFAULT_FLOOR,
                  unknown: float = DEFAULT_UNKNOWN_BAND) -> Row:
    some = new or base
    row = Row(some.name, some.metric.unit, some.metric.higher_is_better, None, None, None, None, None,
              None, None, SKIPPED)
    if (base and base.error) or (new and new.error):
        row.verdict = ERROR
        row.note = "; ".join(f"{side}: {b.error}" for side, b in (("base", base), ("new", new)) if b and b.error)
        return row
    base_ran, new_ran = bool(base and base.ran), bool(new and new.ran)
    if base_ran:
        row.base, row.base_spread = base.median, base.rel_range
    if new_ran:
        row.new, row.new_spread = new.median, new.rel_range
    if not base_ran or not new_ran:
        why = [f"{side}: {b.skip if b and b.skip else 'not run'}"
               for side, b, ran in (("base", base, base_ran), ("new", new, new_ran)) if not ran]
        row.verdict = LOST if base_ran else GAINED if new_ran else SKIPPED
        row.note = "; ".join(why)
        return row
    row.ratio = row.new / row.base if row.base else None
    if row.ratio is None or row.ratio == 0:
        row.verdict, row.note = ERROR, "zero measurement"
        return row
    row.speedup = row.ratio if row.higher_is_better else 1 / row.ratio
    row.band = noise_band(base, new, floor, unknown)
    if row.speedup < 1 - row.band:
        row.verdict = REGRESSION
    elif row.speedup > 1 + row.band:
        row.verdict = IMPROVEMENT
    else:
        row.verdict = NOISE
    return row


@dataclass
class Comparison:
    base: str
    new: str
    rows: list[Row]
    floor: float

    def count(self, verdict: str) -> int:
        return sum(r.verdict == verdict for r in self.rows)

    @property
    def regressions(self) -> list[Row]:
        return [r for r in self.rows if r.verdict == REGRESSION]

    def to_json(self) -> dict:
        verdicts = (REGRESSION, IMPROVEMENT, NOISE, LOST, GAINED, SKIPPED, ERROR)
        return {"base": self.base, "new": self.new, "noise_floor": self.floor,
                "summary": {v: self.count(v) for v in verdicts},
                "benchmarks": [asdict(r) for r in self.rows]}


def compare(base: BenchRun, new: BenchRun, floor: float = DEFAULT_FLOOR,
            unknown: float = DEFAULT_UNKNOWN_BAND) -> Comparison:
    names = list(base.benches) + [n for n in new.benches if n not in base.benches]
    rows = [compare_bench(base.get(n), new.get(n), floor, unknown) for n in names]
    return Comparison(base.label, new.label, rows, floor)


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"±{value * 100:.0f}%"


def table(c: Comparison) -> str:
    """A text table: one line per benchmark, then the verdict counts."""
    head = ["benchmark", "unit", c.base, c.new, "new/base", "speedup", "band", "verdict"]
    body = []
    for r in c.rows:
        verdict = r.verdict.upper() if r.verdict in (REGRESSION, ERROR) else r.verdict
        body.append([r.name, r.unit, _fmt(r.base), _fmt(r.new), _fmt(r.ratio), _fmt(r.speedup), _pct(r.band),
                     verdict + (f" ({r.note})" if r.note and r.verdict in (LOST, GAINED, ERROR) else "")])
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body)]
    # The verdict column is last and may be long: do not pad it.
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(row[:-1], widths)) + "  " + str(row[-1])
             for row in [head] + body]
    summary = ", ".join(f"{c.count(v)} {v}" for v in (REGRESSION, IMPROVEMENT, NOISE, LOST, GAINED, SKIPPED, ERROR)
                        if c.count(v))
    return "\n".join(lines + [f"{c.base} -> {c.new}: {summary} (noise floor {c.floor * 100:.0f}%)"]) + "\n"
