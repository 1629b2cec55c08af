#pragma once

// What every gmemtest_bench benchmark shares: the command-line options, skipping with a reason,
// timing, and the source data a populate copies from.

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fixtures/features.h"
#include "fixtures/mapping.h"
#include "fixtures/result.h"

namespace gmembench {

inline constexpr size_t kMiB = size_t{1} << 20;

struct Options {
  size_t populate_mib = 256;            // --gmembench_mib
  std::vector<int> vcpus = {1, 2, 4, 8};  // --gmembench_vcpus
  size_t paging_mib_per_vcpu = 64;      // --gmembench_paging_mib
  size_t conversion_huge_mib = 2;       // --gmembench_conversion_mib
  int iterations = 3;                   // --gmembench_iterations (0: Google Benchmark decides)
};

// The options given on the command line (set once by main before registration).
Options& MutableOptions();
inline const Options& GetOptions() { return MutableOptions(); }

// Fixed iteration count (from the options) and manual timing: every benchmark times only the
// operation it is named after, never its set-up or tear-down.
benchmark::internal::Benchmark* Configure(benchmark::internal::Benchmark* b);

// Ends the benchmark without a measurement. Skips carry the reason (usually the probe's own
// text); errors are unexpected failures. JSON consumers tell them apart by the prefix.
inline constexpr const char* kSkipPrefix = "SKIP: ";
inline constexpr const char* kErrorPrefix = "ERROR: ";
void Skip(benchmark::State& state, const std::string& reason);
void Fail(benchmark::State& state, const std::string& what);
inline void Fail(benchmark::State& state, const gmem::Error& error) { Fail(state, error.message()); }
// Skips when the probe did not find `feature` present; returns whether it skipped.
bool SkipUnlessFeature(benchmark::State& state, const std::string& feature);

class Stopwatch {
 public:
  Stopwatch() : start_(std::chrono::steady_clock::now()) {}
  double Seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  std::chrono::steady_clock::time_point start_;
};

// Anonymous memory of `length` bytes, faulted in and filled with a non-zero pattern (so no
// populate path can shortcut through the zero page).
gmem::Result<gmem::Mapping> PatternBuffer(size_t length);

// Reads one byte of every `page` bytes of [addr, addr + length), taking each page's fault.
void TouchPages(const void* addr, size_t length, size_t page);

// Name of the running kernel (uname -r).
std::string KernelRelease();

}  // namespace gmembench
