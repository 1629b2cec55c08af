"""Google Benchmark JSON (--benchmark_format=json / --benchmark_out) as gmembench's records: one
per benchmark, with its repetitions' values of the benchmark's own figure of merit."""
import json
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path

SKIP_PREFIX = "SKIP: "
ERROR_PREFIX = "ERROR: "

# Google Benchmark appends these to names; they are options, not part of what was measured.
_OPTION_SUFFIX = re.compile(r"/(iterations|repeats|min_time|min_warmup_time|threads):[^/]+"
                            r"|/(manual_time|real_time|process_time)")

_TIME_UNIT_S = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}


def base_name(name: str) -> str:
    """'populate/memfd/pwrite/iterations:3/manual_time' -> 'populate/memfd/pwrite'."""
    return _OPTION_SUFFIX.sub("", name)


@dataclass(frozen=True)
class Metric:
    key: str            # where the value comes from: a counter name, or "seconds"
    unit: str
    higher_is_better: bool


def metric_for(name: str) -> Metric:
    """The figure of merit of a benchmark, by family."""
    if name.startswith("populate/"):
        return Metric("bytes_per_second", "MiB/s", True)
    if name.startswith("demand_paging/"):
        return Metric("pages_per_sec", "pages/s", True)
    return Metric("seconds", "s", False)


@dataclass
class Bench:
    name: str                          # base_name()
    metric: Metric
    samples: list[float] = field(default_factory=list)   # one per repetition, in metric units
    counters: dict[str, float] = field(default_factory=dict)  # of the last repetition
    label: str = ""
    skip: str | None = None            # why the path does not exist on this kernel
    error: str | None = None           # what went wrong
    aggregated: bool = False           # samples come from aggregates only (no spread known)
    spread_hint: float | None = None   # relative stddev from aggregates, when that is all there is

    @property
    def ran(self) -> bool:
        return bool(self.samples) and self.skip is None and self.error is None

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def rel_range(self) -> float | None:
        """(max - min) / median over the repetitions: the run-to-run noise of this benchmark on
        this kernel. None when a single value is all there is."""
        if self.spread_hint is not None:
            return self.spread_hint
        if len(self.samples) < 2 or self.median == 0:
            return None
        return (max(self.samples) - min(self.samples)) / abs(self.median)


@dataclass
class BenchRun:
    """One results file: a kernel's run of the benchmarks."""
    label: str
    context: dict
    benches: dict[str, Bench]

    @property
    def kernel(self) -> str:
        return str(self.context.get("gmembench.kernel", self.label))

    def get(self, name: str) -> Bench | None:
        return self.benches.get(name)


def _value(entry: dict, metric: Metric) -> float:
    if metric.key == "seconds":
        return float(entry["real_time"]) * _TIME_UNIT_S[entry.get("time_unit", "ns")]
    if metric.key == "bytes_per_second":
        return float(entry["bytes_per_second"]) / (1 << 20)
    return float(entry[metric.key])


_COUNTER_SKIP = {"name", "run_name", "run_type", "repetitions", "repetition_index", "threads", "iterations",
                 "real_time", "cpu_time", "time_unit", "family_index", "per_family_instance_index",
                 "aggregate_name", "aggregate_unit", "label", "error_occurred", "error_message"}


def parse(data: dict, label: str = "") -> BenchRun:
    """A BenchRun from the parsed JSON document."""
    context = dict(data.get("context", {}))
    benches: dict[str, Bench] = {}
    aggregates: dict[str, dict[str, dict]] = {}
    for entry in data.get("benchmarks", []):
        name = base_name(entry.get("run_name") or entry["name"])
        metric = metric_for(name)
        bench = benches.setdefault(name, Bench(name, metric))
        if entry.get("error_occurred"):
            message = entry.get("error_message", "")
            if message.startswith(SKIP_PREFIX):
                bench.skip = message[len(SKIP_PREFIX):]
            else:
                bench.error = message[len(ERROR_PREFIX):] if message.startswith(ERROR_PREFIX) else message
            continue
        if entry.get("run_type") == "aggregate":
            aggregates.setdefault(name, {})[entry.get("aggregate_name", "")] = entry
            continue
        bench.samples.append(_value(entry, metric))
        bench.label = entry.get("label", bench.label)
        bench.counters = {k: float(v) for k, v in entry.items()
                          if k not in _COUNTER_SKIP and isinstance(v, (int, float))}
    # --benchmark_report_aggregates_only: no repetitions, only their median/mean and stddev.
    for name, by_kind in aggregates.items():
        bench = benches[name]
        if bench.samples or bench.skip or bench.error:
            continue
        central = by_kind.get("median") or by_kind.get("mean")
        if central is None:
            continue
        bench.samples = [_value(central, bench.metric)]
        bench.aggregated = True
        bench.label = central.get("label", "")
        bench.counters = {k: float(v) for k, v in central.items()
                          if k not in _COUNTER_SKIP and isinstance(v, (int, float))}
        if "stddev" in by_kind and bench.samples[0]:
            bench.spread_hint = 2 * abs(_value(by_kind["stddev"], bench.metric)) / abs(bench.samples[0])
    return BenchRun(label or context.get("gmembench.kernel", ""), context, benches)


def merge(runs: list[BenchRun], label: str | None = None) -> BenchRun:
    """One kernel's runs (e.g. several boots) as one: every benchmark's samples from every run, so
    its spread covers the run-to-run noise too. A benchmark that failed anywhere keeps the error;
    one skipped everywhere keeps the first reason."""
    if not runs:
        raise ValueError("nothing to merge")
    merged: dict[str, Bench] = {}
    for run in runs:
        for name, b in run.benches.items():
            m = merged.setdefault(name, Bench(name, b.metric))
            m.samples += b.samples if b.ran else []
            m.error = m.error or b.error
            m.skip = m.skip or b.skip
            if b.ran:
                m.counters, m.label = b.counters, b.label
                m.aggregated = m.aggregated or b.aggregated
    for m in merged.values():
        if m.samples and not m.error:
            m.skip = None
    return BenchRun(label or runs[0].label, runs[0].context, merged)


def extract_json(text: str) -> dict:
    """The benchmark document inside `text`, which may hold other JSON lines around it (a VM's
    result port carries the harness's own events before and after)."""
    decoder = json.JSONDecoder()
    pos = 0
    while (start := text.find("{", pos)) >= 0:
        try:
            obj, end = decoder.raw_decode(text, start)
        except ValueError:
            pos = start + 1
            continue
        if isinstance(obj, dict) and "benchmarks" in obj:
            return obj
        pos = end
    raise ValueError("no Google Benchmark JSON document (an object with 'benchmarks') found")


def load(path: Path, label: str | None = None) -> BenchRun:
    text = Path(path).read_text()
    return parse(extract_json(text), label or "")
