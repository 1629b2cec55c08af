// Demand-paging rate, in the shape of the upstream demand_paging_test's table: 1, 2, 4, ... vCPUs,
// each in its own thread, each writing one byte to every 4 KiB page of its own region of guest
// memory, every fault resolved by userspace. Reported per vCPU count: pages_per_sec (overall)
// and pages_per_sec_per_vcpu, from the moment the vCPUs are released to the last one halting.
//
// Modes (demand_paging/<mode>/vcpus:<n>):
//   anon_no_uffd        anonymous memory, faults resolved by the kernel (no userfaultfd): the bound
//   anon_uffd_missing   anonymous memory, one userfaultfd and handler thread per vCPU, UFFDIO_COPY
//   shmem_uffd_missing  memfd (shmem) memory, the same with UFFDIO_COPY
//   shmem_uffd_minor    memfd filled by pwrite beforehand, MINOR faults resolved by UFFDIO_CONTINUE
//   anon_kvm_userfault  KVM Userfault (KVM_MEM_USERFAULT): the vCPU exits to its own thread, which
//                       fills the page and clears its bit; only where the kernel has it and its
//                       UAPI comes from the kernel's headers or --series-profile=kvm-userfault-v3

#include <sys/ioctl.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cstring>
#include <latch>
#include <memory>
#include <optional>
#include <thread>
#include <variant>

#include "bench/common.h"
#include "bench/fault_resolver.h"
#include "bench/paging_guest.h"
#include "bench/registry.h"
#include "fixtures/backends.h"
#include "fixtures/errno_name.h"
#include "fixtures/guest.h"
#include "fixtures/kvm.h"
#include "fixtures/kvm_userfault.h"
#include "fixtures/probe.h"
#include "fixtures/uffd.h"

namespace gmembench {
namespace {

constexpr size_t kGuestPage = 4096;

enum class Memory { kAnon, kShmem };

struct PagingMode {
  const char* name;
  Memory memory;
  uint64_t uffd_mode;    // 0: no userfaultfd
  const char* feature;   // what the probe must have found, besides vcpu.runs_guest_code
  bool kvm_userfault = false;
};

const PagingMode kModes[] = {
    {"anon_no_uffd", Memory::kAnon, 0, "kvm"},
    {"anon_uffd_missing", Memory::kAnon, UFFDIO_REGISTER_MODE_MISSING, "uffd"},
    {"shmem_uffd_missing", Memory::kShmem, UFFDIO_REGISTER_MODE_MISSING, "uffd.memfd.MISSING"},
    {"shmem_uffd_minor", Memory::kShmem, UFFDIO_REGISTER_MODE_MINOR, "uffd.memfd.MINOR"},
    {"anon_kvm_userfault", Memory::kAnon, 0, "kvm", true},
};

// KVM Userfault's values, or why it cannot be measured here.
std::variant<gmem::UserfaultUapi, std::string> KvmUserfault() {
  auto uapi = gmem::KvmUserfaultUapi();
  if (auto* missing = std::get_if<gmem::Features::Missing>(&uapi)) return missing->text;
  return std::get<gmem::UserfaultUapi>(uapi);
}

// One VM set up for a run: its code, its data slot, its vCPUs and the fault handling.
struct PagingVm {
  gmem::Vm vm;
  gmem::Mapping code;
  gmem::Memslot code_slot;
  std::optional<gmem::BackendFile> file;
  gmem::Mapping data;
  std::optional<gmem::UserfaultBitmap> userfault_bitmap;
  gmem::Memslot data_slot;
  std::vector<gmem::Vcpu> vcpus;
  std::vector<gmem::Userfaultfd> uffds;
  std::vector<std::unique_ptr<FaultResolver>> resolvers;  // destroyed first
};

struct PagingRun {
  const PagingMode* mode;
  gmem::UserfaultUapi userfault;  // kvm_userfault modes
  int vcpus;
  size_t per_vcpu;        // bytes
  size_t run_size;        // kvm_run mapping
  gmem::Mapping prototype;  // one page of pattern: what every resolved page receives
};

gmem::Status FillFile(int fd, size_t size, const gmem::Mapping& pattern) {
  for (size_t off = 0; off < size;) {
    ssize_t n = pwrite(fd, pattern.bytes(), std::min(pattern.length(), size - off), static_cast<off_t>(off));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return gmem::Error(fmt::format("pwrite(memfd {}, offset {:#x})", fd, off), n < 0 ? errno : 0);
    off += static_cast<size_t>(n);
  }
  return gmem::Ok{};
}

gmem::Result<std::unique_ptr<PagingVm>> CreatePagingVm(const gmem::Kvm& kvm, const PagingRun& run,
                                                       const gmem::Mapping& fill_pattern) {
  auto p = std::make_unique<PagingVm>();
  const size_t total = run.per_vcpu * static_cast<size_t>(run.vcpus);
  auto vm = kvm.CreateVm();
  if (!vm.ok()) return vm.error();
  p->vm = std::move(vm).value();

  auto code = gmem::MapAnonymous(kPagingCodeSlotSize);
  if (!code.ok()) return code.error();
  p->code = std::move(code).value();
  std::memcpy(p->code.bytes() + kPagingCodeGpa, kTouchLoop, sizeof kTouchLoop);
  kvm_userspace_memory_region2 code_region{};
  code_region.slot = 0;
  code_region.memory_size = kPagingCodeSlotSize;
  code_region.userspace_addr = p->code.start();
  auto code_slot = gmem::Memslot::Create(p->vm, code_region);
  if (!code_slot.ok()) return code_slot.error();
  p->code_slot = std::move(code_slot).value();

  if (run.mode->memory == Memory::kShmem) {
    auto file = gmem::FindBackend("memfd")->Create(total);
    if (!file.ok()) return file.error();
    p->file.emplace(std::move(file).value());
    if (run.mode->uffd_mode == UFFDIO_REGISTER_MODE_MINOR) {
      // MINOR faults need the pages in the page cache already (untimed, like the upstream test).
      gmem::Status filled = FillFile(p->file->fd.get(), total, fill_pattern);
      if (!filled.ok()) return filled.error();
    }
    auto data = p->file->Map(total);
    if (!data.ok()) return data.error();
    p->data = std::move(data).value();
  } else {
    auto data = gmem::MapAnonymous(total);
    if (!data.ok()) return data.error();
    p->data = std::move(data).value();
  }

  kvm_userspace_memory_region2 data_region{};
  data_region.slot = 1;
  data_region.guest_phys_addr = kPagingDataGpa;
  data_region.memory_size = total;
  data_region.userspace_addr = p->data.start();
  if (run.mode->kvm_userfault) {
    // Bit i set: the vCPU exits on the first access to page i.
    p->userfault_bitmap.emplace(total / kGuestPage);
    p->userfault_bitmap->SetAll();
    run.userfault.Enable(data_region, *p->userfault_bitmap);
  }
  auto data_slot = gmem::Memslot::Create(p->vm, data_region);
  if (!data_slot.ok()) return data_slot.error();
  p->data_slot = std::move(data_slot).value();

  for (int i = 0; i < run.vcpus; ++i) {
    auto vcpu = p->vm.CreateVcpu(i, run.run_size);
    if (!vcpu.ok()) return vcpu.error();
    p->vcpus.push_back(std::move(vcpu).value());
    gmem::Status entry = SetTouchLoopEntry(p->vcpus.back(), kPagingDataGpa + i * run.per_vcpu,
                                           run.per_vcpu / kGuestPage, kGuestPage);
    if (!entry.ok()) return entry.error();
  }

  if (run.mode->uffd_mode) {
    // One userfaultfd and one handler thread per vCPU region (the upstream test's default).
    for (int i = 0; i < run.vcpus; ++i) {
      auto uffd = gmem::Userfaultfd::Open();
      if (!uffd.ok()) return uffd.error();
      p->uffds.push_back(std::move(uffd).value());
      uint8_t* base = p->data.bytes() + i * run.per_vcpu;
      auto reg = p->uffds.back().Register(base, run.per_vcpu, run.mode->uffd_mode);
      if (!reg.ok()) return reg.error();
    }
    for (int i = 0; i < run.vcpus; ++i) {
      auto mode = run.mode->uffd_mode == UFFDIO_REGISTER_MODE_MINOR ? FaultResolver::Mode::kContinue
                                                                    : FaultResolver::Mode::kCopy;
      FaultResolver::Region region{p->data.start() + i * run.per_vcpu, run.per_vcpu, kGuestPage,
                                   run.prototype.bytes(), kGuestPage};
      auto resolver = FaultResolver::Start(p->uffds[i].fd(), mode, region);
      if (!resolver.ok()) return resolver.error();
      p->resolvers.push_back(std::move(resolver).value());
    }
  }
  return p;
}

// The vCPU thread of the KVM Userfault mode: resolves its own exits (fills the page, clears the
// bit with release semantics, re-enters).
gmem::Status RunWithKvmUserfault(PagingVm& p, const gmem::Vcpu& vcpu, const PagingRun& run) {
  kvm_run* r = vcpu.run();
  while (true) {
    if (ioctl(vcpu.fd(), KVM_RUN, 0) == 0) {
      if (r->exit_reason == KVM_EXIT_HLT) return gmem::Ok{};
      if (r->exit_reason == KVM_EXIT_INTR) continue;
      return gmem::Error(fmt::format("KVM_RUN(vcpu fd {})", vcpu.fd()), 0,
                         fmt::format("unexpected {}", gmem::ExitReasonName(r->exit_reason)));
    }
    if (errno == EINTR || errno == EAGAIN) continue;
    gmem::MemoryFaultExit fault = gmem::memory_fault_of(*r);
    if (errno != EFAULT || r->exit_reason != KVM_EXIT_MEMORY_FAULT || !(fault.flags & run.userfault.exit_flag))
      return gmem::Error(fmt::format("KVM_RUN(vcpu fd {})", vcpu.fd()), errno,
                         fmt::format("exit {} (memory_fault.flags {:#x})", gmem::ExitReasonName(r->exit_reason),
                                     static_cast<uint64_t>(fault.flags)));
    uint64_t gpa = fault.gpa & ~uint64_t{kGuestPage - 1};
    if (gpa < kPagingDataGpa || gpa >= kPagingDataGpa + p.data.length())
      return gmem::Error("KVM_EXIT_MEMORY_FAULT", 0, fmt::format("userfault at gpa {:#x} outside the data slot", gpa));
    uint64_t index = (gpa - kPagingDataGpa) / kGuestPage;
    std::memcpy(p.data.bytes() + (gpa - kPagingDataGpa), run.prototype.bytes(), kGuestPage);
    p.userfault_bitmap->Clear(index);
  }
}

void RunPaging(benchmark::State& state, const PagingMode& mode, int vcpus) {
  if (SkipUnlessFeature(state, "vcpu.runs_guest_code") || SkipUnlessFeature(state, mode.feature)) return;
  auto kvm = gmem::Kvm::Open();
  if (!kvm.ok()) return Fail(state, kvm.error());
  PagingRun run{&mode, {}, vcpus, GetOptions().paging_mib_per_vcpu * kMiB, 0, {}};
  if (mode.kvm_userfault) {
    auto uapi = KvmUserfault();
    if (auto* why = std::get_if<std::string>(&uapi)) return Skip(state, *why);
    run.userfault = std::get<gmem::UserfaultUapi>(uapi);
  }
  if (run.per_vcpu * static_cast<size_t>(vcpus) > kPagingMaxData)
    return Skip(state, fmt::format("{} vCPUs x {} MiB exceeds the {} MiB a 32-bit guest addresses above "
                                   "its code; lower --gmembench_paging_mib", vcpus,
                                   GetOptions().paging_mib_per_vcpu, kPagingMaxData / kMiB));
  auto run_size = kvm.value().RunSize();
  if (!run_size.ok()) return Fail(state, run_size.error());
  run.run_size = run_size.value();
  auto prototype = PatternBuffer(kGuestPage);
  auto fill_pattern = PatternBuffer(2 * kMiB);
  if (!prototype.ok() || !fill_pattern.ok()) return Fail(state, "cannot map the pattern buffers");
  run.prototype = std::move(prototype).value();

  const double pages_per_vcpu = static_cast<double>(run.per_vcpu / kGuestPage);
  double total = 0, faults = 0;
  for (auto _ : state) {
    auto created = CreatePagingVm(kvm.value(), run, fill_pattern.value());
    if (!created.ok()) {
      Fail(state, created.error());
      break;
    }
    PagingVm& p = *created.value();
    std::latch go(1);
    std::vector<gmem::Status> results(static_cast<size_t>(vcpus), gmem::Status(gmem::Ok{}));
    std::vector<std::thread> threads;
    for (int i = 0; i < vcpus; ++i)
      threads.emplace_back([&, i] {
        go.wait();
        results[i] = mode.kvm_userfault ? RunWithKvmUserfault(p, p.vcpus[i], run)
                                        : RunUntilHalt(p.vcpus[i]);
      });
    Stopwatch sw;
    go.count_down();
    for (std::thread& t : threads) t.join();
    double seconds = sw.Seconds();
    std::string error;
    for (const gmem::Status& r : results)
      if (!r.ok() && error.empty()) error = r.error().message();
    for (const auto& resolver : p.resolvers) {
      if (error.empty()) error = resolver->error();
      faults += static_cast<double>(resolver->resolved());
    }
    if (!error.empty()) {
      Fail(state, error);
      break;
    }
    state.SetIterationTime(seconds);
    total += seconds;
  }
  if (state.error_occurred() || total <= 0) return;
  const double iterations = static_cast<double>(state.iterations());
  const double per_vcpu_rate = pages_per_vcpu * iterations / total;
  state.counters["vcpus"] = vcpus;
  state.counters["pages_per_vcpu"] = pages_per_vcpu;
  state.counters["pages_per_sec_per_vcpu"] = per_vcpu_rate;
  state.counters["pages_per_sec"] = per_vcpu_rate * vcpus;
  if (mode.uffd_mode) state.counters["uffd_faults_per_page"] = faults / (iterations * pages_per_vcpu * vcpus);
}

void RegisterPaging() {
  for (const PagingMode& mode : kModes)
    for (int vcpus : GetOptions().vcpus)
      Configure(benchmark::RegisterBenchmark(fmt::format("demand_paging/{}/vcpus:{}", mode.name, vcpus).c_str(),
                                             [&mode, vcpus](benchmark::State& s) { RunPaging(s, mode, vcpus); }));
}

const Registration kRegistration("demand_paging", RegisterPaging);

}  // namespace
}  // namespace gmembench
