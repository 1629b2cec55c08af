"""The figures the kernel discussions argue from (issue 6), as ratios, beside the same ratios
measured in one run, and whether the direction (which side is faster) agrees."""
from dataclasses import asdict, dataclass

from .results import BenchRun

# A ratio within this of 1 has no direction ("flat").
FLAT = 0.05


@dataclass(frozen=True)
class Reference:
    key: str
    figure: str          # what the ratio is
    ref_values: str      # the reference's own numbers
    ref_ratio: float
    source: str


REFERENCES = [
    Reference("write_vs_memcpy_3g", "populate: time of write() / time of memcpy through mmap",
              "3 GiB guest_memfd: 980 ms / 2140 ms", 980 / 2140, "issue 6 (discussion figures)"),
    Reference("write_vs_memcpy_512m", "populate: time of write() / time of memcpy through mmap",
              "512 MiB guest_memfd: 202 ms / 436 ms", 202 / 436,
              "[PATCH v7 0/2] guest_memfd write cover (series-uffd-write-directmap.md §2.4)"),
    Reference("fault_share", "populate: share of memcpy-through-mmap time beyond the copy itself",
              "about 63% in the fault handler (3 GiB guest_memfd)", 0.63, "issue 6"),
    Reference("write_vs_uffd_copy", "populate: time of write() / time of UFFDIO_COPY",
              "512 MiB: 202 ms / 237 ms", 202 / 237, "issue 6"),
]

# Issue 6: the paging rate (thousand pages/s) at 1/8/64 vCPUs went from the first figure (uffd
# faults through the slow GUP path) to the second (faults kept off it).
PAGING_KPPS = {1: (150, 340), 8: (155, 1239), 64: (86, 3482)}
_STAGE = {"before": (0, "demand paging through uffd (slow GUP path)"),
          "after": (1, "demand paging off the slow GUP path")}
REFERENCES += [
    Reference(f"paging_after_before_{n}", f"demand paging at {n} vCPU{'s' * (n > 1)}: rate without / with the slow "
              f"GUP path", f"{after}k / {before}k pages/s", after / before, "issue 6")
    for n, (before, after) in PAGING_KPPS.items()]
REFERENCES += [
    Reference(f"paging_scaling_{stage}_{n}", f"{what}: rate at {n} vCPUs / at 1",
              f"{PAGING_KPPS[n][i]}k / {PAGING_KPPS[1][i]}k pages/s", PAGING_KPPS[n][i] / PAGING_KPPS[1][i], "issue 6")
    for stage, (i, what) in _STAGE.items() for n in (8, 64)]


@dataclass
class Row:
    key: str
    figure: str
    ref_values: str
    ref_ratio: float
    measured_values: str
    measured_ratio: float | None
    direction: str       # "same", "DIFFERS", "n/a"
    basis: str           # which benchmarks (and backend) the measurement comes from
    source: str


def side(ratio: float, pivot: float = 1.0) -> int:
    if ratio > pivot * (1 + FLAT):
        return 1
    if ratio < pivot * (1 - FLAT):
        return -1
    return 0


def direction(ref: float, measured: float | None, pivot: float = 1.0) -> str:
    if measured is None:
        return "n/a"
    return "same" if side(ref, pivot) == side(measured, pivot) else "DIFFERS"


def _median(run: BenchRun, name: str) -> float | None:
    b = run.get(name)
    return b.median if b and b.ran else None


def _why_not(run: BenchRun, *names: str) -> str:
    for n in names:
        b = run.get(n)
        if b is None:
            return f"{n} not in this run"
        if b.skip:
            return f"{n} skipped: {b.skip}"
        if b.error:
            return f"{n} failed: {b.error}"
    return ""


def _pair(run: BenchRun, ref: Reference, x: str, y: str, basis: str, ratio_of, values_of, pivot: float = 1.0) -> Row:
    """A row from the medians of benchmarks x and y: ratio_of(x, y) beside the reference, or why
    one of them has no value."""
    vx, vy = _median(run, x), _median(run, y)
    if vx is None or vy is None:
        return Row(ref.key, ref.figure, ref.ref_values, ref.ref_ratio, _why_not(run, x, y), None, "n/a", basis,
                   ref.source)
    ratio = ratio_of(vx, vy)
    return Row(ref.key, ref.figure, ref.ref_values, ref.ref_ratio, values_of(vx, vy), ratio,
               direction(ref.ref_ratio, ratio, pivot), basis, ref.source)


def _time_ratio(run: BenchRun, ref: Reference, x: str, y: str, basis: str) -> Row:
    """Time of populate path x over time of path y, from their MiB/s."""
    return _pair(run, ref, x, y, basis, lambda bx, by: by / bx,
                 lambda bx, by: f"{x.split('/')[-1]} {bx:,.0f} MiB/s vs {y.split('/')[-1]} {by:,.0f} MiB/s")


def _rate_ratio(run: BenchRun, ref: Reference, x: str, y: str, basis: str) -> Row:
    return _pair(run, ref, x, y, basis, lambda rx, ry: rx / ry,
                 lambda rx, ry: f"{rx / 1000:,.1f}k / {ry / 1000:,.1f}k pages/s")


def _fault_share(run: BenchRun, ref: Reference, backend: str, basis: str) -> Row:
    """1 - (memcpy-through-mmap bandwidth / plain memcpy bandwidth): the share of the populate's
    time that is not the copy (faults, allocation, zeroing). Compared against 50%."""
    return _pair(run, ref, f"populate/{backend}/memcpy_fault", "populate/anon/memcpy_prefaulted",
                 basis + " (share vs 50%)", lambda fault, bound: 1 - fault / bound,
                 lambda fault, bound: f"memcpy_fault {fault:,.0f} MiB/s vs bound {bound:,.0f} MiB/s", pivot=0.5)


def rows(run: BenchRun) -> list[Row]:
    refs = {r.key: r for r in REFERENCES}
    out: list[Row] = []
    for key in ("write_vs_memcpy_3g", "write_vs_memcpy_512m"):
        out.append(_time_ratio(run, refs[key], "populate/guest_memfd_write/pwrite", "populate/guest_memfd/memcpy_fault",
                               "guest_memfd (GUEST_MEMFD_FLAG_WRITE)"))
        out.append(_time_ratio(run, refs[key], "populate/memfd/pwrite", "populate/memfd/memcpy_fault",
                               "memfd/shmem stand-in"))
    out.append(_fault_share(run, refs["fault_share"], "guest_memfd", "guest_memfd"))
    out.append(_fault_share(run, refs["fault_share"], "memfd", "memfd/shmem stand-in"))
    ref = refs["write_vs_uffd_copy"]
    out.append(_time_ratio(run, ref, "populate/guest_memfd_write/pwrite", "populate/guest_memfd/uffd_missing_copy",
                           "guest_memfd (write series + uffd series)"))
    out.append(_time_ratio(run, ref, "populate/memfd/pwrite", "populate/memfd/uffd_missing_copy",
                           "memfd/shmem stand-in, UFFDIO_COPY on MISSING faults"))
    out.append(_time_ratio(run, ref, "populate/memfd/pwrite", "populate/memfd/uffdio_copy_nofault",
                           "memfd/shmem stand-in, UFFDIO_COPY without faults"))

    before, after, bound = "anon_uffd_missing", "anon_kvm_userfault", "anon_no_uffd"
    for n in (1, 8, 64):
        ref = refs[f"paging_after_before_{n}"]
        out.append(_rate_ratio(run, ref, f"demand_paging/{after}/vcpus:{n}", f"demand_paging/{before}/vcpus:{n}",
                               f"{after} / {before}"))
        out.append(_rate_ratio(run, ref, f"demand_paging/{bound}/vcpus:{n}", f"demand_paging/{before}/vcpus:{n}",
                               f"stand-in: {bound} (kernel resolves) / {before}"))
    for stage, mode, basis in (("before", before, before), ("after", after, after),
                               ("after", bound, f"stand-in: {bound}")):
        for n in (8, 64):
            out.append(_rate_ratio(run, refs[f"paging_scaling_{stage}_{n}"], f"demand_paging/{mode}/vcpus:{n}",
                                   f"demand_paging/{mode}/vcpus:1", basis))
    return out


def to_json(run: BenchRun) -> list[dict]:
    return [asdict(r) for r in rows(run)]


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def table(run: BenchRun) -> str:
    """A markdown table of rows(), then the rows whose direction differs."""
    all_rows = rows(run)
    lines = [f"Reference figures beside run {run.label} (ratios as the reference states them; "
             f"direction: whether both sides of 1 agree, within {FLAT * 100:.0f}%)", "",
             "| figure | reference | ref ratio | measured here | ratio here | direction | basis |",
             "|---|---|---|---|---|---|---|"]
    for r in all_rows:
        here = "-" if r.measured_ratio is None else f"{r.measured_ratio:.2f}"
        lines.append(f"| {_cell(r.figure)} | {_cell(r.ref_values)} | {r.ref_ratio:.2f} | {_cell(r.measured_values)} "
                     f"| {here} | {r.direction} | {_cell(r.basis)} |")
    differs = [r for r in all_rows if r.direction == "DIFFERS"]
    lines.append("")
    if differs:
        lines.append("Direction differs from the reference:")
        lines += [f"- {r.figure} [{r.basis}]: reference {r.ref_ratio:.2f}, here {r.measured_ratio:.2f}"
                  for r in differs]
    else:
        lines.append("No measured ratio points the other way from the reference.")
    return "\n".join(lines) + "\n"
