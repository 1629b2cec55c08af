// KVM Userfault (profile kvm-userfault-v3, "[PATCH v3 00/15] KVM: Introduce KVM Userfault";
// api.rst of v3 15/15): KVM_MEM_USERFAULT and its userfault_bitmap on KVM_SET_USER_MEMORY_REGION2,
// KVM_CAP_USERFAULT, and the exits the bitmap causes. A vCPU access to a page whose bit is set ends
// KVM_RUN with -1 EFAULT and KVM_EXIT_MEMORY_FAULT for that page (gpa, PAGE_SIZE,
// KVM_MEMORY_EXIT_FLAG_USERFAULT, plus PRIVATE for a private page); clearing the bit lets the
// access complete; a bit set for a page KVM already mapped counts only once the flag is disabled
// and enabled again. guest_memfd slots may toggle the flag in place. KVM's own accesses are not
// caught (userfaultfd's job), so the guest cases need accesses that fault through KVM's MMU.
//
// Values come from the kernel's headers or the selected profile; whether the kernel has the flag,
// from the probe's trial (memslot.flag.USERFAULT).

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <optional>
#include <variant>

#include "fixtures/guest_payloads.h"
#include "fixtures/kvm.h"
#include "fixtures/kvm_userfault.h"
#include "fixtures/require.h"
#include "fixtures/series.h"
#include "fixtures/syscall_matchers.h"
#include "fixtures/vm_fixture.h"

namespace gmem {
namespace {

uint64_t PageSize() { return static_cast<uint64_t>(getpagesize()); }

// Skips (fails, when the probe found the flag broken) unless KVM Userfault is usable; sets uapi_.
#define REQUIRE_KVM_USERFAULT()                                             \
  do {                                                                      \
    auto gmem_uapi_ = KvmUserfaultUapi();                                   \
    if (auto* gmem_missing_ = std::get_if<Features::Missing>(&gmem_uapi_)) { \
      if (gmem_missing_->broken) GTEST_FAIL() << gmem_missing_->text;       \
      GTEST_SKIP() << gmem_missing_->text;                                  \
    }                                                                       \
    uapi_ = std::get<UserfaultUapi>(gmem_uapi_);                            \
  } while (0)

// ---- the memslot flag ----

class KvmUserfaultSlot : public VmTest {
 protected:
  void SetUp() override {
    VmTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    REQUIRE_KVM_USERFAULT();
    ASSERT_OK_AND_ASSIGN(memory_, MapAnonymous(kPages * PageSize()));
  }
  // A plain slot over memory_ at kGpa with `flags`, KVM_MEM_USERFAULT and `bitmap` as userfault_bitmap.
  kvm_userspace_memory_region2 UserfaultRegion(uint32_t flags, uint64_t bitmap) const {
    kvm_userspace_memory_region2 region{};
    region.slot = 1;
    region.flags = flags;
    region.guest_phys_addr = kGpa;
    region.memory_size = memory_.length();
    region.userspace_addr = memory_.start();
    uapi_.Enable(region, bitmap);
    return region;
  }
  static constexpr uint64_t kGpa = 1ULL << 30;
  static constexpr uint64_t kPages = 128;  // two longs of bitmap
  UserfaultUapi uapi_;
  Mapping memory_;
  UserfaultBitmap bits_{kPages};
};

// KVM_CAP_USERFAULT is informational: 1 on /dev/kvm and on a VM wherever the memslot flag is
// accepted; enabling it is refused with EINVAL.
TEST_F(KvmUserfaultSlot, CapabilityIsInformational) {
  REQUIRE_UAPI("KVM_CAP_USERFAULT");
  const long cap = static_cast<long>(*series::ActiveSelection().Value("KVM_CAP_USERFAULT"));
  EXPECT_EQ(kvm().CheckExtension(cap), 1) << "KVM_CHECK_EXTENSION(" << cap << ") on /dev/kvm";
  EXPECT_EQ(vm().CheckExtension(cap), 1) << "KVM_CHECK_EXTENSION(" << cap << ") on a VM";
  kvm_enable_cap enable{};
  enable.cap = static_cast<__u32>(cap);
  EXPECT_THAT(RawIoctl(vm().fd(), KVM_ENABLE_CAP, &enable, "KVM_ENABLE_CAP(KVM_CAP_USERFAULT)"),
              SyscallFailsWithErrno(EINVAL));
}

// The flag is accepted on a plain slot alone and beside dirty logging or read-only.
TEST_F(KvmUserfaultSlot, AcceptedAloneAndBesidePlainSlotFlags) {
  for (uint32_t others : {0u, uint32_t{KVM_MEM_LOG_DIRTY_PAGES}, uint32_t{KVM_MEM_READONLY}}) {
    kvm_userspace_memory_region2 region = UserfaultRegion(others, bits_.address());
    ASSERT_OK_AND_ASSIGN(Memslot slot, Memslot::Create(vm(), region));
    EXPECT_THAT(slot.Delete(), SyscallSucceeds()) << MemslotFlagsName(region.flags);
  }
}

// userfault_bitmap must lie in user space for the flag (EINVAL otherwise); it is only checked for
// being addressable, so NULL is accepted (the access faults at KVM_RUN); without the flag the
// field is not read at all.
TEST_F(KvmUserfaultSlot, BitmapMustBeAUserAddress) {
  const uint64_t kernel_half = 0xffff800000000000ULL;
  EXPECT_THAT(vm().RawSetMemoryRegion2(UserfaultRegion(0, kernel_half)), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(vm().RawSetMemoryRegion2(UserfaultRegion(0, ~uint64_t{0} - 7)), SyscallFailsWithErrno(EINVAL));
  kvm_userspace_memory_region2 unflagged = UserfaultRegion(0, kernel_half);
  unflagged.flags &= ~static_cast<uint32_t>(uapi_.memslot_flag);
  ASSERT_OK_AND_ASSIGN(Memslot plain, Memslot::Create(vm(), unflagged));
  ASSERT_THAT(plain.Delete(), SyscallSucceeds());
  ASSERT_OK_AND_ASSIGN(Memslot null_bitmap, Memslot::Create(vm(), UserfaultRegion(0, 0)));
  EXPECT_THAT(null_bitmap.Delete(), SyscallSucceeds());
}

// The flag can be turned on and off on an existing plain slot, and the slot still moves.
TEST_F(KvmUserfaultSlot, TogglesOnPlainSlots) {
  kvm_userspace_memory_region2 off = UserfaultRegion(0, 0);
  uapi_.Disable(off);
  ASSERT_OK_AND_ASSIGN(Memslot slot, Memslot::Create(vm(), off));
  kvm_userspace_memory_region2 on = UserfaultRegion(0, bits_.address());
  EXPECT_THAT(vm().RawSetMemoryRegion2(on), SyscallSucceeds());
  EXPECT_THAT(vm().RawSetMemoryRegion2(off), SyscallSucceeds());
  on.guest_phys_addr += kPages * PageSize();
  EXPECT_THAT(vm().RawSetMemoryRegion2(on), SyscallSucceeds()) << "moving a slot with the flag";
}

// guest_memfd slots, otherwise immutable, may turn the flag on and off in place (and be created
// with it); moving them or resizing them is still refused.
TEST_F(KvmUserfaultSlot, TogglesInPlaceOnGuestMemfdSlots) {
  REQUIRE_FEATURE("gmem");
  if (vm().CheckExtension(KVM_CAP_GUEST_MEMFD) == 0)
    GTEST_SKIP() << "KVM_CHECK_EXTENSION(KVM_CAP_GUEST_MEMFD) on a KVM_X86_DEFAULT_VM = 0";
  ASSERT_OK_AND_ASSIGN(GuestMemfd gmem, vm().CreateGuestMemfd(2 * kPages * PageSize()));
  kvm_userspace_memory_region2 off = GmemRegion(1, kGpa, kPages * PageSize(), gmem, 0, memory_.start());
  kvm_userspace_memory_region2 on = off;
  uapi_.Enable(on, bits_);
  ASSERT_OK_AND_ASSIGN(Memslot slot, Memslot::Create(vm(), off));
  EXPECT_THAT(vm().RawSetMemoryRegion2(on), SyscallSucceeds()) << "turning the flag on";
  EXPECT_THAT(vm().RawSetMemoryRegion2(off), SyscallSucceeds()) << "turning it off";
  EXPECT_THAT(vm().RawSetMemoryRegion2(on), SyscallSucceeds()) << "on again";
  kvm_userspace_memory_region2 moved = on;
  moved.guest_phys_addr += kPages * PageSize();
  EXPECT_THAT(vm().RawSetMemoryRegion2(moved), SyscallFailsWithErrno(EINVAL)) << "moving it";
  kvm_userspace_memory_region2 grown = on;
  grown.memory_size *= 2;
  EXPECT_THAT(vm().RawSetMemoryRegion2(grown), SyscallFailsWithErrno(EINVAL)) << "resizing it";
  ASSERT_THAT(slot.Delete(), SyscallSucceeds());
  ASSERT_OK_AND_ASSIGN(Memslot created_on, Memslot::Create(vm(), on));
  EXPECT_THAT(created_on.Delete(), SyscallSucceeds());
}

// ---- the exits (guest code through KVM's MMU) ----

class KvmUserfaultGuest : public GuestAgentTest {
 protected:
  explicit KvmUserfaultGuest(unsigned long vm_type = KVM_X86_DEFAULT_VM) : GuestAgentTest(vm_type) {}
  void SetUp() override {
    GuestAgentTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    REQUIRE_KVM_USERFAULT();
    REQUIRE_GUEST_MEMFD_FAULTS();  // vCPU accesses fault through KVM's MMU, not its emulator
  }
  // Binds `region` (at kAgentDataGpa, slot kAgentDataSlot) with the flag on and bits_ as bitmap.
  void Bind(kvm_userspace_memory_region2 region) {
    region.slot = kAgentDataSlot;
    region.guest_phys_addr = kAgentDataGpa;
    uapi_.Enable(region, bits_);
    region_ = region;
    ASSERT_OK_AND_ASSIGN(slot_, Memslot::Create(vm(), region_));
  }
  // Anonymous memory of `pages` pages, page i holding 0x40 + i, bound as a plain slot.
  void BindAnonymous(uint64_t pages) {
    ASSERT_OK_AND_ASSIGN(host_, MapAnonymous(pages * PageSize()));
    for (uint64_t i = 0; i < pages; ++i) std::memset(host_.bytes() + i * PageSize(), 0x40 + static_cast<int>(i), PageSize());
    kvm_userspace_memory_region2 region{};
    region.memory_size = host_.length();
    region.userspace_addr = host_.start();
    ASSERT_NO_FATAL_FAILURE(Bind(region));
  }
  // Turns the flag off or on again (a flags-only change of the bound slot).
  SyscallResult SetFlag(bool on) {
    kvm_userspace_memory_region2 region = region_;
    if (!on) uapi_.Disable(region);
    return vm().RawSetMemoryRegion2(region);
  }
  static uint64_t Gpa(uint64_t page) { return kAgentDataGpa + page * PageSize() + 0x55; }
  static uint64_t PageGpa(uint64_t page) { return kAgentDataGpa + page * PageSize(); }
  ::testing::AssertionResult Userfault(const GuestAccess& access, uint64_t page, uint64_t more_flags = 0) {
    return GuestMemoryFault(access, PageGpa(page), PageSize(), uapi_.exit_flag | more_flags);
  }

  UserfaultUapi uapi_;
  UserfaultBitmap bits_{16};
  Mapping host_;
  kvm_userspace_memory_region2 region_{};
  Memslot slot_;
};

// A set bit makes reads and writes of exactly that page exit with its GPA, one page and the
// USERFAULT flag alone; pages whose bits are clear are untouched.
TEST_F(KvmUserfaultGuest, SetBitExitsForExactlyThatPage) {
  ASSERT_NO_FATAL_FAILURE(BindAnonymous(4));
  bits_.Set(2);
  EXPECT_TRUE(GuestSaw(agent().Read(Gpa(1)), 0x41));
  EXPECT_TRUE(Userfault(agent().Read(Gpa(2)), 2));
  bits_.Clear(2);
  ASSERT_TRUE(GuestSaw(agent().Resume(), 0x42));
  bits_.Set(3);
  EXPECT_TRUE(Userfault(agent().Write(Gpa(3), 0x99), 3));
  EXPECT_EQ(host_.bytes()[3 * PageSize() + 0x55], 0x43) << "the faulting write reached memory";
}

// Clearing the bit after filling the page is how a VMM resolves the exit: the retried access
// completes and sees what was filled in.
TEST_F(KvmUserfaultGuest, ClearingTheBitResumesTheAccess) {
  ASSERT_NO_FATAL_FAILURE(BindAnonymous(2));
  bits_.Set(0);
  bits_.Set(1);
  ASSERT_TRUE(Userfault(agent().Write(Gpa(1), 0x7e), 1));
  std::memset(host_.bytes() + PageSize(), 0x11, PageSize());
  bits_.Clear(1);
  EXPECT_TRUE(GuestSaw(agent().Resume(), 0x7e));
  EXPECT_EQ(host_.bytes()[PageSize() + 0x55], 0x7e);
  EXPECT_EQ(host_.bytes()[PageSize()], 0x11);
  EXPECT_TRUE(Userfault(agent().Read(Gpa(0)), 0));
  bits_.Clear(0);
  EXPECT_TRUE(GuestSaw(agent().Resume(), 0x40));
}

// A bit set for a page KVM has already mapped does not count until the flag is disabled and
// enabled again (enabling drops KVM's mappings of the slot).
TEST_F(KvmUserfaultGuest, BitsForMappedPagesCountAfterReenabling) {
  ASSERT_NO_FATAL_FAILURE(BindAnonymous(2));
  ASSERT_TRUE(GuestSaw(agent().Read(Gpa(1)), 0x41));
  bits_.Set(1);
  EXPECT_TRUE(GuestSaw(agent().Read(Gpa(1)), 0x41)) << "a mapped page exited before re-enabling";
  ASSERT_THAT(SetFlag(false), SyscallSucceeds());
  ASSERT_THAT(SetFlag(true), SyscallSucceeds());
  EXPECT_TRUE(Userfault(agent().Read(Gpa(1)), 1));
  bits_.Clear(1);
  EXPECT_TRUE(GuestSaw(agent().Resume(), 0x41));
}

// With the flag off the bitmap is ignored, every bit set or not.
TEST_F(KvmUserfaultGuest, DisabledFlagIgnoresTheBitmap) {
  ASSERT_NO_FATAL_FAILURE(BindAnonymous(2));
  bits_.SetAll();
  ASSERT_THAT(SetFlag(false), SyscallSucceeds());
  EXPECT_TRUE(GuestSaw(agent().Read(Gpa(0)), 0x40));
  EXPECT_TRUE(GuestSaw(agent().Write(Gpa(1), 0x12), 0x12));
}

// A bitmap KVM cannot read (a user address mapped PROT_NONE) fails the access's KVM_RUN with EFAULT.
TEST_F(KvmUserfaultGuest, UnreadableBitmapFailsTheRun) {
  ASSERT_OK_AND_ASSIGN(Mapping unreadable, Map(PageSize(), PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1));
  const uint64_t address = unreadable.start();
  ASSERT_OK_AND_ASSIGN(host_, MapAnonymous(PageSize()));
  kvm_userspace_memory_region2 region{};
  region.slot = kAgentDataSlot;
  region.guest_phys_addr = kAgentDataGpa;
  region.memory_size = host_.length();
  region.userspace_addr = host_.start();
  uapi_.Enable(region, address);
  ASSERT_OK_AND_ASSIGN(slot_, Memslot::Create(vm(), region));
  GuestAccess access = agent().Read(Gpa(0));
  EXPECT_THAT(access.run, SyscallFailsWithErrno(EFAULT)) << access.Describe();
}

// A shared guest_memfd slot (MMAP|INIT_SHARED, the flag toggled on in place) exits the same way,
// without PRIVATE; once the bit is cleared the guest reads the file's page.
TEST_F(KvmUserfaultGuest, GuestMemfdSlotExitsAndResumes) {
  REQUIRE_FEATURE("gmem.flag.MMAP");
  REQUIRE_FEATURE("gmem.flag.INIT_SHARED");
  ASSERT_OK_AND_ASSIGN(GuestMemfd gmem, vm().CreateGuestMemfd(2 * PageSize(), GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED));
  ASSERT_OK_AND_ASSIGN(host_, gmem.Map(2 * PageSize()));
  ASSERT_OK(BindGuestMemfd(gmem, 2 * PageSize(), host_.start()));
  region_ = GmemRegion(kAgentDataSlot, kAgentDataGpa, 2 * PageSize(), gmem, 0, host_.start());
  uapi_.Enable(region_, bits_);
  bits_.Set(1);
  ASSERT_THAT(vm().RawSetMemoryRegion2(region_), SyscallSucceeds()) << "turning the flag on in place";
  EXPECT_TRUE(GuestSaw(agent().Read(Gpa(0)), 0x00));
  EXPECT_TRUE(Userfault(agent().Read(Gpa(1)), 1));
  host_.bytes()[PageSize() + 0x55] = 0x6d;
  bits_.Clear(1);
  EXPECT_TRUE(GuestSaw(agent().Resume(), 0x6d));
}

// On a VM with private memory, the exit for a private page carries PRIVATE beside USERFAULT; a
// shared page's exit does not.
class KvmUserfaultPrivate : public KvmUserfaultGuest {
 protected:
  KvmUserfaultPrivate() : KvmUserfaultGuest(KVM_X86_SW_PROTECTED_VM) {}
};

TEST_F(KvmUserfaultPrivate, PrivatePageExitAddsPrivateFlag) {
  REQUIRE_FEATURE("gmem.SW_PROTECTED");
  REQUIRE_FEATURE("kvm.cap.MEMORY_ATTRIBUTES");
  ASSERT_OK_AND_ASSIGN(host_, MapAnonymous(2 * PageSize()));
  ASSERT_OK_AND_ASSIGN(GuestMemfd gmem, vm().CreateGuestMemfd(2 * PageSize(), 0));
  ASSERT_NO_FATAL_FAILURE(Bind(GmemRegion(0, 0, 2 * PageSize(), gmem, 0, host_.start())));
  ASSERT_THAT(vm().RawSetMemoryAttributes(PageGpa(1), PageSize(), KVM_MEMORY_ATTRIBUTE_PRIVATE), SyscallSucceeds());
  bits_.Set(0);
  bits_.Set(1);
  EXPECT_TRUE(Userfault(agent().Read(Gpa(0)), 0));
  bits_.Clear(0);
  ASSERT_TRUE(GuestSaw(agent().Resume(), 0x00));
  EXPECT_TRUE(Userfault(agent().Read(Gpa(1)), 1, KVM_MEMORY_EXIT_FLAG_PRIVATE));
  bits_.Clear(1);
  EXPECT_TRUE(GuestSaw(agent().Resume(), 0x00));
}

}  // namespace
}  // namespace gmem
