"""A PNG of the demand-paging rate against the vCPU count: one line per run and mode, and the
reference figures (1/8/64 vCPUs, before and after keeping faults off the slow GUP path) dashed.
Needs matplotlib (Debian: python3-matplotlib); everything else in gmembench is stdlib only."""
from pathlib import Path

from .reference import PAGING_KPPS
from .results import BenchRun
from .summary import paging_modes

REFERENCE_CURVES = {
    "reference: uffd via the slow GUP path": {n: b * 1e3 for n, (b, _) in PAGING_KPPS.items()},
    "reference: faults kept off the slow GUP path": {n: a * 1e3 for n, (_, a) in PAGING_KPPS.items()},
}


def series(run: BenchRun) -> dict[str, list[tuple[int, float]]]:
    """mode -> [(vCPUs, overall pages/s)] of the benchmarks that ran, by vCPU count."""
    out: dict[str, list[tuple[int, float]]] = {}
    for mode in paging_modes(run):
        points = []
        for name, b in run.benches.items():
            if name.startswith(f"demand_paging/{mode}/vcpus:") and b.ran:
                points.append((int(name.rsplit(":", 1)[1]), b.median))
        if points:
            out[mode] = sorted(points)
    return out


def plot(runs: list[BenchRun], out: Path, reference: bool = True) -> Path:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise RuntimeError("plotting needs matplotlib: apt-get install python3-matplotlib") from e
    from matplotlib.ticker import ScalarFormatter
    fig, ax = plt.subplots(figsize=(11, 5))
    ticks: set[int] = set()
    colors: dict[str, str] = {}
    styles = ["-", "-.", ":", (0, (5, 1))]
    for i, run in enumerate(runs):
        for mode, points in series(run).items():
            xs, ys = zip(*points)
            ticks.update(xs)
            # One colour per mode, one line style per run, so two kernels' curves pair up.
            color = colors.setdefault(mode, f"C{len(colors) % 10}")
            label = mode if len(runs) == 1 else f"{run.label}: {mode}"
            ax.plot(xs, ys, marker="o", color=color, linestyle=styles[i % len(styles)], label=label)
    if reference:
        for label, curve in REFERENCE_CURVES.items():
            ax.plot(list(curve), list(curve.values()), linestyle="--", color="grey", marker="x", alpha=0.6,
                    label=label)
            ticks.update(curve)
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted(ticks))
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.set_yscale("log")
    ax.set_xlabel("vCPUs")
    ax.set_ylabel("overall demand paging rate (pages/s)")
    ax.set_title("Demand paging rate vs vCPU count")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
