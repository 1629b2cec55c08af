// Shared/private memory on mainline: KVM_SET_MEMORY_ATTRIBUTES on the VM, what a guest reads and
// writes through guest_memfd-backed memslots, and KVM_EXIT_MEMORY_FAULT on a mismatch.
//
// The private cases need KVM_X86_SW_PROTECTED_VM (CONFIG_KVM_SW_PROTECTED_VM); the sharing cases
// run on a KVM_X86_DEFAULT_VM with guest_memfd mmap. Guest code is fixtures/guest_payloads.h's agent.

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <optional>

#include "fixtures/fault.h"
#include "fixtures/guest_payloads.h"
#include "fixtures/kvm.h"
#include "fixtures/require.h"
#include "fixtures/shared_gmem.h"
#include "fixtures/syscall_matchers.h"
#include "fixtures/vm_fixture.h"

namespace gmem {
namespace {

uint64_t PageSize() { return static_cast<uint64_t>(getpagesize()); }

// A byte inside page `page` of the agent's window; not at offset 0, so a page-granular mix-up
// cannot hide behind the first byte.
uint64_t Gpa(uint64_t page) { return kAgentDataGpa + page * PageSize() + 0x123; }
size_t HostOffset(uint64_t page) { return page * PageSize() + 0x123; }

// ---- KVM_SET_MEMORY_ATTRIBUTES: what each VM type accepts (the capability per VM type is
// memory_attributes.cc's) ----

using DefaultVmAttributes = VmTest;

class VmAttributes : public VmTest {
 protected:
  VmAttributes() : VmTest(KVM_X86_SW_PROTECTED_VM) {}
};

// A VM without private memory refuses PRIVATE: the ioctl reports no attributes (EINVAL), or is not
// built at all (ENOTTY) when KVM has no memory attributes (KVM_CAP_MEMORY_ATTRIBUTES = 0).
TEST_F(DefaultVmAttributes, RefusesPrivate) {
  SyscallResult r = vm().RawSetMemoryAttributes(kAgentDataGpa, PageSize(), KVM_MEMORY_ATTRIBUTE_PRIVATE);
  if (ProbedFeatures().Has("kvm.cap.MEMORY_ATTRIBUTES")) {
    EXPECT_THAT(r, SyscallFailsWithErrno(EINVAL));
  } else if (ProbedFeatures().Has("gmem.ioctl.SET_MEMORY_ATTRIBUTES2")) {
    // In-place conversion retires per-VM attributes (the capability reads 0): the VM ioctl is
    // either compiled out or supports nothing, as CONFIG_KVM_VM_MEMORY_ATTRIBUTES decides.
    EXPECT_THAT(r, SyscallFailsWithOneOf(ENOTTY, EINVAL));
  } else {
    EXPECT_THAT(r, SyscallFailsWithErrno(ENOTTY));
  }
}

// Clearing every attribute is a no-op a VM without private memory accepts (where the ioctl exists).
TEST_F(DefaultVmAttributes, AcceptsNoAttributes) {
  REQUIRE_FEATURE("kvm.cap.MEMORY_ATTRIBUTES");
  EXPECT_THAT(vm().RawSetMemoryAttributes(kAgentDataGpa, PageSize(), 0), SyscallSucceeds());
}

// Non-zero flags, attribute bits other than PRIVATE, empty, unaligned and wrapping ranges: EINVAL.
TEST_F(VmAttributes, RejectsInvalidArguments) {
  REQUIRE_FEATURE("kvm.cap.MEMORY_ATTRIBUTES");
  const uint64_t page = PageSize(), gpa = kAgentDataGpa, priv = KVM_MEMORY_ATTRIBUTE_PRIVATE;
  EXPECT_THAT(vm().RawSetMemoryAttributes(gpa, page, priv, 1), SyscallFailsWithErrno(EINVAL));
  for (int bit = 0; bit < 64; ++bit) {
    if ((1ULL << bit) == priv) continue;
    EXPECT_THAT(vm().RawSetMemoryAttributes(gpa, page, 1ULL << bit), SyscallFailsWithErrno(EINVAL));
  }
  EXPECT_THAT(vm().RawSetMemoryAttributes(gpa, 0, priv), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(vm().RawSetMemoryAttributes(gpa + 1, page, priv), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(vm().RawSetMemoryAttributes(gpa, page + 1, priv), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(vm().RawSetMemoryAttributes(~uint64_t{0} & ~(page - 1), 2 * page, priv),
              SyscallFailsWithErrno(EINVAL));
}

// Attributes are per GPA, memslot or not; setting what is already set succeeds as a no-op.
TEST_F(VmAttributes, AcceptsRangesWithoutMemslotAndRepeats) {
  REQUIRE_FEATURE("kvm.cap.MEMORY_ATTRIBUTES");
  const uint64_t page = PageSize(), priv = KVM_MEMORY_ATTRIBUTE_PRIVATE;
  EXPECT_THAT(vm().RawSetMemoryAttributes(1ULL << 32, 16 * page, priv), SyscallSucceeds());
  EXPECT_THAT(vm().RawSetMemoryAttributes(1ULL << 32, 16 * page, priv), SyscallSucceeds());
  EXPECT_THAT(vm().RawSetMemoryAttributes((1ULL << 32) + 4 * page, 4 * page, 0), SyscallSucceeds());
  EXPECT_THAT(vm().RawSetMemoryAttributes((1ULL << 32) + 4 * page, 4 * page, 0), SyscallSucceeds());
  EXPECT_THAT(vm().RawSetMemoryAttributes(1ULL << 32, 16 * page, 0), SyscallSucceeds());
}

// ---- Guest code on guest_memfd-backed memory ----

// Host memory with page i filled with `first + i`.
Result<Mapping> FilledHostMemory(size_t pages, uint8_t first) {
  auto memory = MapAnonymous(pages * PageSize());
  if (memory.ok())
    for (size_t i = 0; i < pages; ++i)
      std::memset(memory.value().bytes() + i * PageSize(), first + static_cast<uint8_t>(i), PageSize());
  return memory;
}

// ---- DEFAULT VM: guest_memfd as memory the guest and the host share (runs without private memory) ----

class GuestMemfdSharing : public GuestAgentTest {
 protected:
  GuestMemfdSharing() : GuestAgentTest(KVM_X86_DEFAULT_VM) {}
  // A guest_memfd (gmem_) of `pages` pages with `flags` (MMAP among them), mapped (host_), bound
  // with userspace_addr pointing at other memory (decoy_, every byte kDecoyByte): what the guest
  // sees then can only have come from guest_memfd, not from KVM reading userspace_addr.
  void BindMappedGuestMemfd(uint64_t pages, uint64_t flags) {
    ASSERT_OK_AND_ASSIGN(gmem_, vm().CreateGuestMemfd(pages * PageSize(), flags));
    ASSERT_OK_AND_ASSIGN(host_, gmem_.Map(pages * PageSize()));
    ASSERT_OK_AND_ASSIGN(decoy_, MapAnonymous(pages * PageSize()));
    std::memset(decoy_.bytes(), kDecoyByte, decoy_.length());
    ASSERT_OK(BindGuestMemfd(gmem_, pages * PageSize(), decoy_.start()));
  }
  // userspace_addr's memory was not written through the slot.
  bool DecoyUntouched() const {
    for (size_t i = 0; i < decoy_.length(); ++i)
      if (decoy_.bytes()[i] != kDecoyByte) return false;
    return true;
  }
  static constexpr uint8_t kDecoyByte = 0xd5;
  GuestMemfd gmem_;
  Mapping host_;
  Mapping decoy_;
};

// MMAP|INIT_SHARED: the guest and the host see one memory, guest_memfd's, in both directions,
// page by page; the slot's userspace_addr is neither read nor written.
TEST_F(GuestMemfdSharing, GuestAndHostSeeEachOthersWrites) {
  REQUIRE_FEATURE("gmem.flag.INIT_SHARED");
  REQUIRE_GUEST_MEMFD_FAULTS();
  ASSERT_NO_FATAL_FAILURE(BindMappedGuestMemfd(4, kHostSharedGmemFlags));
  EXPECT_TRUE(GuestAndHostShare(agent(), host_.bytes()));
  EXPECT_TRUE(DecoyUntouched()) << "the guest's write reached userspace_addr";
}

// Punching a hole frees the page under both: the guest and the host then read zeros there only.
TEST_F(GuestMemfdSharing, PunchHoleZeroesThePageForGuestAndHost) {
  REQUIRE_FEATURE("gmem.flag.INIT_SHARED");
  REQUIRE_GUEST_MEMFD_FAULTS();
  ASSERT_NO_FATAL_FAILURE(BindMappedGuestMemfd(2, kHostSharedGmemFlags));
  ASSERT_TRUE(GuestSaw(agent().Write(Gpa(0), 0x33), 0x33));
  ASSERT_TRUE(GuestSaw(agent().Write(Gpa(1), 0x44), 0x44));

  ASSERT_THAT(gmem_.RawPunchHole(PageSize(), PageSize()), SyscallSucceeds());
  EXPECT_TRUE(GuestSaw(agent().Read(Gpa(1)), 0x00));
  EXPECT_EQ(host_.bytes()[HostOffset(1)], 0x00);
  EXPECT_TRUE(GuestSaw(agent().Read(Gpa(0)), 0x33));
  EXPECT_TRUE(DecoyUntouched());
}

// MMAP without INIT_SHARED: the memory is private, so the host faults (SIGBUS), yet the guest of
// a VM without private memory still uses it, since KVM takes every fault from an MMAP guest_memfd.
// In-place conversion v8 (kernel bug, kept failing): per-file attributes make a file created
// without INIT_SHARED private whatever the VM type, kvm_mem_is_private() reads them for every VM,
// and a DEFAULT VM's shared access then ends in KVM_EXIT_MEMORY_FAULT (flags 0) that nothing can
// resolve (KVM_SET_MEMORY_ATTRIBUTES2 is EINVAL on VMs without private memory).
TEST_F(GuestMemfdSharing, MmapWithoutInitSharedIsGuestOnly) {
  REQUIRE_FEATURE("gmem.flag.MMAP");
  REQUIRE_GUEST_MEMFD_FAULTS();
  ASSERT_NO_FATAL_FAILURE(BindMappedGuestMemfd(2, GUEST_MEMFD_FLAG_MMAP));

  EXPECT_TRUE(GuestSaw(agent().Write(Gpa(1), 0x61), 0x61));
  EXPECT_TRUE(GuestSaw(agent().Read(Gpa(1)), 0x61));
  EXPECT_TRUE(TouchRaises(host_.bytes() + HostOffset(1), Access::kRead, SIGBUS));
  EXPECT_TRUE(TouchRaises(host_.bytes() + HostOffset(0), Access::kWrite, SIGBUS));
}

// Without MMAP the guest_memfd is never consumed on a VM without private memory: every GPA is
// shared, so the guest reads and writes the memslot's userspace_addr. (Where the default VM does
// not bind guest_memfd at all, GmemBindingByVmType states the refusal.)
// In-place conversion v8 (kernel bug, kept failing): per-file attributes make a file created
// without INIT_SHARED private whatever the VM type, kvm_mem_is_private() reads them for every VM,
// and a DEFAULT VM's shared access then ends in KVM_EXIT_MEMORY_FAULT (flags 0) that nothing can
// resolve (KVM_SET_MEMORY_ATTRIBUTES2 is EINVAL on VMs without private memory).
TEST_F(GuestMemfdSharing, SlotWithoutMmapUsesUserspaceAddr) {
  REQUIRE_FEATURE("gmem");
  REQUIRE_FEATURE(GmemBindFeature(KVM_X86_DEFAULT_VM));
  ASSERT_OK_AND_ASSIGN(Mapping host, FilledHostMemory(2, 0x66));
  ASSERT_OK_AND_ASSIGN(GuestMemfd gmem, vm().CreateGuestMemfd(host.length(), 0));
  ASSERT_OK(BindGuestMemfd(gmem, host.length(), host.start()));

  EXPECT_TRUE(GuestSaw(agent().Read(Gpa(1)), 0x67));
  EXPECT_TRUE(GuestSaw(agent().Write(Gpa(0), 0x77), 0x77));
  EXPECT_EQ(host.bytes()[HostOffset(0)], 0x77);
}

// Once the guest_memfd of a guest_memfd-only memslot is closed, a guest access cannot be resolved:
// KVM_RUN fails with EFAULT and KVM_EXIT_MEMORY_FAULT for that page, without the PRIVATE flag.
TEST_F(GuestMemfdSharing, ClosedGuestMemfdExitsWithMemoryFault) {
  REQUIRE_FEATURE("gmem.flag.INIT_SHARED");
  REQUIRE_FEATURE("kvm.cap.MEMORY_FAULT_INFO");
  REQUIRE_GUEST_MEMFD_FAULTS();
  const uint64_t size = 2 * PageSize();
  ASSERT_OK_AND_ASSIGN(Mapping unused, MapAnonymous(size));  // a legal userspace_addr, never consumed
  std::optional<GuestMemfd> gmem;
  {
    ASSERT_OK_AND_ASSIGN(GuestMemfd created, vm().CreateGuestMemfd(size, GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED));
    gmem.emplace(std::move(created));
  }
  ASSERT_OK(BindGuestMemfd(*gmem, size, unused.start()));
  ASSERT_TRUE(GuestSaw(agent().Write(Gpa(1), 0x21), 0x21));

  gmem.reset();  // the last reference: the file is released and the memslot loses it
  EXPECT_TRUE(GuestMemoryFault(agent().Read(Gpa(1)), Gpa(1) & ~(PageSize() - 1), PageSize(), 0));
}

// ---- KVM_X86_SW_PROTECTED_VM: private memory from guest_memfd, shared from userspace_addr ----

class VmConversion : public GuestAgentTest {
 protected:
  VmConversion() : GuestAgentTest(KVM_X86_SW_PROTECTED_VM) {}
  void SetUp() override {
    GuestAgentTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    REQUIRE_FEATURE("kvm.cap.MEMORY_ATTRIBUTES");
    REQUIRE_FEATURE("kvm.cap.MEMORY_FAULT_INFO");
    REQUIRE_FEATURE("gmem.SW_PROTECTED");
    REQUIRE_GUEST_MEMFD_FAULTS();
  }
  // KVM_SET_MEMORY_ATTRIBUTES on pages [first_page, first_page + pages) of the agent's window.
  SyscallResult SetPrivate(uint64_t first_page, uint64_t pages, bool is_private) {
    return vm().RawSetMemoryAttributes(kAgentDataGpa + first_page * PageSize(), pages * PageSize(),
                                       is_private ? KVM_MEMORY_ATTRIBUTE_PRIVATE : 0);
  }
  // A guest_memfd memslot of `pages` pages whose shared memory (host_) has page i filled with
  // `first + i`; guest_memfd (gmem_) without flags, as private memory.
  void BindGuestMemfdOverHostMemory(size_t pages, uint8_t first) {
    ASSERT_OK_AND_ASSIGN(host_, FilledHostMemory(pages, first));
    ASSERT_OK_AND_ASSIGN(gmem_, vm().CreateGuestMemfd(host_.length(), 0));
    ASSERT_OK(BindGuestMemfd(gmem_, host_.length(), host_.start()));
  }
  Mapping host_;
  GuestMemfd gmem_;
};

uint64_t PageGpa(uint64_t page) { return kAgentDataGpa + page * PageSize(); }

// A private GPA in a memslot without guest_memfd cannot be mapped: KVM_EXIT_MEMORY_FAULT with
// the page's GPA, one page, and the PRIVATE flag; for reads and writes alike.
TEST_F(VmConversion, PrivateGpaWithoutGuestMemfdExitsWithMemoryFault) {
  ASSERT_OK_AND_ASSIGN(Mapping host, FilledHostMemory(2, 0x10));
  ASSERT_OK(BindHostMemory(host));
  ASSERT_THAT(SetPrivate(1, 1, true), SyscallSucceeds());

  EXPECT_TRUE(GuestSaw(agent().Read(Gpa(0)), 0x10));
  EXPECT_TRUE(GuestMemoryFault(agent().Read(Gpa(1)), PageGpa(1), PageSize(), KVM_MEMORY_EXIT_FLAG_PRIVATE));
  // Converting the page back is what a VMM does on that exit: the retried access then completes.
  ASSERT_THAT(SetPrivate(1, 1, false), SyscallSucceeds());
  EXPECT_TRUE(GuestSaw(agent().Resume(), 0x11));
  ASSERT_THAT(SetPrivate(0, 1, true), SyscallSucceeds());
  EXPECT_TRUE(GuestMemoryFault(agent().Write(Gpa(0), 0x99), PageGpa(0), PageSize(), KVM_MEMORY_EXIT_FLAG_PRIVATE));
}

// A private GPA with no memslot at all exits the same way (no MMIO emulation for private GPAs).
TEST_F(VmConversion, PrivateGpaWithoutMemslotExitsWithMemoryFault) {
  ASSERT_THAT(SetPrivate(3, 1, true), SyscallSucceeds());
  EXPECT_TRUE(GuestMemoryFault(agent().Read(Gpa(3)), PageGpa(3), PageSize(), KVM_MEMORY_EXIT_FLAG_PRIVATE));
}

// Private reads come from guest_memfd, shared ones from userspace_addr; converting switches which,
// and neither side's contents are touched: private -> shared -> private finds the private data again.
TEST_F(VmConversion, RoundTripSwitchesBackingAndKeepsBoth) {
  ASSERT_NO_FATAL_FAILURE(BindGuestMemfdOverHostMemory(1, 0x22));

  EXPECT_TRUE(GuestSaw(agent().Read(Gpa(0)), 0x22));  // all memory starts shared
  ASSERT_THAT(SetPrivate(0, 1, true), SyscallSucceeds());
  EXPECT_TRUE(GuestSaw(agent().Read(Gpa(0)), 0x00));  // a fresh guest_memfd page
  EXPECT_TRUE(GuestSaw(agent().Write(Gpa(0), 0x11), 0x11));
  EXPECT_EQ(host_.bytes()[HostOffset(0)], 0x22);  // the private write stayed out of host memory

  ASSERT_THAT(SetPrivate(0, 1, false), SyscallSucceeds());
  EXPECT_TRUE(GuestSaw(agent().Read(Gpa(0)), 0x22));
  ASSERT_THAT(SetPrivate(0, 1, true), SyscallSucceeds());
  EXPECT_TRUE(GuestSaw(agent().Read(Gpa(0)), 0x11));
}

// A conversion covers exactly its range: pages around it keep their backing, and a later partial
// conversion inside a private range splits it.
TEST_F(VmConversion, PartialRangesConvertOnlyTheirPages) {
  ASSERT_NO_FATAL_FAILURE(BindGuestMemfdOverHostMemory(4, 0xa0));

  ASSERT_THAT(SetPrivate(1, 2, true), SyscallSucceeds());
  EXPECT_TRUE(GuestSaw(agent().Read(Gpa(0)), 0xa0));
  EXPECT_TRUE(GuestSaw(agent().Read(Gpa(1)), 0x00));
  EXPECT_TRUE(GuestSaw(agent().Read(Gpa(2)), 0x00));
  EXPECT_TRUE(GuestSaw(agent().Read(Gpa(3)), 0xa3));

  ASSERT_THAT(SetPrivate(2, 1, false), SyscallSucceeds());
  EXPECT_TRUE(GuestSaw(agent().Read(Gpa(1)), 0x00));
  EXPECT_TRUE(GuestSaw(agent().Read(Gpa(2)), 0xa2));
}

// Punching a hole in guest_memfd discards private contents: the guest's next private read is zero.
TEST_F(VmConversion, PunchHoleDiscardsPrivateContents) {
  ASSERT_NO_FATAL_FAILURE(BindGuestMemfdOverHostMemory(2, 0x50));
  ASSERT_THAT(SetPrivate(0, 2, true), SyscallSucceeds());
  ASSERT_TRUE(GuestSaw(agent().Write(Gpa(0), 0x5e), 0x5e));
  ASSERT_TRUE(GuestSaw(agent().Write(Gpa(1), 0x5f), 0x5f));

  ASSERT_THAT(gmem_.RawPunchHole(0, PageSize()), SyscallSucceeds());
  EXPECT_TRUE(GuestSaw(agent().Read(Gpa(0)), 0x00));
  EXPECT_TRUE(GuestSaw(agent().Read(Gpa(1)), 0x5f));
}

// A dup()ed descriptor keeps the guest_memfd, and the private memory in it, after the original
// closes; once the last reference goes, a private access exits with KVM_EXIT_MEMORY_FAULT (PRIVATE).
TEST_F(VmConversion, PrivateMemoryLivesAsLongAsTheFile) {
  ASSERT_NO_FATAL_FAILURE(BindGuestMemfdOverHostMemory(2, 0x70));
  ASSERT_THAT(SetPrivate(0, 2, true), SyscallSucceeds());
  ASSERT_TRUE(GuestSaw(agent().Write(Gpa(1), 0x7e), 0x7e));

  FileDescriptor copy(dup(gmem_.fd()));
  ASSERT_TRUE(copy.valid()) << "dup: " << strerror(errno);
  gmem_.release().reset();
  EXPECT_TRUE(GuestSaw(agent().Read(Gpa(1)), 0x7e)) << "after closing the original descriptor";

  copy.reset();
  EXPECT_TRUE(GuestMemoryFault(agent().Read(Gpa(1)), PageGpa(1), PageSize(), KVM_MEMORY_EXIT_FLAG_PRIVATE))
      << "after closing the last descriptor";
}

}  // namespace
}  // namespace gmem
