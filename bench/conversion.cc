// Time per shared<->private conversion of a 4 KiB page and of a huge range
// (--gmembench_conversion_mib, default 2 MiB), one conversion per iteration, the reverse
// conversion (and, for in-place conversion, faulting the range into a host mapping) untimed:
//   conversion/vm_attributes/<to_private|to_shared>/<size>   KVM_SET_MEMORY_ATTRIBUTES on the VM
//       (mainline since 6.8; needs a VM type with private memory, e.g. KVM_X86_SW_PROTECTED_VM)
//   conversion/gmem_in_place/<to_private|to_shared>/<size>   KVM_SET_MEMORY_ATTRIBUTES2 on the
//       guest_memfd (the in-place conversion series: where the kernel has it and its UAPI comes
//       from the kernel's headers or --series-profile=gmem-inplace-conversion-v8)

#include <sys/ioctl.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cstring>
#include <optional>
#include <vector>

#include "bench/common.h"
#include "bench/registry.h"
#include "fixtures/errno_name.h"
#include "fixtures/kvm.h"
#include "fixtures/probe.h"
#include "fixtures/series.h"

namespace gmembench {
namespace {

enum class Kind { kVmAttributes, kGmemInPlace };

constexpr uint64_t kGpa = 1ULL << 32;

// A SW_PROTECTED VM with one guest_memfd slot of `size` bytes at kGpa.
struct ConversionVm {
  gmem::Vm vm;
  gmem::GuestMemfd gmem;
  gmem::Mapping shared;   // vm_attributes: the slot's shared side; in-place: the gmem's own mapping
  gmem::Memslot slot;
};

constexpr const char* kIoctl2 = "KVM_SET_MEMORY_ATTRIBUTES2";
constexpr const char* kStruct2Size = "sizeof(struct kvm_memory_attributes2)";

// Sets [0, size) of the range to `attributes`; the raw result.
gmem::SyscallResult Convert(Kind kind, const ConversionVm& c, uint64_t size, uint64_t attributes) {
  if (kind == Kind::kVmAttributes) return c.vm.RawSetMemoryAttributes(kGpa, size, attributes);
  // struct kvm_memory_attributes2 as the run's selection has it: offset, size, attributes, flags
  // first (the series keeps kvm_memory_attributes' layout), the rest zero.
  const gmem::series::Selection& selection = gmem::series::ActiveSelection();
  std::vector<uint64_t> args(*selection.Value(kStruct2Size) / sizeof(uint64_t), 0);
  args[1] = size;
  args[2] = attributes;
  return gmem::RawIoctl(c.gmem.fd(), static_cast<unsigned long>(*selection.Value(kIoctl2)), args.data(),
                        fmt::format("guest_memfd, {{offset=0, size={:#x}, attributes={:#x}}}", size, attributes));
}

// Why `kind` cannot run here, checked before creating anything.
std::optional<std::string> Unsupported(Kind kind) {
  if (kind == Kind::kGmemInPlace) {
    for (const char* name : {kIoctl2, kStruct2Size})
      if (std::string why = gmem::series::ActiveSelection().WhyNoValue(name); !why.empty()) return why;
    if (auto why = gmem::ProbedFeatures().Why("gmem.ioctl.SET_MEMORY_ATTRIBUTES2")) return why->text;
  }
  if (auto why = gmem::ProbedFeatures().Why("vm_type.SW_PROTECTED")) return why->text;
  return std::nullopt;
}

gmem::Result<ConversionVm> CreateConversionVm(Kind kind, uint64_t size) {
  auto kvm = gmem::Kvm::Open();
  if (!kvm.ok()) return kvm.error();
  auto vm = kvm.value().CreateVm(KVM_X86_SW_PROTECTED_VM);
  if (!vm.ok()) return vm.error();
  ConversionVm c{std::move(vm).value(), {}, {}, {}};
  if (kind == Kind::kVmAttributes) {
    long attrs = c.vm.CheckExtension(KVM_CAP_MEMORY_ATTRIBUTES);
    if (!(attrs & KVM_MEMORY_ATTRIBUTE_PRIVATE))
      return gmem::Error("KVM_CHECK_EXTENSION(KVM_CAP_MEMORY_ATTRIBUTES) on a KVM_X86_SW_PROTECTED_VM", 0,
                         fmt::format("= {:#x}, without KVM_MEMORY_ATTRIBUTE_PRIVATE (per-VM attributes off, "
                                     "e.g. in-place conversion mode)", attrs));
  }
  uint64_t flags = kind == Kind::kGmemInPlace ? GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED : 0;
  auto gmem = c.vm.CreateGuestMemfd(size, flags);
  if (!gmem.ok()) return gmem.error();
  c.gmem = std::move(gmem).value();
  if (kind == Kind::kGmemInPlace) {
    auto map = c.gmem.Map(size);
    if (!map.ok()) return map.error();
    c.shared = std::move(map).value();
  } else {
    auto map = gmem::MapAnonymous(size);
    if (!map.ok()) return map.error();
    c.shared = std::move(map).value();
    gmem::SyscallResult alloc = c.gmem.RawFallocate(0x01 /* FALLOC_FL_KEEP_SIZE */, 0, static_cast<off_t>(size));
    if (!alloc.ok()) return gmem::Error::FromSyscall(alloc);
  }
  auto slot = gmem::Memslot::Create(c.vm, gmem::GmemRegion(0, kGpa, size, c.gmem, 0, c.shared.start()));
  if (!slot.ok()) return slot.error();
  c.slot = std::move(slot).value();
  return c;
}

void RunConversion(benchmark::State& state, Kind kind, bool to_private, uint64_t size) {
  if (auto why = Unsupported(kind)) return Skip(state, *why);
  auto created = CreateConversionVm(kind, size);
  if (!created.ok()) {
    const gmem::Error& e = created.error();
    return e.err() == 0 || e.err() == EINVAL ? Skip(state, e.message()) : Fail(state, e);
  }
  ConversionVm& c = created.value();
  const uint64_t target = to_private ? KVM_MEMORY_ATTRIBUTE_PRIVATE : 0;
  const uint64_t before = to_private ? 0 : KVM_MEMORY_ATTRIBUTE_PRIVATE;
  double total = 0;
  for (auto _ : state) {
    gmem::SyscallResult r = Convert(kind, c, size, before);
    if (!r.ok()) {
      r.err == ENOTTY ? Skip(state, r.Describe()) : Fail(state, r.Describe());
      break;
    }
    // In-place conversion to private must unmap the host's mappings: give it some.
    if (kind == Kind::kGmemInPlace && to_private) std::memset(c.shared.bytes(), 0x5a, size);
    Stopwatch sw;
    r = Convert(kind, c, size, target);
    double seconds = sw.Seconds();
    if (!r.ok()) {
      Fail(state, r.Describe());
      break;
    }
    state.SetIterationTime(seconds);
    total += seconds;
  }
  if (state.error_occurred() || total <= 0) return;
  state.counters["bytes"] = static_cast<double>(size);
  state.counters["us_per_conversion"] = total * 1e6 / static_cast<double>(state.iterations());
}

void RegisterConversion() {
  const uint64_t huge = GetOptions().conversion_huge_mib * kMiB;
  for (auto [kind, kind_name] : {std::pair{Kind::kVmAttributes, "vm_attributes"},
                                 std::pair{Kind::kGmemInPlace, "gmem_in_place"}})
    for (bool to_private : {true, false})
      for (uint64_t size : {uint64_t{4096}, huge}) {
        std::string name = fmt::format("conversion/{}/{}/{}", kind_name, to_private ? "to_private" : "to_shared",
                                       size == 4096 ? "4KiB" : fmt::format("{}MiB", size / kMiB));
        auto* b = Configure(benchmark::RegisterBenchmark(
            name.c_str(), [kind, to_private, size](benchmark::State& s) { RunConversion(s, kind, to_private, size); }));
        b->Unit(benchmark::kMicrosecond);
        if (GetOptions().iterations > 0) b->Iterations(100 * GetOptions().iterations);
      }
}

const Registration kRegistration("conversion", RegisterConversion);

}  // namespace
}  // namespace gmembench
