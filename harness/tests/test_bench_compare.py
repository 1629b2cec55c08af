"""gmembench, on synthetic Google Benchmark JSON: parsing, the noise band and regression verdicts,
the ratio tables (comparison, reference figures, upstream-shaped paging table), the plot and the
VM result-port parsing. No QEMU, no benchmark binary."""
import json

import pytest

from gmembench import cli, compare, reference, results, summary, vmrun
from gmembench.results import Bench, Metric

MIB = 1 << 20


def entry(name, value, rep=0, reps=1, **counters):
    """One repetition of a benchmark as Google Benchmark 1.7 writes it. `value` is MiB/s for
    populate/*, pages/s for demand_paging/*, milliseconds per iteration otherwise."""
    e = {"name": f"{name}/iterations:3/manual_time", "run_name": f"{name}/iterations:3/manual_time",
         "run_type": "iteration", "repetitions": reps, "repetition_index": rep, "threads": 1, "iterations": 3,
         "real_time": 1.0, "cpu_time": 0.5, "time_unit": "ms"}
    if name.startswith("populate/"):
        e["bytes_per_second"] = value * MIB
        e["real_time"] = 256 / value * 1000
    elif name.startswith("demand_paging/"):
        e["pages_per_sec"] = value
    else:
        e["real_time"] = value
    e.update(counters)
    return e


def repeated(name, values, **counters):
    return [entry(name, v, i, len(values), **counters) for i, v in enumerate(values)]


def skipped(name, reason, prefix=results.SKIP_PREFIX):
    return {"name": f"{name}/iterations:3/manual_time", "run_name": f"{name}/iterations:3/manual_time",
            "run_type": "iteration", "error_occurred": True, "error_message": prefix + reason,
            "iterations": 0, "real_time": 0, "cpu_time": 0, "time_unit": "ms"}


def doc(*entries, kernel="7.3.4-test", **context):
    ctx = {"gmembench.kernel": kernel, "gmembench.populate_mib": "256", "gmembench.paging_mib_per_vcpu": "64"}
    ctx.update(context)
    flat = []
    for e in entries:
        flat.extend(e if isinstance(e, list) else [e])
    return {"context": ctx, "benchmarks": flat}


def run_of(*entries, kernel="7.3.4-test"):
    return results.parse(doc(*entries, kernel=kernel))


# ---- parsing ----

def test_base_name_drops_google_benchmark_options():
    assert results.base_name("populate/memfd/pwrite/iterations:3/manual_time") == "populate/memfd/pwrite"
    assert results.base_name("demand_paging/anon_no_uffd/vcpus:4/iterations:3/manual_time") == \
        "demand_paging/anon_no_uffd/vcpus:4"
    assert results.base_name("conversion/x/repeats:5/real_time") == "conversion/x"


def test_each_family_has_its_figure_of_merit():
    assert results.metric_for("populate/memfd/pwrite") == Metric("bytes_per_second", "MiB/s", True)
    assert results.metric_for("demand_paging/anon_no_uffd/vcpus:1").key == "pages_per_sec"
    assert results.metric_for("conversion/vm_attributes/to_private/4KiB").higher_is_better is False


def test_parse_collects_repetitions_counters_skips_and_errors():
    run = run_of(repeated("populate/memfd/pwrite", [600, 620, 610], of_bound=0.1),
                 skipped("populate/guest_memfd/pwrite", "pwrite(...) = -1 ESPIPE"),
                 skipped("populate/memfd/uffd_missing_copy", "UFFDIO_COPY(...) = -1 EIO", results.ERROR_PREFIX),
                 entry("conversion/vm_attributes/to_private/4KiB", 0.02))
    pwrite = run.get("populate/memfd/pwrite")
    assert pwrite.samples == pytest.approx([600, 620, 610])
    assert pwrite.median == pytest.approx(610)
    assert pwrite.counters["of_bound"] == pytest.approx(0.1)
    assert pwrite.rel_range == pytest.approx(20 / 610)
    gmem = run.get("populate/guest_memfd/pwrite")
    assert not gmem.ran and gmem.skip == "pwrite(...) = -1 ESPIPE"
    assert run.get("populate/memfd/uffd_missing_copy").error == "UFFDIO_COPY(...) = -1 EIO"
    assert run.get("conversion/vm_attributes/to_private/4KiB").median == pytest.approx(20e-6)
    assert run.kernel == "7.3.4-test"


def test_parse_falls_back_to_aggregates_with_stddev_as_the_spread():
    med = entry("populate/memfd/pwrite", 500)
    med.update(run_type="aggregate", aggregate_name="median", name="populate/memfd/pwrite_median")
    sd = entry("populate/memfd/pwrite", 25)
    sd.update(run_type="aggregate", aggregate_name="stddev", name="populate/memfd/pwrite_stddev")
    bench = run_of(med, sd).get("populate/memfd/pwrite")
    assert bench.aggregated and bench.median == pytest.approx(500)
    assert bench.rel_range == pytest.approx(0.1)


def test_a_single_value_has_no_measured_spread():
    assert run_of(entry("populate/memfd/pwrite", 500)).get("populate/memfd/pwrite").rel_range is None


def test_extract_json_finds_the_document_between_harness_events():
    document = json.dumps(doc(entry("populate/memfd/pwrite", 500)), indent=2)
    text = ('{"event":"harness-boot","kernel":"7.3","failed_modules":""}\n' + document +
            '\n{"event":"harness-exit","status":0}\n')
    assert results.extract_json(text)["benchmarks"][0]["run_name"].startswith("populate/memfd/pwrite")
    with pytest.raises(ValueError):
        results.extract_json('{"event":"harness-boot"}\n{"broken": ')


# ---- the noise band and verdicts ----

def bench(name, values, skip=None, error=None):
    b = Bench(name, results.metric_for(name), list(values))
    b.skip, b.error = skip, error
    return b


def test_noise_band_is_the_larger_spread_but_never_below_the_floor():
    quiet, noisy = bench("populate/a/b", [100, 101, 100]), bench("populate/a/b", [80, 100, 120])
    assert compare.noise_band(quiet, quiet, floor=0.05) == pytest.approx(0.05)
    assert compare.noise_band(quiet, noisy, floor=0.05) == pytest.approx(0.4)
    single = bench("populate/a/b", [100])
    assert compare.noise_band(single, quiet, floor=0.05, unknown=0.15) == pytest.approx(0.15)


@pytest.mark.parametrize("new_values,verdict", [
    ([80, 81, 80], compare.REGRESSION),    # 20% slower, runs agree within 1%
    ([92, 92, 92], compare.REGRESSION),    # 8% slower: beyond the 5% floor, which is the band here
    ([97, 98, 97], compare.NOISE),         # 3% slower: under the 5% floor
    ([125, 126, 125], compare.IMPROVEMENT),
])
def test_throughput_verdicts_against_a_quiet_base(new_values, verdict):
    row = compare.compare_bench(bench("populate/memfd/pwrite", [100, 101, 100]),
                                bench("populate/memfd/pwrite", new_values))
    assert row.verdict == verdict
    assert row.ratio == pytest.approx(new_values[1] / 100, rel=0.02)


def test_a_drop_inside_the_measured_noise_is_not_a_regression():
    # The base's own repetitions vary by 30%; a 15% drop is inside that.
    row = compare.compare_bench(bench("populate/memfd/pwrite", [85, 100, 115]),
                                bench("populate/memfd/pwrite", [85, 86, 85]))
    assert row.verdict == compare.NOISE
    assert row.band == pytest.approx(0.3)
    # The same drop against quiet runs is one.
    row = compare.compare_bench(bench("populate/memfd/pwrite", [100, 100, 101]),
                                bench("populate/memfd/pwrite", [85, 86, 85]))
    assert row.verdict == compare.REGRESSION


def test_for_times_lower_is_better():
    name = "conversion/vm_attributes/to_private/4KiB"
    slower = compare.compare_bench(bench(name, [10e-6, 10e-6]), bench(name, [20e-6, 20e-6]))
    assert slower.verdict == compare.REGRESSION
    assert slower.ratio == pytest.approx(2) and slower.speedup == pytest.approx(0.5)
    faster = compare.compare_bench(bench(name, [10e-6, 10e-6]), bench(name, [5e-6, 5e-6]))
    assert faster.verdict == compare.IMPROVEMENT


def test_paths_that_appear_disappear_or_fail_are_not_ratios():
    name = "populate/guest_memfd/pwrite"
    lost = compare.compare_bench(bench(name, [100]), bench(name, [], skip="ESPIPE"))
    assert lost.verdict == compare.LOST and "new: ESPIPE" in lost.note and lost.ratio is None
    gained = compare.compare_bench(bench(name, [], skip="ESPIPE"), bench(name, [100]))
    assert gained.verdict == compare.GAINED
    both = compare.compare_bench(bench(name, [], skip="a"), bench(name, [], skip="b"))
    assert both.verdict == compare.SKIPPED
    err = compare.compare_bench(bench(name, [100]), bench(name, [], error="EIO"))
    assert err.verdict == compare.ERROR and "EIO" in err.note
    only_base = compare.compare_bench(bench(name, [100]), None)
    assert only_base.verdict == compare.LOST and "not run" in only_base.note


def test_compare_runs_json_and_table():
    base = run_of(repeated("populate/memfd/pwrite", [600, 605, 600]),
                  repeated("demand_paging/anon_uffd_missing/vcpus:1", [20000, 20100, 20000]),
                  skipped("populate/guest_memfd/pwrite", "ESPIPE"), kernel="6.12")
    new = run_of(repeated("populate/memfd/pwrite", [300, 301, 300]),
                 repeated("demand_paging/anon_uffd_missing/vcpus:1", [20100, 20000, 20050]),
                 repeated("populate/guest_memfd/pwrite", [900, 905, 900]), kernel="7.3")
    c = compare.compare(base, new)
    data = c.to_json()
    assert data["base"] == "6.12" and data["new"] == "7.3"
    assert data["summary"][compare.REGRESSION] == 1
    assert data["summary"][compare.NOISE] == 1
    assert data["summary"][compare.GAINED] == 1
    by_name = {r["name"]: r for r in data["benchmarks"]}
    assert by_name["populate/memfd/pwrite"]["ratio"] == pytest.approx(0.5, rel=0.01)
    text = compare.table(c)
    assert "populate/memfd/pwrite" in text and "REGRESSION" in text
    assert "6.12 -> 7.3: 1 regression" in text


# ---- reference figures ----

def test_direction_agrees_differs_or_is_flat():
    assert reference.direction(0.46, 0.59) == "same"
    assert reference.direction(0.85, 1.72) == "DIFFERS"
    assert reference.direction(1.03, 1.40) == "DIFFERS"   # the reference is flat, here it scales
    assert reference.direction(1.03, 0.98) == "same"
    assert reference.direction(0.63, 0.91, pivot=0.5) == "same"
    assert reference.direction(2.0, None) == "n/a"


def reference_run():
    return run_of(entry("populate/anon/memcpy_prefaulted", 4000),
                  entry("populate/memfd/memcpy_fault", 400), entry("populate/memfd/pwrite", 800),
                  entry("populate/memfd/uffd_missing_copy", 100), entry("populate/memfd/uffdio_copy_nofault", 1600),
                  entry("populate/guest_memfd/memcpy_fault", 300),
                  skipped("populate/guest_memfd_write/pwrite", "gmem.flag.WRITE absent"),
                  entry("demand_paging/anon_uffd_missing/vcpus:1", 20000, vcpus=1),
                  entry("demand_paging/anon_uffd_missing/vcpus:8", 15000, vcpus=8),
                  entry("demand_paging/anon_no_uffd/vcpus:1", 60000, vcpus=1),
                  skipped("demand_paging/anon_kvm_userfault/vcpus:1", "KVM_MEM_USERFAULT has no value"))


def test_reference_rows_compute_the_same_ratios_and_directions():
    rows = reference.rows(reference_run())
    def find(key, basis_part):
        return next(r for r in rows if r.key == key and basis_part in r.basis)
    shmem = find("write_vs_memcpy_3g", "shmem")
    assert shmem.measured_ratio == pytest.approx(0.5) and shmem.direction == "same"   # 400/800
    gmem = find("write_vs_memcpy_3g", "GUEST_MEMFD_FLAG_WRITE")
    assert gmem.measured_ratio is None and gmem.direction == "n/a"
    assert "gmem.flag.WRITE absent" in gmem.measured_values
    nofault = find("write_vs_uffd_copy", "without faults")
    assert nofault.measured_ratio == pytest.approx(2.0) and nofault.direction == "DIFFERS"
    assert find("fault_share", "guest_memfd").measured_ratio == pytest.approx(1 - 300 / 4000)
    assert find("paging_after_before_1", "stand-in").measured_ratio == pytest.approx(3.0)
    assert "KVM_MEM_USERFAULT" in find("paging_after_before_1", "anon_kvm_userfault /").measured_values
    scaling = find("paging_scaling_before_8", "anon_uffd_missing")
    assert scaling.measured_ratio == pytest.approx(0.75) and scaling.direction == "DIFFERS"
    assert find("paging_scaling_before_64", "anon_uffd_missing").measured_values.endswith("not in this run")


def test_reference_table_lists_where_the_direction_differs():
    text = reference.table(reference_run())
    assert text.count("\n| ") >= 10
    assert "Direction differs from the reference:" in text
    assert "UFFDIO_COPY without faults" in text.split("Direction differs")[1]


# ---- one run's tables, the plot ----

def test_paging_table_has_the_upstream_test_columns():
    run = run_of(entry("demand_paging/anon_uffd_missing/vcpus:2", 30000, vcpus=2, pages_per_vcpu=16384,
                       pages_per_sec_per_vcpu=15000, uffd_faults_per_page=1.0))
    text = summary.paging_table(run)
    assert "per-vCPU demand paging rate" in text and "overall demand paging rate" in text
    assert "| anon_uffd_missing | 2 | 1.092s | 15,000 pgs/sec/vcpu | 30,000 pgs/sec" in text


def test_populate_table_gives_the_ratio_to_the_bound_and_report_lists_skips():
    run = reference_run()
    text = summary.populate_table(run)
    assert "| memfd | pwrite | 800 | - | 0.20 | 320.0 |" in text
    assert "populate/guest_memfd_write/pwrite: skipped: gmem.flag.WRITE absent" in summary.report(run)


def test_plot_series_and_png(tmp_path):
    from gmembench import plot
    run = run_of(entry("demand_paging/anon_no_uffd/vcpus:2", 90000), entry("demand_paging/anon_no_uffd/vcpus:1", 50000),
                 skipped("demand_paging/anon_kvm_userfault/vcpus:1", "absent"))
    assert plot.series(run) == {"anon_no_uffd": [(1, 50000), (2, 90000)]}
    pytest.importorskip("matplotlib")
    out = plot.plot([run], tmp_path / "paging.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ---- the command line and the VM result port ----

def test_cli_compare_writes_json_and_fails_on_regression_when_asked(tmp_path, capsys):
    base, new = tmp_path / "base.json", tmp_path / "new.json"
    base.write_text(json.dumps(doc(repeated("populate/memfd/pwrite", [600, 601, 600]), kernel="a")))
    new.write_text(json.dumps(doc(repeated("populate/memfd/pwrite", [300, 301, 300]), kernel="b")))
    out = tmp_path / "cmp.json"
    assert cli.main(["compare", str(base), str(new), "--json-out", str(out)]) == 0
    assert json.loads(out.read_text())["summary"]["regression"] == 1
    assert cli.main(["compare", str(base), str(new), "--fail-on-regression"]) == cli.EXIT_REGRESSION
    assert "REGRESSION" in capsys.readouterr().out


def test_vm_result_port_parsing():
    assert vmrun.guest_args(["--gmembench_mib=8"], "/dev/ttyS1") == [
        "--benchmark_out=/dev/ttyS1", "--benchmark_out_format=json", "--benchmark_color=false", "--gmembench_mib=8"]
    with pytest.raises(vmrun.VmRunError, match="no /dev/kvm"):
        vmrun.parse_stream('{"event":"harness-boot"}\n{"event":"harness-nokvm"}\n')
    with pytest.raises(vmrun.VmRunError, match="exited with status 2"):
        vmrun.parse_stream('{"event":"harness-boot"}\n{"event":"harness-exit","status":2}\n')
    with pytest.raises(vmrun.VmRunError, match="stopped before"):
        vmrun.parse_stream('{"event":"harness-boot"}\n{"context": {}, "benchm')
    good = json.dumps(doc(entry("populate/memfd/pwrite", 1)))
    assert vmrun.parse_stream('{"event":"harness-boot"}\n' + good)["benchmarks"]


def test_merge_pools_samples_of_several_boots():
    boot1 = run_of(repeated("populate/memfd/pwrite", [100, 102]), skipped("populate/guest_memfd/pwrite", "ESPIPE"))
    boot2 = run_of(repeated("populate/memfd/pwrite", [80, 81]), skipped("populate/guest_memfd/pwrite", "ESPIPE"))
    merged = results.merge([boot1, boot2], "7.3")
    pwrite = merged.get("populate/memfd/pwrite")
    assert sorted(pwrite.samples) == pytest.approx([80, 81, 100, 102])
    assert pwrite.rel_range == pytest.approx(22 / 90.5)   # boot-to-boot drift widens the band
    assert merged.get("populate/guest_memfd/pwrite").skip == "ESPIPE"
    assert merged.label == "7.3"


def test_cli_vm_alternates_kernels_pools_boots_and_compares(tmp_path, monkeypatch, capsys):
    """The vm command's orchestration with the VM replaced by canned result files."""
    binary = tmp_path / "gmemtest_bench"
    binary.write_bytes(b"\x7fELF")
    order = []
    rates = {"old": [[100, 101], [99, 100]], "new": [[50, 51], [50, 50]]}

    def fake_run(spec, opts, boot=1):
        order.append((spec, boot))
        out = opts.out_dir / spec / f"boot-{boot}" / "bench.json"
        out.parent.mkdir(parents=True)
        out.write_text(json.dumps(doc(repeated("populate/memfd/pwrite", rates[spec][boot - 1]), kernel=spec)))
        return vmrun.VmResult(spec, spec + ".0", "tcg", out, out.parent / "console.log", 1.0)

    monkeypatch.setattr(vmrun, "run_in_kernel", fake_run)
    code = cli.main(["vm", "old", "new", "--binary", str(binary), "--out", str(tmp_path / "out"), "--boots", "2",
                     "--fail-on-regression"])
    assert order == [("old", 1), ("new", 1), ("old", 2), ("new", 2)]
    assert code == cli.EXIT_REGRESSION
    data = json.loads((tmp_path / "out" / "compare.json").read_text())
    row = data["benchmarks"][0]
    assert row["verdict"] == "regression" and row["ratio"] == pytest.approx(0.5, rel=0.02)
    assert (tmp_path / "out" / "old" / "summary.md").read_text().startswith("gmemtest_bench on old")
    assert cli.main(["vm", "old", "old", "--binary", str(binary)]) == cli.EXIT_USAGE


def test_cli_summary_fails_only_when_a_benchmark_failed(tmp_path, capsys):
    ok, bad = tmp_path / "ok.json", tmp_path / "bad.json"
    ok.write_text(json.dumps(doc(entry("populate/memfd/pwrite", 500), skipped("populate/guest_memfd/pwrite", "ESPIPE"))))
    bad.write_text(json.dumps(doc(skipped("populate/memfd/pwrite", "pwrite(...) = -1 EIO", results.ERROR_PREFIX))))
    assert cli.main(["summary", str(ok)]) == 0
    assert cli.main(["summary", str(bad)]) == cli.EXIT_BENCH_ERROR
    assert "populate/memfd/pwrite: ERROR: pwrite(...) = -1 EIO" in capsys.readouterr().out


def test_cli_compare_pools_comma_separated_runs_of_one_kernel(tmp_path, capsys):
    files = {}
    for name, values in {"a1": [100, 101], "a2": [70, 71], "b1": [85, 86]}.items():
        files[name] = tmp_path / f"{name}.json"
        files[name].write_text(json.dumps(doc(repeated("populate/memfd/pwrite", values), kernel="k")))
    out = tmp_path / "cmp.json"
    # Against a1 alone, b1 is 15% slower: a regression. Pooled with a2 (the same kernel on a busier
    # machine), the base's own spread covers it.
    cli.main(["compare", str(files["a1"]), str(files["b1"]), "--json-out", str(out)])
    assert json.loads(out.read_text())["benchmarks"][0]["verdict"] == "regression"
    cli.main(["compare", f"{files['a1']},{files['a2']}", str(files["b1"]), "--json-out", str(out)])
    data = json.loads(out.read_text())
    assert data["benchmarks"][0]["verdict"] == "within noise"
    assert data["base"] == "k (a1.json,a2.json)" and data["new"] == "k (b1.json)"
