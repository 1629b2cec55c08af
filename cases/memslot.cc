// KVM_SET_USER_MEMORY_REGION2 with KVM_MEM_GUEST_MEMFD: which bindings of a guest_memfd file the
// kernel accepts, what a bound slot allows, and what happens when either side goes away.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <span>
#include <thread>

#include <cstring>

#include <fmt/format.h>

#include "fixtures/backends.h"
#include "fixtures/guest.h"
#include "fixtures/guest_payloads.h"
#include "fixtures/kernel_changes.h"
#include "fixtures/kvm.h"
#include "fixtures/require.h"
#include "fixtures/shared_gmem.h"
#include "fixtures/syscall_matchers.h"
#include "fixtures/vm_fixture.h"

namespace gmem {
namespace {

constexpr uint64_t kGpa = 1ULL << 30;

// A VM that binds guest_memfd memslots: the default VM where it can, else a
// KVM_X86_SW_PROTECTED_VM (older kernels, 6.12 for one, create guest_memfd files on any VM but
// bind them only on VM types with private memory; the per-VM KVM_CAP_GUEST_MEMFD tells which).
class MemslotBinding : public VmTest {
 protected:
  MemslotBinding() : VmTest(GmemBindingVmType()) {}
  void SetUp() override {
    VmTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    REQUIRE_FEATURE("gmem");
    REQUIRE_FEATURE(GmemBindFeature(vm().type()));
  }

  static uint64_t P(uint64_t pages) { return pages * page_size(); }

  // Binds `gmem` [offset, offset + size) at `gpa` in `slot` of the fixture's VM.
  SyscallResult Bind(uint32_t slot, uint64_t gpa, uint64_t size, const GuestMemfd& gmem,
                     uint64_t offset, uint64_t userspace_addr = 0) const {
    return vm().RawSetMemoryRegion2(GmemRegion(slot, gpa, size, gmem, offset, userspace_addr));
  }
  // The same, with another file descriptor where the guest_memfd should be.
  SyscallResult BindFd(int fd, const GuestMemfd& gmem) const {
    kvm_userspace_memory_region2 region = GmemRegion(1, kGpa, P(1), gmem, 0);
    region.guest_memfd = static_cast<__u32>(fd);
    return vm().RawSetMemoryRegion2(region);
  }
  // A plain (userspace memory) slot: the test of whether a GPA range is still taken.
  SyscallResult BindAnonymous(uint32_t slot, uint64_t gpa, const Mapping& memory) const {
    kvm_userspace_memory_region2 region{};
    region.slot = slot;
    region.guest_phys_addr = gpa;
    region.memory_size = memory.length();
    region.userspace_addr = memory.start();
    return vm().RawSetMemoryRegion2(region);
  }
};

// Offsets inside the file bind; neighbouring ranges of one file bind to different slots.
TEST_F(MemslotBinding, BindsRangesInsideTheFile) {
  ASSERT_OK_AND_ASSIGN(GuestMemfd gmem, vm().CreateGuestMemfd(P(4)));
  EXPECT_THAT(Bind(1, kGpa, P(2), gmem, 0), SyscallSucceeds());
  EXPECT_THAT(Bind(2, kGpa + P(8), P(2), gmem, P(2)), SyscallSucceeds());
}

// Offsets that are not page aligned are refused.
TEST_F(MemslotBinding, RejectsUnalignedOffset) {
  ASSERT_OK_AND_ASSIGN(GuestMemfd gmem, vm().CreateGuestMemfd(P(4)));
  for (uint64_t offset : {uint64_t{1}, P(1) / 2, P(1) - 1, P(1) + 8})
    EXPECT_THAT(Bind(1, kGpa, P(1), gmem, offset), SyscallFailsWithErrno(EINVAL));
}

// A range reaching past the end of the file is refused.
TEST_F(MemslotBinding, RejectsRangePastEndOfFile) {
  ASSERT_OK_AND_ASSIGN(GuestMemfd gmem, vm().CreateGuestMemfd(P(4)));
  EXPECT_THAT(Bind(1, kGpa, P(2), gmem, P(3)), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(Bind(1, kGpa, P(1), gmem, P(4)), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(Bind(1, kGpa, P(5), gmem, 0), SyscallFailsWithErrno(EINVAL));
}

// Offsets at or above 2^63, and offset + size wrapping past 2^64, are refused.
TEST_F(MemslotBinding, RejectsHugeOffsets) {
  ASSERT_OK_AND_ASSIGN(GuestMemfd gmem, vm().CreateGuestMemfd(P(4)));
  EXPECT_THAT(Bind(1, kGpa, P(1), gmem, 1ULL << 63), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(Bind(1, kGpa, P(2), gmem, ~(P(1) - 1)), SyscallFailsWithErrno(EINVAL));
}

// An offset whose sum with the size passes 2^63: accepted while the check was signed (before 7.2,
// unless the fix was backported), EINVAL since.
TEST_F(MemslotBinding, OffsetPlusSizePastTwoToThe63) {
  ChangeVerdict change = ForRunningKernel("gmem_bind_signed_overflow");
  SCOPED_TRACE(change.explanation());
  ASSERT_TRUE(change.known());
  ASSERT_OK_AND_ASSIGN(GuestMemfd gmem, vm().CreateGuestMemfd(P(4)));
  SyscallResult bound = Bind(1, kGpa, P(2), gmem, (1ULL << 63) - P(1));
  if (change.gives_new())
    EXPECT_THAT(bound, SyscallFailsWithErrno(EINVAL));
  else if (!bound.ok())  // the fix is backported to stable kernels (6.12.117 has it)
    EXPECT_THAT(bound, SyscallFailsWithErrno(EINVAL));
  else
    EXPECT_THAT(bound, SyscallSucceeds());  // deleted with the VM; nothing touches it
}

// File offsets already bound to another slot are refused, even at a free GPA range.
TEST_F(MemslotBinding, RejectsOverlappingFileRange) {
  ChangeVerdict change = ForRunningKernel("gmem_bind_overlap");
  SCOPED_TRACE(change.explanation());
  ASSERT_TRUE(change.known());
  ASSERT_OK_AND_ASSIGN(GuestMemfd gmem, vm().CreateGuestMemfd(P(8)));
  ASSERT_THAT(Bind(1, kGpa, P(4), gmem, P(2)), SyscallSucceeds());  // file pages [2, 6)
  struct Pages { uint64_t first, count; };
  for (Pages overlap : {Pages{0, 3}, Pages{4, 3}, Pages{3, 1}})  // the front, the back, inside
    EXPECT_THAT(Bind(2, kGpa + P(16), P(overlap.count), gmem, P(overlap.first)),
                SyscallFailsWithErrno(change.Pick(EINVAL, EEXIST)));
}

// GPA ranges that overlap another slot are refused with EEXIST, whatever the file offsets.
TEST_F(MemslotBinding, RejectsOverlappingGpaRange) {
  ASSERT_OK_AND_ASSIGN(GuestMemfd gmem, vm().CreateGuestMemfd(P(8)));
  ASSERT_THAT(Bind(1, kGpa, P(2), gmem, 0), SyscallSucceeds());
  EXPECT_THAT(Bind(2, kGpa + P(1), P(2), gmem, P(4)), SyscallFailsWithErrno(EEXIST));
  EXPECT_THAT(Bind(2, kGpa - P(1), P(2), gmem, P(4)), SyscallFailsWithErrno(EEXIST));
}

// A guest_memfd created by another VM cannot be bound.
TEST_F(MemslotBinding, RejectsAnotherVmsGmem) {
  ASSERT_OK_AND_ASSIGN(Vm other, kvm().CreateVm(vm().type()));
  ASSERT_OK_AND_ASSIGN(GuestMemfd foreign, other.CreateGuestMemfd(P(4)));
  EXPECT_THAT(Bind(1, kGpa, P(1), foreign, 0), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(other.RawSetMemoryRegion2(GmemRegion(1, kGpa, P(1), foreign, 0)), SyscallSucceeds());
}

// File descriptors that are not a guest_memfd are refused; a number with no open file, with EBADF.
TEST_F(MemslotBinding, RejectsOtherFileDescriptors) {
  ASSERT_OK_AND_ASSIGN(GuestMemfd gmem, vm().CreateGuestMemfd(P(4)));
  ASSERT_OK_AND_ASSIGN(BackendFile memfd, FindBackend("memfd")->Create(P(4)));
  EXPECT_THAT(BindFd(memfd.fd.get(), gmem), SyscallFailsWithErrno(EINVAL)) << "a memfd";
  EXPECT_THAT(BindFd(kvm().fd(), gmem), SyscallFailsWithErrno(EINVAL)) << "the /dev/kvm fd";
  EXPECT_THAT(BindFd(vm().fd(), gmem), SyscallFailsWithErrno(EINVAL)) << "the VM fd";
  EXPECT_THAT(BindFd(INT_MAX, gmem), SyscallFailsWithErrno(EBADF)) << "no open file";
}

// A descriptor number that was a guest_memfd but has been closed is EBADF, as is (u32)-1.
TEST_F(MemslotBinding, RejectsClosedAndNegativeDescriptors) {
  ASSERT_OK_AND_ASSIGN(GuestMemfd gmem, vm().CreateGuestMemfd(P(4)));
  ASSERT_OK_AND_ASSIGN(GuestMemfd closed, vm().CreateGuestMemfd(P(4)));
  int number = closed.fd();
  closed.release().reset();
  EXPECT_THAT(BindFd(number, gmem), SyscallFailsWithErrno(EBADF)) << "a closed guest_memfd's number";
  EXPECT_THAT(BindFd(-1, gmem), SyscallFailsWithErrno(EBADF)) << "guest_memfd = (u32)-1";
}

// The legacy KVM_SET_USER_MEMORY_REGION has no guest_memfd fields: KVM_MEM_GUEST_MEMFD is an
// unknown flag there.
TEST_F(MemslotBinding, LegacyIoctlRefusesGuestMemfdFlag) {
  ASSERT_OK_AND_ASSIGN(GuestMemfd gmem, vm().CreateGuestMemfd(P(4)));
  ASSERT_OK_AND_ASSIGN(Mapping memory, MapAnonymous(P(1)));
  EXPECT_THAT(vm().RawSetMemoryRegion(GmemRegion(1, kGpa, P(1), gmem, 0, memory.start())),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(BindAnonymous(1, kGpa, memory), SyscallSucceeds()) << "the GPA range was left free";
}

// The last page of the file binds (offset + size = file size); one page further is refused.
TEST_F(MemslotBinding, OffsetBoundsAtTheEndOfTheFile) {
  ASSERT_OK_AND_ASSIGN(GuestMemfd gmem, vm().CreateGuestMemfd(P(4)));
  EXPECT_THAT(Bind(1, kGpa, P(1), gmem, P(3)), SyscallSucceeds()) << "below the size";
  EXPECT_THAT(Bind(2, kGpa + P(1), P(1), gmem, P(4)), SyscallFailsWithErrno(EINVAL)) << "at the size";
  EXPECT_THAT(Bind(2, kGpa + P(1), P(1), gmem, P(5)), SyscallFailsWithErrno(EINVAL)) << "above the size";
  EXPECT_THAT(Bind(2, kGpa + P(1), P(1), gmem, P(3) + P(1) / 2), SyscallFailsWithErrno(EINVAL)) << "unaligned";
}

// Dirty logging is refused on a guest_memfd slot, on its own flag or added to an existing slot.
TEST_F(MemslotBinding, RejectsDirtyLogging) {
  ASSERT_OK_AND_ASSIGN(GuestMemfd gmem, vm().CreateGuestMemfd(P(4)));
  kvm_userspace_memory_region2 region = GmemRegion(1, kGpa, P(2), gmem, 0);
  kvm_userspace_memory_region2 logged = region;
  logged.flags |= KVM_MEM_LOG_DIRTY_PAGES;
  EXPECT_THAT(vm().RawSetMemoryRegion2(logged), SyscallFailsWithErrno(EINVAL));
  ASSERT_OK_AND_ASSIGN(Memslot slot, Memslot::Create(vm(), region));
  EXPECT_THAT(vm().RawSetMemoryRegion2(logged), SyscallFailsWithErrno(EINVAL)) << "turned on later";
}

// A dup()ed descriptor is the same guest_memfd: it binds, and the file stays alive and usable
// through it after the original descriptor is closed.
TEST_F(MemslotBinding, DupedDescriptorKeepsTheFile) {
  ASSERT_OK_AND_ASSIGN(GuestMemfd gmem, vm().CreateGuestMemfd(P(4)));
  FileDescriptor copy(dup(gmem.fd()));
  ASSERT_TRUE(copy.valid()) << "dup: " << strerror(errno);
  gmem.release().reset();
  kvm_userspace_memory_region2 region = GmemRegion(1, kGpa, P(2), gmem, 0);
  region.guest_memfd = static_cast<__u32>(copy.get());
  EXPECT_THAT(vm().RawSetMemoryRegion2(region), SyscallSucceeds());
  EXPECT_EQ(fallocate(copy.get(), FALLOC_FL_KEEP_SIZE, 0, static_cast<off_t>(P(4))), 0)
      << "fallocate through the copy: " << strerror(errno);
  struct stat st {};
  ASSERT_EQ(fstat(copy.get(), &st), 0);
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), P(4));
}

// No other memslot flag (dirty logging, read-only, unknown bits) combines with KVM_MEM_GUEST_MEMFD;
// KVM Userfault's flag, where the kernel has it, is kvm_userfault.cc's.
TEST_F(MemslotBinding, RejectsOtherFlagsAlongside) {
  ASSERT_OK_AND_ASSIGN(GuestMemfd gmem, vm().CreateGuestMemfd(P(4)));
  const uint64_t userfault = ProbedFeatures().Value("memslot.flag.USERFAULT");
  for (int bit = 0; bit < 32; ++bit) {
    kvm_userspace_memory_region2 region = GmemRegion(1, kGpa, P(1), gmem, 0);
    if ((1U << bit) == KVM_MEM_GUEST_MEMFD || (1U << bit) == userfault) continue;
    region.flags |= 1U << bit;
    EXPECT_THAT(vm().RawSetMemoryRegion2(region), SyscallFailsWithErrno(EINVAL));
  }
}

// A guest_memfd slot is immutable: moving it, re-setting it or dropping the flag is refused. With
// KVM Userfault (kvm-userfault-v3 04/15) only moving is refused, so re-setting it unchanged is
// accepted as a no-op.
TEST_F(MemslotBinding, SlotCannotBeMovedOrModified) {
  ASSERT_OK_AND_ASSIGN(GuestMemfd gmem, vm().CreateGuestMemfd(P(4)));
  kvm_userspace_memory_region2 region = GmemRegion(1, kGpa, P(2), gmem, 0);
  ASSERT_OK_AND_ASSIGN(Memslot slot, Memslot::Create(vm(), region));
  kvm_userspace_memory_region2 moved = region;
  moved.guest_phys_addr = kGpa + P(16);
  EXPECT_THAT(vm().RawSetMemoryRegion2(moved), SyscallFailsWithErrno(EINVAL));
  if (ProbedFeatures().Has("memslot.flag.USERFAULT"))
    EXPECT_THAT(vm().RawSetMemoryRegion2(region), SyscallSucceeds());
  else
    EXPECT_THAT(vm().RawSetMemoryRegion2(region), SyscallFailsWithErrno(EINVAL));
  kvm_userspace_memory_region2 plain = region;
  plain.flags = 0;
  EXPECT_THAT(vm().RawSetMemoryRegion2(plain), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(slot.Delete(), SyscallSucceeds());
}

// Deleting a slot unbinds its file range: the range binds again, in the same or another slot.
TEST_F(MemslotBinding, UnbindAndRebind) {
  ASSERT_OK_AND_ASSIGN(GuestMemfd gmem, vm().CreateGuestMemfd(P(4)));
  ASSERT_OK_AND_ASSIGN(Memslot first, Memslot::Create(vm(), GmemRegion(1, kGpa, P(4), gmem, 0)));
  ASSERT_THAT(first.Delete(), SyscallSucceeds());
  ASSERT_OK_AND_ASSIGN(Memslot second, Memslot::Create(vm(), GmemRegion(2, kGpa + P(16), P(4), gmem, 0)));
  ASSERT_THAT(second.Delete(), SyscallSucceeds());
  EXPECT_THAT(Bind(1, kGpa, P(4), gmem, 0), SyscallSucceeds());
}

// Closing the guest_memfd leaves its slot in place (its GPAs stay taken) and deletable.
TEST_F(MemslotBinding, ClosingBoundGmemKeepsTheSlot) {
  ASSERT_OK_AND_ASSIGN(GuestMemfd gmem, vm().CreateGuestMemfd(P(4)));
  ASSERT_OK_AND_ASSIGN(Memslot slot, Memslot::Create(vm(), GmemRegion(1, kGpa, P(4), gmem, 0)));
  gmem.release().reset();
  ASSERT_OK_AND_ASSIGN(Mapping memory, MapAnonymous(P(1)));
  EXPECT_THAT(BindAnonymous(2, kGpa, memory), SyscallFailsWithErrno(EEXIST));
  EXPECT_THAT(slot.Delete(), SyscallSucceeds());
  EXPECT_THAT(BindAnonymous(2, kGpa, memory), SyscallSucceeds());
}

// What the host wrote into a guest_memfd is still there after its VM is gone.
TEST_F(MemslotBinding, DataWrittenBeforeTheVmClosesSurvivesIt) {
  REQUIRE_FEATURE("gmem.flag.MMAP");
  REQUIRE_FEATURE("gmem.flag.INIT_SHARED");
  GuestMemfd gmem;
  Mapping memory;
  {
    ASSERT_OK_AND_ASSIGN(Vm other, kvm().CreateVm(vm().type()));
    ASSERT_OK_AND_ASSIGN(gmem, other.CreateGuestMemfd(P(4), kHostSharedGmemFlags));
    ASSERT_OK_AND_ASSIGN(memory, gmem.Map(P(4)));
    ASSERT_THAT(other.RawSetMemoryRegion2(GmemRegion(1, kGpa, P(4), gmem, 0)), SyscallSucceeds());
    memory.bytes()[P(2) + 7] = 0x6b;
  }
  EXPECT_EQ(memory.bytes()[P(2) + 7], 0x6b) << "through the mapping made before";
  ASSERT_OK_AND_ASSIGN(Mapping again, gmem.Map(P(4)));
  EXPECT_EQ(again.bytes()[P(2) + 7], 0x6b) << "through a mapping made after";
}

// A mapping keeps the guest_memfd alive after its last descriptor closes: the memory stays
// readable and writable through it.
TEST_F(MemslotBinding, MappingKeepsTheFileAfterClose) {
  REQUIRE_FEATURE("gmem.flag.MMAP");
  REQUIRE_FEATURE("gmem.flag.INIT_SHARED");
  ASSERT_OK_AND_ASSIGN(GuestMemfd gmem, vm().CreateGuestMemfd(P(2), kHostSharedGmemFlags));
  ASSERT_OK_AND_ASSIGN(Mapping memory, gmem.Map(P(2)));
  memory.bytes()[P(1)] = 0x4d;
  gmem.release().reset();
  EXPECT_EQ(memory.bytes()[P(1)], 0x4d);
  memory.bytes()[0] = 0x4e;
  EXPECT_EQ(memory.bytes()[0], 0x4e);
}

// A guest_memfd keeps working after every descriptor of its VM is closed, even with a slot bound.
TEST_F(MemslotBinding, GmemOutlivesItsVm) {
  REQUIRE_FEATURE("gmem.flag.MMAP");
  REQUIRE_FEATURE("gmem.flag.INIT_SHARED");
  GuestMemfd gmem;
  {
    ASSERT_OK_AND_ASSIGN(Vm other, kvm().CreateVm(vm().type()));
    ASSERT_OK_AND_ASSIGN(gmem, other.CreateGuestMemfd(P(4), GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED));
    ASSERT_THAT(other.RawSetMemoryRegion2(GmemRegion(1, kGpa, P(2), gmem, 0)), SyscallSucceeds());
  }
  ASSERT_OK_AND_ASSIGN(Mapping memory, gmem.Map(P(4)));
  memory.bytes()[P(1)] = 0x5a;
  EXPECT_EQ(memory.bytes()[P(1)], 0x5a);
  EXPECT_THAT(gmem.RawFallocate(FALLOC_FL_KEEP_SIZE, 0, static_cast<off_t>(P(4))), SyscallSucceeds());
  EXPECT_THAT(gmem.RawPunchHole(static_cast<off_t>(P(1)), static_cast<off_t>(P(1))), SyscallSucceeds());
  EXPECT_EQ(memory.bytes()[P(1)], 0) << "a punched page reads back as zeroes";
  struct stat st {};
  ASSERT_EQ(fstat(gmem.fd(), &st), 0);
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), P(4));
}

// userspace_addr of a guest_memfd slot only has to be a legal user address: 0 and unrelated
// memory are accepted for a mappable guest_memfd too.
TEST_F(MemslotBinding, AcceptsAnyLegalUserspaceAddr) {
  REQUIRE_FEATURE("gmem.flag.MMAP");
  ASSERT_OK_AND_ASSIGN(GuestMemfd gmem, vm().CreateGuestMemfd(P(4), GUEST_MEMFD_FLAG_MMAP));
  ASSERT_OK_AND_ASSIGN(Mapping unrelated, MapAnonymous(P(1)));
  EXPECT_THAT(Bind(1, kGpa, P(1), gmem, 0, 0), SyscallSucceeds());
  EXPECT_THAT(Bind(2, kGpa + P(1), P(1), gmem, P(1), unrelated.start()), SyscallSucceeds());
}

// An unaligned or non-user userspace_addr is refused even though guest_memfd backs the slot.
TEST_F(MemslotBinding, RejectsIllegalUserspaceAddr) {
  ASSERT_OK_AND_ASSIGN(GuestMemfd gmem, vm().CreateGuestMemfd(P(4)));
  ASSERT_OK_AND_ASSIGN(Mapping memory, MapAnonymous(P(2)));
  EXPECT_THAT(Bind(1, kGpa, P(1), gmem, 0, memory.start() + 8), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(Bind(1, kGpa, P(1), gmem, 0, 0xffff800000000000ULL), SyscallFailsWithErrno(EINVAL));
}

// ---- with a vCPU running guest code (guest reads and writes through a guest_memfd slot are
// conversion_vm_attributes.cc's GuestMemfdSharing) ----

// Runs the probe payload (OUT kProbeValue to kProbePort, then HLT) to its end.
::testing::AssertionResult RunsProbePayload(const Vcpu& vcpu) {
  for (uint32_t want : {KVM_EXIT_IO, KVM_EXIT_HLT}) {
    SyscallResult r = vcpu.RawRun();
    if (!r.ok()) return ::testing::AssertionFailure() << r.Describe();
    if (vcpu.run()->exit_reason != want)
      return ::testing::AssertionFailure() << "KVM_RUN exited with " << ExitReasonName(vcpu.run()->exit_reason)
                                           << ", expected " << ExitReasonName(want);
  }
  return ::testing::AssertionSuccess();
}

// A VM of the binding type (see MemslotBinding) whose vCPU runs `code` from an anonymous slot
// below kGuestMemSize; guest_memfd slots go at kGuestMemSize.
class MemslotGuest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_NO_FATAL_FAILURE(StartGuest(kOutThenHlt)); }
  void StartGuest(std::span<const uint8_t> code) {
    REQUIRE_FEATURE("gmem");
    REQUIRE_FEATURE(GmemBindFeature(GmemBindingVmType()));
    REQUIRE_FEATURE("vcpu.runs_guest_code");
    ASSERT_OK_AND_ASSIGN(Kvm kvm, Kvm::Open());
    ASSERT_OK_AND_ASSIGN(guest_, CreateRealModeGuest(kvm, GmemBindingVmType(), code));
  }
  // Host-shared (MMAP|INIT_SHARED) where the kernel has it, else without flags.
  Result<GuestMemfd> NewGmem() const {
    bool shared = ProbedFeatures().Has("gmem.flag.MMAP") && ProbedFeatures().Has("gmem.flag.INIT_SHARED");
    return guest_.vm.CreateGuestMemfd(kPage, shared ? kHostSharedGmemFlags : 0);
  }
  const uint64_t kPage = static_cast<uint64_t>(getpagesize());
  RealModeGuest guest_;
};

// Closing a bound guest_memfd does not break the VM: its vCPU runs, the slot deletes, the GPA rebinds.
TEST_F(MemslotGuest, VmRunsAfterBoundGmemIsClosed) {
  ASSERT_OK_AND_ASSIGN(GuestMemfd gmem, NewGmem());
  ASSERT_OK_AND_ASSIGN(Memslot slot, Memslot::Create(guest_.vm, GmemRegion(1, kGuestMemSize, kPage, gmem, 0)));
  gmem.release().reset();
  EXPECT_TRUE(RunsProbePayload(guest_.vcpu));
  EXPECT_THAT(slot.Delete(), SyscallSucceeds());
  ASSERT_OK_AND_ASSIGN(GuestMemfd again, NewGmem());
  EXPECT_THAT(guest_.vm.RawSetMemoryRegion2(GmemRegion(1, kGuestMemSize, kPage, again, 0)), SyscallSucceeds());
}

// Reads the byte at GPA kGuestMemSize + 0x123 once and reports it on kProbePort, then keeps
// reading it in a loop: mov ax,0x1000; mov ds,ax; mov al,[0x123]; out 0x10,al; l: mov al,[0x123]; jmp l
constexpr uint8_t kReadThenSpinReading[] = {0xb8, 0x00, 0x10, 0x8e, 0xd8, 0xa0, 0x23, 0x01,
                                            0xe6, 0x10, 0xa0, 0x23, 0x01, 0xeb, 0xfb};
constexpr uint64_t kSpinGpa = kGuestMemSize + 0x123;

class MemslotGuestSpinning : public MemslotGuest {
 protected:
  void SetUp() override { ASSERT_NO_FATAL_FAILURE(StartGuest(kReadThenSpinReading)); }
};

// Deleting a guest_memfd slot while a vCPU keeps reading from it takes the page away from the
// running guest: its next access to the GPA, now in no memslot, exits to userspace as MMIO.
TEST_F(MemslotGuestSpinning, SlotDeletedWhileVcpuRunsExitsAsMmio) {
  ASSERT_OK_AND_ASSIGN(GuestMemfd gmem, NewGmem());
  ASSERT_OK_AND_ASSIGN(Mapping shared, MapAnonymous(kPage));  // shared GPAs of a SW_PROTECTED VM
  ASSERT_OK_AND_ASSIGN(Memslot slot, Memslot::Create(guest_.vm, GmemRegion(1, kGuestMemSize, kPage, gmem, 0, shared.start())));
  SyscallResult first = RunVcpuBounded(guest_.vcpu);
  ASSERT_TRUE(first.ok() && guest_.vcpu.run()->exit_reason == KVM_EXIT_IO)
      << first.Describe() << " exited with " << ExitReasonName(guest_.vcpu.run()->exit_reason)
      << ", expected KVM_EXIT_IO after the guest's first read of the slot";

  SyscallResult spinning;
  std::thread vcpu([&] { spinning = RunVcpuBounded(guest_.vcpu); });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // let it loop in the slot
  SyscallResult deleted = slot.Delete();
  vcpu.join();
  EXPECT_THAT(deleted, SyscallSucceeds());
  const kvm_run* run = guest_.vcpu.run();
  ASSERT_THAT(spinning, SyscallSucceeds());
  EXPECT_EQ(run->exit_reason, KVM_EXIT_MMIO) << ExitReasonName(run->exit_reason);
  if (run->exit_reason == KVM_EXIT_MMIO) {
    EXPECT_EQ(run->mmio.phys_addr, kSpinGpa);
    EXPECT_FALSE(run->mmio.is_write);
  }
}

// ---- which VM types bind guest_memfd at all ----

class GmemBindingByVmType : public VmTest, public ::testing::WithParamInterface<unsigned long> {
 protected:
  GmemBindingByVmType() : VmTest(GetParam()) {}
};

// KVM_MEM_GUEST_MEMFD binds exactly on the VM types whose KVM_CAP_GUEST_MEMFD (per VM) is
// non-zero; on the others a guest_memfd the VM created is refused with EINVAL.
TEST_P(GmemBindingByVmType, BindsExactlyWhereTheVmCapabilitySays) {
  REQUIRE_FEATURE("gmem." + VmTypeShortName(GetParam()));
  const uint64_t page = page_size();
  long cap = vm().CheckExtension(KVM_CAP_GUEST_MEMFD);
  SCOPED_TRACE(fmt::format("KVM_CHECK_EXTENSION(KVM_CAP_GUEST_MEMFD) on a {} = {}", VmTypeName(GetParam()), cap));
  ASSERT_OK_AND_ASSIGN(GuestMemfd gmem, vm().CreateGuestMemfd(2 * page));
  ASSERT_OK_AND_ASSIGN(Mapping shared, MapAnonymous(page));
  SyscallResult bound = vm().RawSetMemoryRegion2(GmemRegion(1, kGpa, page, gmem, 0, shared.start()));
  if (cap > 0)
    EXPECT_THAT(bound, SyscallSucceeds());
  else
    EXPECT_THAT(bound, SyscallFailsWithErrno(EINVAL));
}

INSTANTIATE_TEST_SUITE_P(, GmemBindingByVmType,
                         ::testing::Values(KVM_X86_DEFAULT_VM, KVM_X86_SW_PROTECTED_VM),
                         [](const ::testing::TestParamInfo<unsigned long>& info) {
                           return VmTypeName(info.param);
                         });

}  // namespace
}  // namespace gmem
