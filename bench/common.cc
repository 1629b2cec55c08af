#include "bench/common.h"

#include <sys/utsname.h>

#include <cstring>

#include "fixtures/probe.h"

namespace gmembench {

Options& MutableOptions() {
  static Options options;
  return options;
}

benchmark::internal::Benchmark* Configure(benchmark::internal::Benchmark* b) {
  b->UseManualTime()->Unit(benchmark::kMillisecond);
  if (GetOptions().iterations > 0) b->Iterations(GetOptions().iterations);
  return b;
}

void Skip(benchmark::State& state, const std::string& reason) {
  state.SkipWithError((kSkipPrefix + reason).c_str());
}

void Fail(benchmark::State& state, const std::string& what) {
  state.SkipWithError((kErrorPrefix + what).c_str());
}

bool SkipUnlessFeature(benchmark::State& state, const std::string& feature) {
  auto missing = gmem::ProbedFeatures().Why(feature);
  if (!missing) return false;
  if (missing->broken)
    Fail(state, missing->text);
  else
    Skip(state, missing->text);
  return true;
}

gmem::Result<gmem::Mapping> PatternBuffer(size_t length) {
  auto buffer = gmem::MapAnonymous(length);
  if (!buffer.ok()) return buffer;
  uint8_t* bytes = buffer.value().bytes();
  for (size_t i = 0; i < length; i += sizeof(uint64_t)) {
    uint64_t word = 0x5a5a5a5a00000000ULL | (i / 4096);
    std::memcpy(bytes + i, &word, sizeof word);
  }
  return buffer;
}

void TouchPages(const void* addr, size_t length, size_t page) {
  const volatile uint8_t* bytes = static_cast<const volatile uint8_t*>(addr);
  for (size_t off = 0; off < length; off += page) (void)bytes[off];
}

std::string KernelRelease() {
  utsname u{};
  return uname(&u) == 0 ? u.release : "unknown";
}

}  // namespace gmembench
