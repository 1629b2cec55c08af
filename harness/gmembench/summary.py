"""One run's figures as tables: populate bandwidth per backend and path (with the ratio to the
bound), the demand-paging rate per vCPU count in the shape of the upstream demand_paging_test's
output, and conversion times. Skipped paths are listed with their reasons."""
from .results import BenchRun


def _spread(b) -> str:
    """(max - min) / median over the repetitions: the noise band compare uses for this side."""
    return "-" if b.rel_range is None else f"{b.rel_range * 100:.0f}%"


def populate_table(run: BenchRun) -> str:
    bound = run.get("populate/anon/memcpy_prefaulted")
    bound_mibs = bound.median if bound and bound.ran else None
    mib = run.context.get("gmembench.populate_mib", "?")
    lines = [f"Populating {mib} MiB (median of repetitions; spread = (max - min) / median; of bound = MiB/s "
             f"over plain memcpy into faulted-in anonymous memory{f', {bound_mibs:,.0f} MiB/s' if bound_mibs else ''})",
             "",
             "| backend | path | MiB/s | spread | of bound | ms per populate | note |", "|---|---|---|---|---|---|---|"]
    for name, b in run.benches.items():
        if not name.startswith("populate/") or not b.ran:
            continue
        _, backend, path = name.split("/", 2)
        ms = float(mib) / b.median * 1000 if str(mib).isdigit() and b.median else None
        of_bound = f"{b.median / bound_mibs:.2f}" if bound_mibs else "-"
        lines.append(f"| {backend} | {path} | {b.median:,.0f} | {_spread(b)} | {of_bound} | "
                     f"{'-' if ms is None else f'{ms:,.1f}'} | {b.label} |")
    return "\n".join(lines) + "\n"


def paging_modes(run: BenchRun) -> list[str]:
    modes: list[str] = []
    for name in run.benches:
        if name.startswith("demand_paging/"):
            mode = name.split("/")[1]
            if mode not in modes:
                modes.append(mode)
    return modes


def paging_table(run: BenchRun) -> str:
    """Per mode and vCPU count, what demand_paging_test prints: the guest execution time, the
    per-vCPU demand paging rate and the overall rate."""
    mib = run.context.get("gmembench.paging_mib_per_vcpu", "?")
    lines = [f"Demand paging, {mib} MiB (4 KiB pages) per vCPU, one userfaultfd and handler thread per vCPU", "",
             "| mode | vCPUs | guest execution time | per-vCPU demand paging rate | overall demand paging rate "
             "| uffd faults/page |", "|---|---|---|---|---|---|"]
    for mode in paging_modes(run):
        for name, b in run.benches.items():
            if not name.startswith(f"demand_paging/{mode}/") or not b.ran:
                continue
            c = b.counters
            vcpus = int(c.get("vcpus") or name.rsplit(":", 1)[1])
            # As demand_paging_test defines them: overall = per-vCPU rate x vCPUs, per-vCPU rate =
            # pages per vCPU / execution time; from the median overall rate.
            per_vcpu = b.median / vcpus
            seconds = c.get("pages_per_vcpu", 0) / per_vcpu if per_vcpu else 0
            faults = c.get("uffd_faults_per_page")
            lines.append(f"| {mode} | {vcpus} | {seconds:.3f}s | {per_vcpu:,.0f} pgs/sec/vcpu | "
                         f"{b.median:,.0f} pgs/sec (spread {_spread(b)}) | {'-' if faults is None else f'{faults:.2f}'} |")
    return "\n".join(lines) + "\n"


def conversion_table(run: BenchRun) -> str:
    lines = ["Conversions (time per conversion, median)", "", "| conversion | µs | spread |", "|---|---|---|"]
    for name, b in run.benches.items():
        if name.startswith("conversion/") and b.ran:
            lines.append(f"| {name[len('conversion/'):]} | {b.median * 1e6:,.1f} | {_spread(b)} |")
    return "\n".join(lines) + "\n"


def not_run(run: BenchRun) -> str:
    lines = ["Not measured on this kernel", ""]
    for name, b in run.benches.items():
        if b.skip:
            lines.append(f"- {name}: skipped: {b.skip}")
        elif b.error:
            lines.append(f"- {name}: ERROR: {b.error}")
    return "\n".join(lines) + "\n" if len(lines) > 2 else ""


def report(run: BenchRun) -> str:
    head = f"gmemtest_bench on {run.kernel}\n\n"
    parts = [populate_table(run), paging_table(run)]
    if any(n.startswith("conversion/") and b.ran for n, b in run.benches.items()):
        parts.append(conversion_table(run))
    parts.append(not_run(run))
    return head + "\n".join(p for p in parts if p)
