#pragma once

// A userfaultfd handler thread: resolves every page fault reported on one userfaultfd, by
// UFFDIO_COPY (MISSING faults) or UFFDIO_CONTINUE (MINOR faults), until it is destroyed.
// This is the benchmarks' hot path, so it calls ioctl(2) directly instead of going through the
// fixtures' described calls (which format a message per call).

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "fixtures/fd.h"
#include "fixtures/result.h"

namespace gmembench {

class FaultResolver {
 public:
  enum class Mode { kCopy, kContinue };

  struct Region {
    uintptr_t base = 0;        // start of the registered range
    size_t length = 0;
    size_t page = 4096;        // what one fault resolves (the backend's page size)
    const uint8_t* source = nullptr;  // kCopy: data for base + off is source[off % source_length]
    size_t source_length = 0;
  };

  // Starts the thread. `uffd` must outlive the resolver.
  static gmem::Result<std::unique_ptr<FaultResolver>> Start(int uffd, Mode mode, Region region);
  ~FaultResolver();
  FaultResolver(const FaultResolver&) = delete;
  FaultResolver& operator=(const FaultResolver&) = delete;

  uint64_t resolved() const { return resolved_.load(std::memory_order_relaxed); }
  // The first unexpected failure ("" if none). After one the resolver unregisters the range so
  // the faulting thread finishes instead of waiting forever.
  std::string error() const;

 private:
  FaultResolver(int uffd, Mode mode, Region region, gmem::FileDescriptor stop)
      : uffd_(uffd), mode_(mode), region_(region), stop_(std::move(stop)) {}
  void Loop();
  bool Resolve(uintptr_t address);
  void SetError(std::string text);

  int uffd_;
  Mode mode_;
  Region region_;
  gmem::FileDescriptor stop_;  // eventfd
  std::thread thread_;
  std::atomic<uint64_t> resolved_{0};
  mutable std::mutex mu_;
  std::string error_;
};

}  // namespace gmembench
