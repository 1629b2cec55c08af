// GUEST_MEMFD_FLAG_NO_DIRECT_MAP (profile gmem-no-direct-map-v12, "[PATCH v12 10/16] KVM:
// guest_memfd: Add flag to remove from direct map"): where KVM advertises the flag, and what stays
// the same for the memory's owners once its pages leave the kernel's direct map: host faults and
// CPU access through the mapping, hole punching, the guest's accesses through KVM's MMU; and the
// one mm path that passes such memory over without failing (mlock accounting). GUP refusal is
// gup_refusal.cc.
//
// The flag's value comes from the kernel's headers or the selected profile (REQUIRE_UAPI); whether
// the kernel has it, from KVM_CAP_GUEST_MEMFD_FLAGS plus a trial creation (gmem.flag.NO_DIRECT_MAP).

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cstring>
#include <fstream>
#include <string>

#include "fixtures/backends.h"
#include "fixtures/bytes.h"
#include "fixtures/fault.h"
#include "fixtures/guest_payloads.h"
#include "fixtures/kvm.h"
#include "fixtures/no_direct_map.h"
#include "fixtures/require.h"
#include "fixtures/series.h"
#include "fixtures/syscall_matchers.h"
#include "fixtures/vm_fixture.h"

namespace gmem {
namespace {

constexpr const char* kFlag = "GUEST_MEMFD_FLAG_NO_DIRECT_MAP";

uint64_t NoDirectMap() { return series::ActiveSelection().Value(kFlag).value_or(0); }
uint64_t PageSize() { return static_cast<uint64_t>(getpagesize()); }

#define REQUIRE_NO_DIRECT_MAP()                  \
  do {                                           \
    REQUIRE_UAPI(kFlag);                         \
    REQUIRE_FEATURE("gmem.flag.NO_DIRECT_MAP");  \
  } while (0)

// ---- where the flag is advertised ----

// Per VM (v12 08/16): every x86 VM type but SEV-SNP and TDX, which reach guest pages through the
// direct map; /dev/kvm answers for no VM and lists it. Creation agrees with the answer: EINVAL
// where the flag is not listed.
TEST(NoDirectMapAdvertised, OnEveryVmTypeButSnpAndTdx) {
  REQUIRE_NO_DIRECT_MAP();
  REQUIRE_FEATURE("kvm.cap.GUEST_MEMFD_FLAGS");
  const uint64_t flag = NoDirectMap();
  ASSERT_OK_AND_ASSIGN(Kvm kvm, Kvm::Open());
  EXPECT_NE(kvm.CheckExtension(KVM_CAP_GUEST_MEMFD_FLAGS) & static_cast<long>(flag), 0)
      << "KVM_CHECK_EXTENSION(KVM_CAP_GUEST_MEMFD_FLAGS) on /dev/kvm lacks " << GmemFlagsName(flag);
  int checked = 0;
  for (unsigned long type : {KVM_X86_DEFAULT_VM, KVM_X86_SW_PROTECTED_VM, KVM_X86_SEV_VM, KVM_X86_SEV_ES_VM,
                             KVM_X86_SNP_VM, KVM_X86_TDX_VM}) {
    if (!ProbedFeatures().Has("vm_type." + VmTypeShortName(type))) continue;
    ASSERT_OK_AND_ASSIGN(Vm vm, kvm.CreateVm(type));
    const bool want = type != KVM_X86_SNP_VM && type != KVM_X86_TDX_VM;
    const long listed = vm.CheckExtension(KVM_CAP_GUEST_MEMFD_FLAGS);
    EXPECT_EQ((listed & static_cast<long>(flag)) != 0, want)
        << "KVM_CHECK_EXTENSION(KVM_CAP_GUEST_MEMFD_FLAGS) on a " << VmTypeName(type) << " = "
        << GmemFlagsName(static_cast<uint64_t>(listed));
    SyscallResult created = vm.RawCreateGuestMemfd(PageSize(), flag);
    if (created.ok()) close(static_cast<int>(created.ret));
    if (want) EXPECT_THAT(created, SyscallSucceeds()) << VmTypeName(type);
    else EXPECT_THAT(created, SyscallFailsWithErrno(EINVAL)) << VmTypeName(type);
    ++checked;
  }
  EXPECT_GT(checked, 0) << "no VM type could be created";
}

// Adding the flag never changes whether a combination of mainline flags is accepted: alone, with
// MMAP, with INIT_SHARED, with both (v12's selftests create each).
TEST(NoDirectMapAdvertised, CombinesLikeTheMainlineFlags) {
  REQUIRE_NO_DIRECT_MAP();
  ASSERT_OK_AND_ASSIGN(Kvm kvm, Kvm::Open());
  ASSERT_OK_AND_ASSIGN(Vm vm, kvm.CreateVm());
  for (uint64_t others : {uint64_t{0}, uint64_t{GUEST_MEMFD_FLAG_MMAP}, uint64_t{GUEST_MEMFD_FLAG_INIT_SHARED},
                          uint64_t{GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED}}) {
    SyscallResult without = vm.RawCreateGuestMemfd(PageSize(), others);
    SyscallResult with = vm.RawCreateGuestMemfd(PageSize(), others | NoDirectMap());
    for (const SyscallResult* r : {&without, &with})
      if (r->ok()) close(static_cast<int>(r->ret));
    if (without.ok()) EXPECT_THAT(with, SyscallSucceeds());
    else EXPECT_THAT(with, SyscallFailsWithErrno(without.err)) << "as " << without.Describe();
  }
}

// ---- the host's view of a mapped file ----

class NoDirectMapMapping : public VmTest {
 protected:
  void SetUp() override {
    VmTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    REQUIRE_NO_DIRECT_MAP();
    REQUIRE_FEATURE("gmem.flag.MMAP");
  }
  // A guest_memfd of `pages` pages with NO_DIRECT_MAP|`others`, mapped whole as map_.
  void Create(uint64_t pages, uint64_t others) {
    ASSERT_OK_AND_ASSIGN(gmem_, vm().CreateGuestMemfd(pages * PageSize(), others | NoDirectMap()));
    ASSERT_OK_AND_ASSIGN(map_, gmem_.Map(pages * PageSize()));
  }
  GuestMemfd gmem_;
  Mapping map_;
};

// Shared pages fault in zeroed and keep what the CPU writes; a second mapping of the file sees the
// same pages.
TEST_F(NoDirectMapMapping, SharedPagesFaultInAndKeepWrites) {
  REQUIRE_FEATURE("gmem.flag.INIT_SHARED");
  ASSERT_NO_FATAL_FAILURE(Create(4, GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED));
  EXPECT_TRUE(BytesAre(map_.bytes(), map_.length(), 0));
  for (uint64_t page = 0; page < 4; ++page)
    ASSERT_TRUE(FillBytes(map_.bytes() + page * PageSize(), PageSize(), static_cast<uint8_t>(0x10 + page)));
  ASSERT_OK_AND_ASSIGN(Mapping again, gmem_.Map(4 * PageSize()));
  for (uint64_t page = 0; page < 4; ++page)
    EXPECT_TRUE(BytesAre(again.bytes() + page * PageSize(), PageSize(), static_cast<uint8_t>(0x10 + page)));
}

// A punched page is freed (its direct map restored) and faults in again zeroed, as often as asked.
TEST_F(NoDirectMapMapping, PunchHoleFreesAndRefaults) {
  REQUIRE_FEATURE("gmem.flag.INIT_SHARED");
  ASSERT_NO_FATAL_FAILURE(Create(2, GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED));
  ASSERT_TRUE(FillBytes(map_.bytes() + PageSize(), PageSize(), 0x77));
  for (int round = 0; round < 8; ++round) {
    ASSERT_TRUE(FillBytes(map_.bytes(), PageSize(), static_cast<uint8_t>(0xa0 + round)));
    ASSERT_THAT(gmem_.RawPunchHole(0, static_cast<off_t>(PageSize())), SyscallSucceeds());
    EXPECT_TRUE(BytesAre(map_.bytes(), PageSize(), 0)) << "round " << round;
  }
  EXPECT_TRUE(BytesAre(map_.bytes() + PageSize(), PageSize(), 0x77));
}

// Without INIT_SHARED the memory is private: the host's touch raises SIGBUS, as without the flag.
TEST_F(NoDirectMapMapping, PrivatePagesStillRaiseSigbus) {
  ASSERT_NO_FATAL_FAILURE(Create(1, GUEST_MEMFD_FLAG_MMAP));
  EXPECT_TRUE(TouchRaises(map_.bytes(), Access::kRead, SIGBUS));
  EXPECT_TRUE(TouchRaises(map_.bytes(), Access::kWrite, SIGBUS));
}

// ---- mlock: memory outside the direct map is never locked ----

// This process's VmLck, in kB.
Result<uint64_t> LockedKb() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmLck:", 0) == 0) return std::stoull(line.substr(6));
  return Error("/proc/self/status has no VmLck line", 0);
}

struct LockBackend {
  std::string name;
  bool direct_map;
};
const LockBackend kLockBackends[] = {
    {"memfd", true},
    {"guest_memfd", true},
    {"memfd_secret", false},
    {kNoDirectMapBackendName, false},
};

std::vector<const Backend*> LockBackendValues() {
  std::vector<const Backend*> out;
  for (const LockBackend& b : kLockBackends)
    out.push_back(b.name == kNoDirectMapBackendName ? GmemNoDirectMapBackend() : FindBackend(b.name));
  return out;
}

class NoDirectMapMlock : public ::testing::TestWithParam<const Backend*> {};

// mlock() of memory outside the direct map locks nothing: mlock_fixup() leaves the VMA unlocked
// and populating it through GUP is refused, which mlock() reports as ENOMEM; VmLck does not grow
// (memfd_secret counts there from mmap on, as VM_LOCKED). Memory in the direct map is locked and
// counted, and munlock() takes it off again.
TEST_P(NoDirectMapMlock, LocksOnlyDirectMappedMemory) {
  REQUIRE_BACKEND(GetParam());
  bool direct_map = true;
  for (const LockBackend& b : kLockBackends)
    if (b.name == GetParam()->name()) direct_map = b.direct_map;
  const size_t length = 4 * PageSize();
  ASSERT_OK_AND_ASSIGN(BackendFile file, GetParam()->Create(length));
  ASSERT_OK_AND_ASSIGN(Mapping map, file.Map(length));
  ASSERT_TRUE(FillBytes(map.bytes(), length, 0x5c));
  ASSERT_OK_AND_ASSIGN(uint64_t before, LockedKb());
  const int rc = mlock(map.addr(), length);
  SyscallResult locked =
      SyscallResult::Capture(rc, errno, fmt::format("mlock({} mapping, {:#x})", GetParam()->name(), length));
  if (direct_map) EXPECT_THAT(locked, SyscallSucceeds());
  else EXPECT_THAT(locked, SyscallFailsWithErrno(ENOMEM));
  ASSERT_OK_AND_ASSIGN(uint64_t during, LockedKb());
  EXPECT_EQ(during - before, direct_map ? length / 1024 : 0) << "VmLck " << before << " kB -> " << during << " kB";
  EXPECT_TRUE(BytesAre(map.bytes(), length, 0x5c));
  ASSERT_EQ(munlock(map.addr(), length), 0) << strerror(errno);
  ASSERT_OK_AND_ASSIGN(uint64_t after, LockedKb());
  EXPECT_EQ(after, before);
}

INSTANTIATE_TEST_SUITE_P(, NoDirectMapMlock, ::testing::ValuesIn(LockBackendValues()), BackendParamName);

// ---- the guest ----

class NoDirectMapGuest : public GuestAgentTest {
 protected:
  NoDirectMapGuest() : GuestAgentTest(KVM_X86_DEFAULT_VM) {}
  void SetUp() override {
    GuestAgentTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    REQUIRE_NO_DIRECT_MAP();
    REQUIRE_FEATURE("gmem.flag.MMAP");
  }
  // A guest_memfd of `pages` pages with NO_DIRECT_MAP|`others`, mapped (host_) and bound with that
  // mapping as userspace_addr, as VMMs bind it.
  void Bind(uint64_t pages, uint64_t others) {
    ASSERT_OK_AND_ASSIGN(gmem_, vm().CreateGuestMemfd(pages * PageSize(), others | NoDirectMap()));
    ASSERT_OK_AND_ASSIGN(host_, gmem_.Map(pages * PageSize()));
    ASSERT_OK(BindGuestMemfd(gmem_, pages * PageSize(), host_.start()));
  }
  static uint64_t Gpa(uint64_t page) { return kAgentDataGpa + page * PageSize() + 0x321; }
  static size_t Offset(uint64_t page) { return page * PageSize() + 0x321; }
  GuestMemfd gmem_;
  Mapping host_;
};

// Shared memory: the guest and the host see each other's writes, page by page, before and after
// the host first touched a page.
TEST_F(NoDirectMapGuest, GuestAndHostShareThePages) {
  REQUIRE_FEATURE("gmem.flag.INIT_SHARED");
  ASSERT_NO_FATAL_FAILURE(Bind(3, GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED));
  EXPECT_TRUE(GuestAndHostShare(agent(), host_.bytes()));
}

// Private memory (MMAP without INIT_SHARED): the guest reads and writes it through KVM's MMU while
// the host's touch raises SIGBUS.
TEST_F(NoDirectMapGuest, PrivateMemoryIsGuestOnly) {
  REQUIRE_GUEST_MEMFD_FAULTS();
  ASSERT_NO_FATAL_FAILURE(Bind(2, GUEST_MEMFD_FLAG_MMAP));
  EXPECT_TRUE(GuestSaw(agent().Write(Gpa(1), 0x61), 0x61));
  EXPECT_TRUE(GuestSaw(agent().Read(Gpa(1)), 0x61));
  EXPECT_TRUE(GuestSaw(agent().Read(Gpa(0)), 0x00));
  EXPECT_TRUE(TouchRaises(host_.bytes() + Offset(1), Access::kRead, SIGBUS));
}

// A punched page is gone for the guest too: it reads zero afterwards and can be written again.
TEST_F(NoDirectMapGuest, PunchHoleZeroesTheGuestsPage) {
  REQUIRE_FEATURE("gmem.flag.INIT_SHARED");
  ASSERT_NO_FATAL_FAILURE(Bind(2, GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED));
  ASSERT_TRUE(GuestSaw(agent().Write(Gpa(1), 0x44), 0x44));
  ASSERT_THAT(gmem_.RawPunchHole(static_cast<off_t>(PageSize()), static_cast<off_t>(PageSize())),
              SyscallSucceeds());
  EXPECT_TRUE(GuestSaw(agent().Read(Gpa(1)), 0x00));
  EXPECT_TRUE(GuestSaw(agent().Write(Gpa(1), 0x45), 0x45));
  EXPECT_EQ(host_.bytes()[Offset(1)], 0x45);
}

// A plain memslot (no KVM_MEM_GUEST_MEMFD) over memory outside the direct map cannot be faulted in:
// KVM resolves its pages with GUP, which refuses them, so KVM_RUN fails with EFAULT. memfd_secret
// is the mainline calibration, a MMAP|INIT_SHARED guest_memfd the control that works.
class NoDirectMapPlainSlot : public GuestAgentTest, public ::testing::WithParamInterface<const Backend*> {
 protected:
  NoDirectMapPlainSlot() : GuestAgentTest(KVM_X86_DEFAULT_VM) {}
};

TEST_P(NoDirectMapPlainSlot, GuestAccessNeedsGup) {
  REQUIRE_BACKEND(GetParam());
  REQUIRE_GUEST_MEMFD_FAULTS();  // guest accesses go through KVM's MMU, not its emulator
  const bool direct_map = GetParam()->name() == "guest_memfd";
  ASSERT_OK_AND_ASSIGN(BackendFile file, GetParam()->Create(PageSize()));
  ASSERT_OK_AND_ASSIGN(Mapping memory, file.Map(PageSize()));
  ASSERT_TRUE(FillBytes(memory.bytes(), PageSize(), 0x6b));
  ASSERT_OK(BindHostMemory(memory));
  GuestAccess access = agent().Read(kAgentDataGpa + 8);
  if (direct_map) {
    EXPECT_TRUE(GuestSaw(access, 0x6b));
  } else {
    EXPECT_THAT(access.run, SyscallFailsWithErrno(EFAULT)) << access.Describe();
  }
}

INSTANTIATE_TEST_SUITE_P(, NoDirectMapPlainSlot,
                         ::testing::Values(FindBackend("guest_memfd"), FindBackend("memfd_secret"),
                                           GmemNoDirectMapBackend()),
                         BackendParamName);

// A KVM_X86_SW_PROTECTED_VM takes private memory from a guest_memfd with the flag (no MMAP): the
// guest's private writes and reads go to it, its shared ones to userspace_addr.
class NoDirectMapPrivateVm : public GuestAgentTest {
 protected:
  NoDirectMapPrivateVm() : GuestAgentTest(KVM_X86_SW_PROTECTED_VM) {}
};

TEST_F(NoDirectMapPrivateVm, PrivateMemoryComesFromTheFile) {
  REQUIRE_NO_DIRECT_MAP();
  REQUIRE_FEATURE("gmem.SW_PROTECTED");
  REQUIRE_FEATURE("kvm.cap.MEMORY_ATTRIBUTES");
  REQUIRE_GUEST_MEMFD_FAULTS();
  ASSERT_OK_AND_ASSIGN(Mapping shared, MapAnonymous(2 * PageSize()));
  std::memset(shared.bytes(), 0x31, shared.length());
  ASSERT_OK_AND_ASSIGN(GuestMemfd gmem, vm().CreateGuestMemfd(shared.length(), NoDirectMap()));
  ASSERT_OK(BindGuestMemfd(gmem, shared.length(), shared.start()));
  ASSERT_THAT(vm().RawSetMemoryAttributes(kAgentDataGpa, PageSize(), KVM_MEMORY_ATTRIBUTE_PRIVATE),
              SyscallSucceeds());
  EXPECT_TRUE(GuestSaw(agent().Read(kAgentDataGpa + 5), 0x00));
  EXPECT_TRUE(GuestSaw(agent().Write(kAgentDataGpa + 5, 0x32), 0x32));
  EXPECT_EQ(shared.bytes()[5], 0x31) << "the private write reached userspace_addr";
  EXPECT_TRUE(GuestSaw(agent().Read(kAgentDataGpa + PageSize() + 5), 0x31));
}

}  // namespace
}  // namespace gmem
