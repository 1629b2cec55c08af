// KVM_PRE_FAULT_MEMORY: argument checks, progress reported through gpa/size, and what it does
// inside, across and outside memslots (including a guest_memfd slot).

#include <gtest/gtest.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <vector>

#include "fixtures/kvm.h"
#include "fixtures/require.h"
#include "fixtures/syscall_matchers.h"
#include "fixtures/vm_fixture.h"

namespace gmem {
namespace {

constexpr uint64_t kSlotGpa = 1ULL << 30;
constexpr uint64_t kSlotPages = 16;

// A default VM with one vCPU and an anonymous-memory slot of kSlotPages at kSlotGpa.
class PreFaultVm : public VmTest {
 protected:
  explicit PreFaultVm(unsigned long vm_type = KVM_X86_DEFAULT_VM) : VmTest(vm_type) {}
  void SetUp() override {
    VmTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    ASSERT_OK_AND_ASSIGN(size_t run_size, kvm().RunSize());
    ASSERT_OK_AND_ASSIGN(vcpu_, vm().CreateVcpu(0, run_size));
    ASSERT_OK_AND_ASSIGN(memory_, MapAnonymous(P(kSlotPages)));
    kvm_userspace_memory_region2 region{};
    region.slot = 1;
    region.guest_phys_addr = kSlotGpa;
    region.memory_size = memory_.length();
    region.userspace_addr = memory_.start();
    ASSERT_OK_AND_ASSIGN(slot_, Memslot::Create(vm(), region));
  }

  static uint64_t P(uint64_t pages) { return pages * page_size(); }

  // KVM_PRE_FAULT_MEMORY on the vCPU; `range` is updated to what the kernel wrote back.
  SyscallResult PreFault(kvm_pre_fault_memory& range) const {
    return RawIoctl(vcpu_.fd(), KVM_PRE_FAULT_MEMORY, &range,
                    fmt::format("{{gpa={:#x}, size={:#x}, flags={:#x}}}", range.gpa, range.size, range.flags));
  }
  static kvm_pre_fault_memory Range(uint64_t gpa, uint64_t size, uint64_t flags = 0) {
    kvm_pre_fault_memory range{};
    range.gpa = gpa;
    range.size = size;
    range.flags = flags;
    return range;
  }

  Vcpu vcpu_;
  Mapping memory_;
  Memslot slot_;
};

class PreFaultMemory : public PreFaultVm {
 protected:
  using PreFaultVm::PreFaultVm;
  void SetUp() override {
    REQUIRE_FEATURE("kvm.cap.PRE_FAULT_MEMORY");
    PreFaultVm::SetUp();
  }
};

using PreFaultWithoutCapability = PreFaultVm;

// Without the capability nothing is mapped: ENOTTY where the ioctl does not exist (before 6.10),
// EOPNOTSUPP where it does but KVM has no two-dimensional paging; flags are checked first there.
TEST_F(PreFaultWithoutCapability, MapsNothing) {
  if (ProbedFeatures().Has("kvm.cap.PRE_FAULT_MEMORY"))
    GTEST_SKIP() << "kvm.cap.PRE_FAULT_MEMORY present: the PreFaultMemory cases cover it";
  kvm_pre_fault_memory range = Range(kSlotGpa, P(1));
  SyscallResult r = PreFault(range);
  ASSERT_THAT(r, SyscallFailsWithOneOf(EOPNOTSUPP, ENOTTY));
  EXPECT_EQ(range.size, P(1)) << "no progress reported";
  if (r.err == EOPNOTSUPP) {
    kvm_pre_fault_memory flagged = Range(kSlotGpa, P(1), 1);
    EXPECT_THAT(PreFault(flagged), SyscallFailsWithErrno(EINVAL));
  }
}

// Any flag is refused.
TEST_F(PreFaultMemory, RejectsFlags) {
  for (int bit = 0; bit < 64; ++bit) {
    kvm_pre_fault_memory range = Range(kSlotGpa, P(1), 1ULL << bit);
    EXPECT_THAT(PreFault(range), SyscallFailsWithErrno(EINVAL));
  }
}

// Unaligned gpa or size, an empty range and a range wrapping past 2^64 are refused.
TEST_F(PreFaultMemory, RejectsBadRanges) {
  for (kvm_pre_fault_memory range :
       {Range(kSlotGpa + 8, P(1)), Range(kSlotGpa, P(1) + 8), Range(kSlotGpa, 0),
        Range(~(P(1) - 1), P(2))})
    EXPECT_THAT(PreFault(range), SyscallFailsWithErrno(EINVAL));
}

// A range outside every memslot is ENOENT, and nothing of it is reported as done.
TEST_F(PreFaultMemory, OutsideMemslotsIsENOENT) {
  kvm_pre_fault_memory range = Range(kSlotGpa + P(kSlotPages), P(2));
  EXPECT_THAT(PreFault(range), SyscallFailsWithErrno(ENOENT));
  EXPECT_EQ(range.gpa, kSlotGpa + P(kSlotPages));
  EXPECT_EQ(range.size, P(2));
}

// A range inside a memslot is mapped completely: gpa moves to its end, size drops to zero.
TEST_F(PreFaultMemory, MapsRangeInsideMemslot) {
  kvm_pre_fault_memory range = Range(kSlotGpa + P(2), P(4));
  EXPECT_THAT(PreFault(range), SyscallSucceeds());
  EXPECT_EQ(range.gpa, kSlotGpa + P(6));
  EXPECT_EQ(range.size, 0u);
}

// A range running off the end of the slot succeeds for the part inside and reports the rest;
// asking again for the rest is ENOENT.
TEST_F(PreFaultMemory, ReportsProgressUpToTheSlotEnd) {
  uint64_t end = kSlotGpa + P(kSlotPages);
  kvm_pre_fault_memory range = Range(end - P(2), P(4));
  EXPECT_THAT(PreFault(range), SyscallSucceeds());
  EXPECT_EQ(range.gpa, end);
  EXPECT_EQ(range.size, P(2));
  EXPECT_THAT(PreFault(range), SyscallFailsWithErrno(ENOENT));
}

// How many pages of `map` are in its file's page cache (guest_memfd keeps no st_blocks count).
Result<size_t> ResidentCount(const Mapping& map) {
  auto resident = ResidentPages(map);
  if (!resident.ok()) return resident.error();
  return static_cast<size_t>(std::count(resident.value().begin(), resident.value().end(), true));
}

// Pre-faulting a slot of a mappable guest_memfd allocates the file's pages, not pages of the
// slot's userspace_addr (other memory here, so the two paths cannot be mistaken for each other).
TEST_F(PreFaultMemory, AllocatesGuestMemfdPages) {
  REQUIRE_FEATURE("gmem");
  REQUIRE_FEATURE("gmem.flag.MMAP");
  REQUIRE_FEATURE("gmem.flag.INIT_SHARED");
  REQUIRE_FEATURE(GmemBindFeature(KVM_X86_DEFAULT_VM));
  ASSERT_OK_AND_ASSIGN(GuestMemfd gmem, vm().CreateGuestMemfd(P(4), GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED));
  uint64_t gpa = kSlotGpa + P(64);
  ASSERT_OK_AND_ASSIGN(Mapping map, gmem.Map(P(4)));
  ASSERT_OK_AND_ASSIGN(Mapping decoy, MapAnonymous(P(4)));
  ASSERT_OK_AND_ASSIGN(Memslot slot, Memslot::Create(vm(), GmemRegion(2, gpa, P(4), gmem, 0, decoy.start())));
  ASSERT_OK_AND_ASSIGN(size_t before, ResidentCount(map));
  ASSERT_EQ(before, 0u);
  kvm_pre_fault_memory range = Range(gpa, P(4));
  EXPECT_THAT(PreFault(range), SyscallSucceeds());
  EXPECT_EQ(range.size, 0u);
  ASSERT_OK_AND_ASSIGN(size_t after, ResidentCount(map));
  EXPECT_EQ(after, 4u) << "guest_memfd pages allocated";
  ASSERT_OK_AND_ASSIGN(size_t decoy_after, ResidentCount(decoy));
  EXPECT_EQ(decoy_after, 0u) << "pages of userspace_addr faulted in";
}

// ---- private GPAs of a KVM_X86_SW_PROTECTED_VM ----

// A KVM_X86_SW_PROTECTED_VM, its anonymous slot (kSlotGpa, no guest_memfd) and a guest_memfd slot
// of kSlotPages at kGmemGpa whose shared memory is more anonymous memory.
class PreFaultPrivate : public PreFaultMemory {
 protected:
  PreFaultPrivate() : PreFaultMemory(KVM_X86_SW_PROTECTED_VM) {}
  void SetUp() override {
    PreFaultMemory::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    REQUIRE_FEATURE("kvm.cap.MEMORY_ATTRIBUTES");
    REQUIRE_FEATURE("gmem.SW_PROTECTED");
    REQUIRE_FEATURE(GmemBindFeature(KVM_X86_SW_PROTECTED_VM));
    ASSERT_OK_AND_ASSIGN(gmem_, vm().CreateGuestMemfd(P(kSlotPages)));
    ASSERT_OK_AND_ASSIGN(shared_, MapAnonymous(P(kSlotPages)));
    ASSERT_OK_AND_ASSIGN(gmem_slot_, Memslot::Create(vm(), GmemRegion(2, kGmemGpa, P(kSlotPages), gmem_, 0, shared_.start())));
  }
  SyscallResult SetPrivate(uint64_t gpa, uint64_t size) const {
    return vm().RawSetMemoryAttributes(gpa, size, KVM_MEMORY_ATTRIBUTE_PRIVATE);
  }
  static constexpr uint64_t kGmemGpa = 1ULL << 31;
  GuestMemfd gmem_;
  Mapping shared_;
  Memslot gmem_slot_;
};

// Private GPAs backed by guest_memfd are mapped from it, and the shared memory is not touched.
TEST_F(PreFaultPrivate, MapsPrivateGpasFromGuestMemfd) {
  ASSERT_THAT(SetPrivate(kGmemGpa, P(4)), SyscallSucceeds());
  kvm_pre_fault_memory range = Range(kGmemGpa, P(4));
  EXPECT_THAT(PreFault(range), SyscallSucceeds());
  EXPECT_EQ(range.gpa, kGmemGpa + P(4));
  EXPECT_EQ(range.size, 0u);
  ASSERT_OK_AND_ASSIGN(size_t resident, ResidentCount(shared_));
  EXPECT_EQ(resident, 0u) << "pre-faulting private GPAs faulted in shared memory";
}

// Private GPAs in a slot without guest_memfd cannot be mapped: EFAULT, with no progress reported.
TEST_F(PreFaultPrivate, PrivateGpasWithoutGuestMemfdFailWithEfault) {
  ASSERT_THAT(SetPrivate(kSlotGpa, P(2)), SyscallSucceeds());
  kvm_pre_fault_memory range = Range(kSlotGpa, P(2));
  EXPECT_THAT(PreFault(range), SyscallFailsWithErrno(EFAULT));
  EXPECT_EQ(range.gpa, kSlotGpa);
  EXPECT_EQ(range.size, P(2));
}

// Shared GPAs of the same slots map as on any VM: from userspace_addr beside a guest_memfd too.
TEST_F(PreFaultPrivate, SharedGpasMapFromUserspaceAddr) {
  kvm_pre_fault_memory plain = Range(kSlotGpa, P(2));
  EXPECT_THAT(PreFault(plain), SyscallSucceeds());
  kvm_pre_fault_memory beside = Range(kGmemGpa, P(2));
  EXPECT_THAT(PreFault(beside), SyscallSucceeds());
  EXPECT_EQ(beside.size, 0u);
  ASSERT_OK_AND_ASSIGN(size_t resident, ResidentCount(shared_));
  EXPECT_EQ(resident, 2u) << "shared GPAs are mapped from userspace_addr's pages";
}

}  // namespace
}  // namespace gmem
