// Populating N MiB of memory, by every path a VMM can use, for every backend that has the path:
//   memcpy_fault                 memcpy through a fresh MAP_SHARED mapping, taking every fault
//   madv_populate_write_memcpy   MADV_POPULATE_WRITE on the fresh mapping, then memcpy
//   pwrite                       pwrite(2) into the file (no mapping)
//   uffd_missing_copy            one thread reads each page; a handler thread resolves each
//                                MISSING fault with UFFDIO_COPY of that page
//   uffdio_copy_nofault          UFFDIO_COPY over the registered range without any fault (the
//                                copy cost alone, for splitting the fault cost out)
//   write_uffd_minor_continue    pwrite(2) into the file, then each page's MINOR fault resolved by
//                                UFFDIO_CONTINUE; the file is of the backend's write variant when
//                                its own files take no write() and the probe finds the variant (a
//                                guest_memfd with GUEST_MEMFD_FLAG_WRITE), else memcpy through a
//                                second mapping fills it
// and populate/anon/memcpy_prefaulted, plain memcpy into faulted-in anonymous memory: the bound.
// Each reports bytes_per_second and `of_bound`, its bandwidth over the bound's (when the bound ran
// first in the same process).

#include <sys/mman.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <optional>

#include "bench/common.h"
#include "bench/fault_resolver.h"
#include "bench/registry.h"
#include "fixtures/backends.h"
#include "fixtures/errno_name.h"
#include "fixtures/hugepage_pool.h"
#include "fixtures/kvm.h"
#include "fixtures/probe.h"
#include "fixtures/series.h"
#include "fixtures/uapi/mm_mainline.h"
#include "fixtures/uffd.h"
#include "fixtures/uffd_family.h"

namespace gmembench {
namespace {

// Where a populate writes: a backend's file, or private anonymous memory (backend == nullptr).
struct Target {
  std::string name;
  const gmem::Backend* backend = nullptr;
  std::string uffd_kind;                       // whose uffd.<kind>.<MODE> probe features apply
  const gmem::Backend* write_variant = nullptr;  // same kind, files that may take write()
};

size_t PageOf(const Target& t) { return t.backend ? t.backend->page_size() : static_cast<size_t>(getpagesize()); }

std::string Describe(const Target& t) { return t.backend ? t.name : "anonymous"; }

struct Destination {
  std::optional<gmem::BackendFile> file;
  gmem::Mapping map;
};

gmem::Result<Destination> Fresh(const Target& t, size_t size, bool map) {
  Destination d;
  if (!t.backend) {
    auto m = gmem::MapAnonymous(size);
    if (!m.ok()) return m.error();
    d.map = std::move(m).value();
    return d;
  }
  auto file = t.backend->Create(size);
  if (!file.ok()) return file.error();
  d.file.emplace(std::move(file).value());
  if (map) {
    auto m = d.file->Map(size);
    if (!m.ok()) return m.error();
    d.map = std::move(m).value();
  }
  return d;
}

// One iteration's result: its time, or why the path does not exist here, or what broke.
struct Outcome {
  double seconds = 0;
  double fill_seconds = 0;  // write_uffd_minor_continue: the part spent filling the page cache
  std::string skip;
  std::string error;
};
Outcome SkipWith(std::string reason) { return Outcome{0, 0, std::move(reason), ""}; }
Outcome ErrorWith(std::string what) { return Outcome{0, 0, "", std::move(what)}; }
Outcome ErrorWith(const gmem::Error& e) { return ErrorWith(e.message()); }

// What one benchmark run keeps across its iterations.
struct Run {
  size_t size = 0;
  gmem::Mapping source;           // the data every path copies
  gmem::Mapping prefaulted;       // the bound's destination
  bool fill_by_write = true;      // write_uffd_minor_continue: pwrite, or memcpy via a 2nd mapping
  const gmem::Backend* minor_file = nullptr;  // write_uffd_minor_continue: the file's backend
};

double g_bound_bytes_per_second = 0;

// pwrite(2) of [0, size) of `fd` from `source`, looping over short writes. Fails (with the call
// described) at the first error.
gmem::Status PwriteAll(int fd, const uint8_t* source, size_t size, const std::string& what) {
  size_t done = 0;
  while (done < size) {
    ssize_t n = pwrite(fd, source + done, size - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      return gmem::Error(fmt::format("pwrite({} fd {}, {:#x} bytes, offset {:#x})", what, fd, size - done, done),
                         n < 0 ? errno : 0, n == 0 ? "wrote nothing" : "");
    done += static_cast<size_t>(n);
  }
  return gmem::Ok{};
}

// Whether pwrite(2) works on a file of `t` (one page), and the failure if not.
std::optional<std::string> WriteUnsupported(const Target& t, const uint8_t* source) {
  auto probe_file = Fresh(t, PageOf(t), false);
  if (!probe_file.ok()) return probe_file.error().message();
  gmem::Status s = PwriteAll(probe_file.value().file->fd.get(), source, PageOf(t), t.name);
  if (s.ok()) return std::nullopt;
  return s.error().message();
}

std::string UffdFeature(const Target& t, const char* mode) {
  return t.backend ? fmt::format("uffd.{}.{}", t.uffd_kind, mode) : "uffd";
}

// The backend whose file write_uffd_minor_continue fills by pwrite: the target's own when its
// files take write(), else its write variant when the probe finds it and its files do; nullptr
// (fill by memcpy) otherwise, with `why` saying what refused.
const gmem::Backend* WritableFileOf(const Target& t, const uint8_t* source, std::string& why) {
  auto own = WriteUnsupported(t, source);
  if (!own) return t.backend;
  why = "pwrite fails: " + *own;
  const gmem::Backend* variant = t.write_variant;
  if (!variant || variant == t.backend) return nullptr;
  if (auto missing = variant->Unavailable(gmem::ProbedFeatures())) {
    why += fmt::format("; no {}: {}", variant->name(), missing->text);
    return nullptr;
  }
  if (auto refused = WriteUnsupported(Target{variant->name(), variant}, source)) {
    why += fmt::format("; {} pwrite fails: {}", variant->name(), *refused);
    return nullptr;
  }
  return variant;
}

// ---- the paths, one iteration each ----

Outcome MemcpyPrefaulted(const Target&, const Run& run) {
  Stopwatch sw;
  std::memcpy(run.prefaulted.bytes(), run.source.bytes(), run.size);
  benchmark::ClobberMemory();
  return Outcome{sw.Seconds()};
}

Outcome MemcpyFault(const Target& t, const Run& run) {
  auto dest = Fresh(t, run.size, true);
  if (!dest.ok()) return ErrorWith(dest.error());
  Stopwatch sw;
  std::memcpy(dest.value().map.bytes(), run.source.bytes(), run.size);
  benchmark::ClobberMemory();
  return Outcome{sw.Seconds()};
}

Outcome MadvPopulateMemcpy(const Target& t, const Run& run) {
  auto dest = Fresh(t, run.size, true);
  if (!dest.ok()) return ErrorWith(dest.error());
  uint8_t* to = dest.value().map.bytes();
  Stopwatch sw;
  if (madvise(to, run.size, MADV_POPULATE_WRITE) != 0)
    return SkipWith(fmt::format("madvise({:#x} bytes of a {} mapping, MADV_POPULATE_WRITE) = -1 {}",
                                run.size, Describe(t), gmem::ErrnoDescription(errno)));
  std::memcpy(to, run.source.bytes(), run.size);
  benchmark::ClobberMemory();
  return Outcome{sw.Seconds()};
}

Outcome Pwrite(const Target& t, const Run& run) {
  auto dest = Fresh(t, run.size, false);
  if (!dest.ok()) return ErrorWith(dest.error());
  Stopwatch sw;
  gmem::Status s = PwriteAll(dest.value().file->fd.get(), run.source.bytes(), run.size, t.name);
  double seconds = sw.Seconds();
  if (!s.ok()) return SkipWith(s.error().message());
  return Outcome{seconds};
}

// A destination registered with a userfaultfd in `mode`.
struct Registered {
  Destination dest;
  std::optional<gmem::Userfaultfd> uffd;
};

gmem::Result<Registered> FreshRegistered(const Target& t, size_t size, uint64_t mode) {
  auto dest = Fresh(t, size, true);
  if (!dest.ok()) return dest.error();
  auto uffd = gmem::Userfaultfd::Open();
  if (!uffd.ok()) return uffd.error();
  Registered r{std::move(dest).value(), std::move(uffd).value()};
  auto reg = r.uffd->Register(r.dest.map.addr(), size, mode);
  if (!reg.ok()) return reg.error();
  return r;
}

Outcome UffdMissingCopy(const Target& t, const Run& run) {
  auto reg = FreshRegistered(t, run.size, UFFDIO_REGISTER_MODE_MISSING);
  if (!reg.ok()) return ErrorWith(reg.error());
  const gmem::Mapping& map = reg.value().dest.map;
  auto resolver = FaultResolver::Start(reg.value().uffd->fd(), FaultResolver::Mode::kCopy,
                                       {map.start(), run.size, PageOf(t), run.source.bytes(), run.size});
  if (!resolver.ok()) return ErrorWith(resolver.error());
  Stopwatch sw;
  TouchPages(map.addr(), run.size, PageOf(t));
  double seconds = sw.Seconds();
  if (std::string e = resolver.value()->error(); !e.empty()) return ErrorWith(e);
  return Outcome{seconds};
}

Outcome UffdioCopyNoFault(const Target& t, const Run& run) {
  auto reg = FreshRegistered(t, run.size, UFFDIO_REGISTER_MODE_MISSING);
  if (!reg.ok()) return ErrorWith(reg.error());
  const gmem::Mapping& map = reg.value().dest.map;
  const size_t chunk = std::max<size_t>(PageOf(t), 2 * kMiB);
  Stopwatch sw;
  for (size_t off = 0; off < run.size;) {
    uffdio_copy copy{};
    copy.dst = map.start() + off;
    copy.src = run.source.start() + off;
    copy.len = std::min(chunk, run.size - off);
    if (ioctl(reg.value().uffd->fd(), UFFDIO_COPY, &copy) == 0) {
      off += copy.len;
    } else if (errno == EAGAIN && copy.copy > 0) {
      off += static_cast<size_t>(copy.copy);
    } else if (errno != EAGAIN) {
      return ErrorWith(fmt::format("UFFDIO_COPY(dst {:#x}, len {:#x}) = -1 {}", copy.dst, copy.len,
                                   gmem::ErrnoDescription(errno)));
    }
  }
  return Outcome{sw.Seconds()};
}

Outcome WriteMinorContinue(const Target& t, const Run& run) {
  auto reg = FreshRegistered(Target{t.name, run.minor_file}, run.size, UFFDIO_REGISTER_MODE_MINOR);
  if (!reg.ok()) return ErrorWith(reg.error());
  const Destination& dest = reg.value().dest;
  gmem::Mapping alias;
  if (!run.fill_by_write) {
    auto m = dest.file->Map(run.size);
    if (!m.ok()) return ErrorWith(m.error());
    alias = std::move(m).value();
  }
  auto resolver = FaultResolver::Start(reg.value().uffd->fd(), FaultResolver::Mode::kContinue,
                                       {dest.map.start(), run.size, PageOf(t), nullptr, 0});
  if (!resolver.ok()) return ErrorWith(resolver.error());
  Stopwatch sw;
  if (run.fill_by_write) {
    gmem::Status s = PwriteAll(dest.file->fd.get(), run.source.bytes(), run.size, t.name);
    if (!s.ok()) return ErrorWith(s.error());
  } else {
    std::memcpy(alias.bytes(), run.source.bytes(), run.size);
  }
  double fill = sw.Seconds();
  TouchPages(dest.map.addr(), run.size, PageOf(t));
  double seconds = sw.Seconds();
  if (std::string e = resolver.value()->error(); !e.empty()) return ErrorWith(e);
  if (resolver.value()->resolved() == 0) return ErrorWith("no MINOR fault reached the handler");
  return Outcome{seconds, fill};
}

using Path = Outcome (*)(const Target&, const Run&);

struct PathSpec {
  const char* name;
  Path run;
  bool needs_file;           // not for anonymous memory
  const char* uffd_mode;     // feature the path needs from the probe ("MISSING"/"MINOR"), or null
};

const PathSpec kPaths[] = {
    {"memcpy_fault", MemcpyFault, false, nullptr},
    {"madv_populate_write_memcpy", MadvPopulateMemcpy, false, nullptr},
    {"pwrite", Pwrite, true, nullptr},
    {"uffd_missing_copy", UffdMissingCopy, false, "MISSING"},
    {"uffdio_copy_nofault", UffdioCopyNoFault, false, "MISSING"},
    {"write_uffd_minor_continue", WriteMinorContinue, true, "MINOR"},
};

void RunPath(benchmark::State& state, const Target& t, const PathSpec& path) {
  if (t.backend) {
    if (auto why = t.backend->Unavailable(gmem::ProbedFeatures()))
      return why->broken ? Fail(state, why->text) : Skip(state, why->text);
  }
  if (path.uffd_mode && SkipUnlessFeature(state, UffdFeature(t, path.uffd_mode))) return;

  Run run;
  run.size = GetOptions().populate_mib * kMiB;
  if (run.size % PageOf(t)) return Fail(state, fmt::format("--gmembench_mib must be a multiple of {} KiB "
                                                            "for {}", PageOf(t) / 1024, t.name));
  auto source = PatternBuffer(run.size);
  if (!source.ok()) return Fail(state, source.error());
  run.source = std::move(source).value();
  std::optional<gmem::HugepagePool> pool;
  if (t.backend && PageOf(t) > static_cast<size_t>(getpagesize())) {
    // One pool for the whole run (the destination plus a one-page write probe), so iterations do
    // not grow and shrink nr_hugepages.
    auto reserved = gmem::HugepagePool::Reserve(PageOf(t), static_cast<long>(run.size / PageOf(t) + 1));
    if (!reserved.ok()) return Skip(state, reserved.error().message());
    pool.emplace(std::move(reserved).value());
  }
  if (path.run == MemcpyPrefaulted) {
    auto dest = PatternBuffer(run.size);
    if (!dest.ok()) return Fail(state, dest.error());
    run.prefaulted = std::move(dest).value();
  }
  if (path.run == WriteMinorContinue) {
    std::string why;
    const gmem::Backend* writable = WritableFileOf(t, run.source.bytes(), why);
    run.fill_by_write = writable != nullptr;
    run.minor_file = writable ? writable : t.backend;
    state.SetLabel(!writable ? "fill=memcpy via a 2nd mapping (" + why + ")"
                   : writable == t.backend ? "fill=pwrite"
                                           : "fill=pwrite into a " + writable->name() + " file (" + why + ")");
  }

  double total = 0, fill = 0;
  for (auto _ : state) {
    Outcome o = path.run(t, run);
    if (!o.skip.empty()) {
      Skip(state, o.skip);
      break;
    }
    if (!o.error.empty()) {
      Fail(state, o.error);
      break;
    }
    state.SetIterationTime(o.seconds);
    total += o.seconds;
    fill += o.fill_seconds;
  }
  if (state.error_occurred() || total <= 0) return;
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(run.size));
  double bytes_per_second = static_cast<double>(state.iterations()) * static_cast<double>(run.size) / total;
  state.counters["MiB"] = static_cast<double>(GetOptions().populate_mib);
  if (path.run == MemcpyPrefaulted) g_bound_bytes_per_second = bytes_per_second;
  else if (g_bound_bytes_per_second > 0) state.counters["of_bound"] = bytes_per_second / g_bound_bytes_per_second;
  if (path.run == WriteMinorContinue) state.counters["fill_share"] = fill / total;
}

std::vector<Target> Targets() {
  std::vector<Target> targets{{"anon", nullptr, "", nullptr}};
  for (const char* name : {"memfd", "hugetlbfs_2M", "guest_memfd"}) {
    const gmem::Backend* backend = gmem::FindBackend(name);
    // guest_memfd's write variant carries the write-population series' flag
    // (GUEST_MEMFD_FLAG_WRITE from the kernel's headers or a selected series profile).
    targets.push_back({name, backend, name, gmem::WritePopulationOf(*backend).backend});
  }
  // The write variant on its own, for its write paths; userfaultfd on it is guest_memfd's.
  const gmem::Backend* write_backend = targets.back().write_variant;
  targets.push_back({"guest_memfd_write", write_backend, "guest_memfd", write_backend});
  return targets;
}

void RegisterPopulate() {
  static const std::vector<Target> targets = Targets();
  static const PathSpec bound{"memcpy_prefaulted", MemcpyPrefaulted, false, nullptr};
  Configure(benchmark::RegisterBenchmark("populate/anon/memcpy_prefaulted",
                                         [](benchmark::State& s) { RunPath(s, targets[0], bound); }));
  for (const Target& t : targets) {
    for (const PathSpec& path : kPaths) {
      if (path.needs_file && t.name == "anon") continue;
      // guest_memfd_write exists for its write paths; its mmap paths are guest_memfd's.
      if (t.name == "guest_memfd_write" && !path.needs_file) continue;
      Configure(benchmark::RegisterBenchmark(fmt::format("populate/{}/{}", t.name, path.name).c_str(),
                                             [&t, &path](benchmark::State& s) { RunPath(s, t, path); }));
    }
  }
}

const Registration kRegistration("populate", RegisterPopulate);

}  // namespace
}  // namespace gmembench
