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

// Pre-faulting a slot of a mappable guest_memfd allocates the file's pages.
TEST_F(PreFaultMemory, AllocatesGuestMemfdPages) {
  REQUIRE_FEATURE("gmem");
  REQUIRE_FEATURE("gmem.flag.MMAP");
  REQUIRE_FEATURE("gmem.flag.INIT_SHARED");
  if (vm().CheckExtension(KVM_CAP_GUEST_MEMFD) == 0)
    GTEST_SKIP() << "KVM_CHECK_EXTENSION(KVM_CAP_GUEST_MEMFD) on a KVM_X86_DEFAULT_VM = 0";
  ASSERT_OK_AND_ASSIGN(GuestMemfd gmem, vm().CreateGuestMemfd(P(4), GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED));
  uint64_t gpa = kSlotGpa + P(64);
  ASSERT_OK_AND_ASSIGN(Mapping map, gmem.Map(P(4)));
  ASSERT_OK_AND_ASSIGN(Memslot slot, Memslot::Create(vm(), GmemRegion(2, gpa, P(4), gmem, 0, map.start())));
  ASSERT_OK_AND_ASSIGN(size_t before, ResidentCount(map));
  ASSERT_EQ(before, 0u);
  kvm_pre_fault_memory range = Range(gpa, P(4));
  EXPECT_THAT(PreFault(range), SyscallSucceeds());
  EXPECT_EQ(range.size, 0u);
  ASSERT_OK_AND_ASSIGN(size_t after, ResidentCount(map));
  EXPECT_EQ(after, 4u);
}

}  // namespace
}  // namespace gmem
