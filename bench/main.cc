// gmemtest_bench: Google Benchmark flags work as usual (--benchmark_filter, --benchmark_format=json,
// --benchmark_out=FILE, --benchmark_repetitions=N, ...). In addition:
//   --gmembench_mib=N             MiB each populate benchmark writes (default 256)
//   --gmembench_vcpus=1,2,4,8     vCPU counts of the demand-paging benchmarks
//   --gmembench_paging_mib=N      MiB of guest memory each vCPU touches (default 64)
//   --gmembench_conversion_mib=N  the huge range of the conversion benchmarks (default 2)
//   --gmembench_iterations=N      iterations per run (default 3; 0 lets Google Benchmark decide)
//   --series-profile=NAME         use series UAPI profile NAME for what the kernel headers lack
//                                 (as gmemtest; fixtures/series.h)
// Paths a kernel lacks are reported as errors whose message starts with "SKIP: " and gives the
// probe's reason; anything else that goes wrong starts with "ERROR: ".

#include <benchmark/benchmark.h>

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "bench/common.h"
#include "bench/registry.h"
#include "fixtures/probe.h"
#include "fixtures/series.h"

namespace {

const char* const kGroupOrder[] = {"populate", "demand_paging", "conversion"};

bool ParseSize(const std::string& text, size_t* out) {
  try {
    size_t used = 0;
    long v = std::stol(text, &used);
    if (used != text.size() || v <= 0) return false;
    *out = static_cast<size_t>(v);
    return true;
  } catch (...) {
    return false;
  }
}

bool ParseList(const std::string& text, std::vector<int>* out) {
  out->clear();
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    size_t v = 0;
    if (!ParseSize(text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos), &v))
      return false;
    out->push_back(static_cast<int>(v));
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return !out->empty();
}

// Consumes the --gmembench_* arguments; returns false (after printing why) on a bad one.
bool ParseOptions(int* argc, char** argv) {
  gmembench::Options& o = gmembench::MutableOptions();
  std::vector<std::string> series_profiles;
  int kept = 1;
  for (int i = 1; i < *argc; ++i) {
    std::string arg = argv[i];
    auto value = [&](const char* flag) -> const char* {
      size_t n = strlen(flag);
      return arg.compare(0, n, flag) == 0 ? argv[i] + n : nullptr;
    };
    bool ok = true;
    size_t iterations = 0;
    if (const char* v = value("--series-profile=")) series_profiles.push_back(v);
    else if (const char* v = value("--gmembench_mib=")) ok = ParseSize(v, &o.populate_mib);
    else if (const char* v = value("--gmembench_vcpus=")) ok = ParseList(v, &o.vcpus);
    else if (const char* v = value("--gmembench_paging_mib=")) ok = ParseSize(v, &o.paging_mib_per_vcpu);
    else if (const char* v = value("--gmembench_conversion_mib=")) ok = ParseSize(v, &o.conversion_huge_mib);
    else if (const char* v = value("--gmembench_iterations=")) {
      ok = std::string(v) == "0" || ParseSize(v, &iterations);
      o.iterations = static_cast<int>(iterations);
    } else if (arg.rfind("--gmembench_", 0) == 0) {
      ok = false;
    } else {
      argv[kept++] = argv[i];
      continue;
    }
    if (!ok) {
      std::fprintf(stderr, "gmemtest_bench: bad option '%s' (see the comment at the top of bench/main.cc)\n",
                   arg.c_str());
      return false;
    }
  }
  *argc = kept;
  argv[kept] = nullptr;
  gmem::series::SetCommandLineProfiles(series_profiles);
  if (const auto& selection = gmem::series::ActiveSelection(); !selection.errors().empty()) {
    std::fprintf(stderr, "gmemtest_bench: %s\n", selection.ErrorText().c_str());
    return false;
  }
  return true;
}

void AddContext() {
  const gmembench::Options& o = gmembench::GetOptions();
  const gmem::Features& f = gmem::ProbedFeatures();
  benchmark::AddCustomContext("gmembench.kernel", gmembench::KernelRelease());
  benchmark::AddCustomContext("gmembench.populate_mib", std::to_string(o.populate_mib));
  benchmark::AddCustomContext("gmembench.paging_mib_per_vcpu", std::to_string(o.paging_mib_per_vcpu));
  benchmark::AddCustomContext("gmembench.conversion_huge_mib", std::to_string(o.conversion_huge_mib));
  if (!f.headline.empty()) benchmark::AddCustomContext("gmembench.probe_headline", f.headline);
  if (const gmem::Feature* selection = f.Find("series.selection"))
    benchmark::AddCustomContext("gmembench.series_selection", selection->how);
  for (const char* name : {"kvm", "gmem", "gmem.flag.MMAP", "gmem.flag.INIT_SHARED", "vcpu.runs_guest_code",
                           "uffd", "uffd.memfd.MINOR", "uffd.guest_memfd.MISSING", "uffd.guest_memfd.MINOR",
                           "vm_type.SW_PROTECTED", "kvm.cap.MEMORY_ATTRIBUTES", "hugetlb.2M", "gmem.flag.WRITE",
                           "memslot.flag.USERFAULT", "gmem.ioctl.SET_MEMORY_ATTRIBUTES2"}) {
    const gmem::Feature* feature = f.Find(name);
    benchmark::AddCustomContext(std::string("gmembench.probe.") + name,
                                feature ? gmem::FeatureStateName(feature->state) : "not probed");
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (!ParseOptions(&argc, argv)) return 2;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;

  auto& groups = gmembench::Registration::All();
  std::stable_sort(groups.begin(), groups.end(), [](const auto& a, const auto& b) {
    auto rank = [](const std::string& g) {
      return std::find(std::begin(kGroupOrder), std::end(kGroupOrder), g) - std::begin(kGroupOrder);
    };
    return rank(a.first) < rank(b.first);
  });
  for (const auto& [name, fn] : groups) fn();
  AddContext();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
