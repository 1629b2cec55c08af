// mmap of a guest_memfd and host faults on it. mmap needs GUEST_MEMFD_FLAG_MMAP and a shared
// mapping; a host fault succeeds only inside i_size on memory that is shared with the host,
// which with mainline flags means GUEST_MEMFD_FLAG_INIT_SHARED.

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "fixtures/bytes.h"
#include "fixtures/fault.h"
#include "fixtures/kvm.h"
#include "fixtures/mapping.h"
#include "fixtures/require.h"
#include "fixtures/series.h"
#include "fixtures/shared_gmem.h"
#include "fixtures/syscall_matchers.h"
#include "fixtures/vm_fixture.h"

namespace gmem {
namespace {

class Mmap : public SharedGmemTest {
 protected:
  static constexpr size_t kPages = 4;
  static size_t size() { return kPages * page_size(); }
  static uint8_t* page(const Mapping& map, size_t index) { return map.bytes() + index * page_size(); }
};

// Without GUEST_MEMFD_FLAG_MMAP the file cannot be mapped at all, shared or private.
TEST_F(Mmap, FailsWithEnodevWithoutMmapFlag) {
  REQUIRE_FEATURE("gmem");
  std::vector<uint64_t> flag_sets = {0};
  if (ProbedFeatures().Has("gmem.flag.INIT_SHARED")) flag_sets.push_back(GUEST_MEMFD_FLAG_INIT_SHARED);
  for (uint64_t flags : flag_sets) {
    SCOPED_TRACE("guest_memfd flags=" + GmemFlagsName(flags));
    ASSERT_OK_AND_ASSIGN(GuestMemfd gmem, vm().CreateGuestMemfd(size(), flags));
    for (int map_flags : {MAP_SHARED, MAP_PRIVATE})
      EXPECT_THAT(RawMap(size(), PROT_READ | PROT_WRITE, map_flags, gmem.fd()),
                  SyscallFailsWithErrno(ENODEV));
  }
}

// A private (copy-on-write) mapping is refused: guest_memfd memory is never copied.
TEST_F(Mmap, PrivateMappingFailsWithEinval) {
  REQUIRE_FEATURE("gmem.flag.MMAP");
  ASSERT_OK_AND_ASSIGN(GuestMemfd gmem, vm().CreateGuestMemfd(size(), GUEST_MEMFD_FLAG_MMAP));
  for (int prot : {PROT_READ, PROT_READ | PROT_WRITE})
    EXPECT_THAT(RawMap(size(), prot, MAP_PRIVATE, gmem.fd()), SyscallFailsWithErrno(EINVAL));
}

// The file lives on a noexec mount: PROT_EXEC is refused at mmap and at mprotect.
TEST_F(Mmap, RefusesExecutableMappings) {
  REQUIRE_FEATURE("gmem.flag.MMAP");
  ASSERT_OK_AND_ASSIGN(GuestMemfd gmem, vm().CreateGuestMemfd(size(), GUEST_MEMFD_FLAG_MMAP));
  EXPECT_THAT(RawMap(size(), PROT_READ | PROT_EXEC, MAP_SHARED, gmem.fd()),
              SyscallFailsWithErrno(EPERM));
  ASSERT_OK_AND_ASSIGN(Mapping map, gmem.Map(size()));
  EXPECT_THAT(RawMprotect(map.addr(), size(), PROT_READ | PROT_EXEC), SyscallFailsWithErrno(EACCES));
}

// Memory shared with the host reads as zero until written.
TEST_F(Mmap, NewPagesReadAsZero) {
  SET_UP_SHARED_GMEM(size());
  EXPECT_TRUE(BytesAre(map().bytes(), size(), 0));
}

// Two mappings of one file see each other's writes, both ways.
TEST_F(Mmap, TwoMappingsShareContents) {
  SET_UP_SHARED_GMEM(size());
  ASSERT_OK_AND_ASSIGN(Mapping second, gmem().Map(size()));
  ASSERT_TRUE(FillBytes(page(map(), 0), page_size(), 0x11));
  ASSERT_TRUE(FillBytes(page(second, 1), page_size(), 0x22));
  EXPECT_TRUE(BytesAre(page(second, 0), page_size(), 0x11));
  EXPECT_TRUE(BytesAre(page(map(), 1), page_size(), 0x22));
}

// A mapping at a file offset shows the file's pages from that offset on.
TEST_F(Mmap, MappingAtOffsetSeesThosePages) {
  SET_UP_SHARED_GMEM(size());
  ASSERT_OK_AND_ASSIGN(Mapping third, gmem().Map(page_size(), static_cast<off_t>(2 * page_size())));
  ASSERT_TRUE(FillBytes(page(map(), 2), page_size(), 0x33));
  EXPECT_TRUE(BytesAre(third.bytes(), page_size(), 0x33));
  ASSERT_TRUE(FillBytes(third.bytes(), page_size(), 0x44));
  EXPECT_TRUE(BytesAre(page(map(), 2), page_size(), 0x44));
  EXPECT_TRUE(BytesAre(page(map(), 1), page_size(), 0));
}

// Contents belong to the file, not the mapping: they survive munmap and a new mmap.
TEST_F(Mmap, ContentsOutliveTheMapping) {
  SET_UP_SHARED_GMEM(size());
  ASSERT_TRUE(FillBytes(map().bytes(), size(), 0x55));
  map().reset();
  ASSERT_OK_AND_ASSIGN(Mapping again, gmem().Map(size()));
  EXPECT_TRUE(BytesAre(again.bytes(), size(), 0x55));
}

// Run in a forked child: 0 when [addr, addr + length) reads as `expected`, after which the child
// fills it with `value`; 1 otherwise. The child never returns into the test.
[[noreturn]] void ChildCheckThenFill(uint8_t* addr, size_t length, uint8_t expected, uint8_t value) {
  for (size_t i = 0; i < length; ++i)
    if (addr[i] != expected) _exit(1);
  for (size_t i = 0; i < length; ++i) addr[i] = value;
  _exit(0);
}

// A forked child shares the mapping: it sees the parent's writes and the parent sees its writes.
TEST_F(Mmap, ForkedChildSharesContents) {
  SET_UP_SHARED_GMEM(size());
  ASSERT_TRUE(FillBytes(map().bytes(), size(), 0x66));
  pid_t child = fork();
  ASSERT_THAT(child, SyscallSucceeds());
  if (child == 0) ChildCheckThenFill(map().bytes(), size(), 0x66, 0x77);
  int status = 0;
  ASSERT_THAT(waitpid(child, &status, 0), SyscallSucceedsWithValue(child));
  ASSERT_TRUE(WIFEXITED(status)) << "child status " << status;
  EXPECT_EQ(WEXITSTATUS(status), 0) << "the child did not read the parent's 0x66";
  EXPECT_TRUE(BytesAre(map().bytes(), size(), 0x77));
}

// A fault at or past i_size raises SIGBUS, though mmap itself accepts a range past the end.
TEST_F(Mmap, FaultPastEndOfFileRaisesSigbus) {
  SET_UP_SHARED_GMEM(size());
  ASSERT_OK_AND_ASSIGN(Mapping beyond, gmem().Map(2 * size()));
  EXPECT_TRUE(TouchSucceeds(page(beyond, kPages - 1), Access::kWrite));
  for (size_t index : {kPages, 2 * kPages - 1}) {
    EXPECT_TRUE(TouchRaises(page(beyond, index), Access::kRead, SIGBUS)) << "page " << index;
    EXPECT_TRUE(TouchRaises(page(beyond, index), Access::kWrite, SIGBUS)) << "page " << index;
  }
}

// Without INIT_SHARED the memory is private to the guest: mmap works, every host fault is SIGBUS.
TEST_F(Mmap, FaultOnPrivateMemoryRaisesSigbus) {
  REQUIRE_FEATURE("gmem.flag.MMAP");
  ASSERT_OK_AND_ASSIGN(GuestMemfd gmem, vm().CreateGuestMemfd(size(), GUEST_MEMFD_FLAG_MMAP));
  ASSERT_OK_AND_ASSIGN(Mapping map, gmem.Map(size()));
  for (size_t index : {size_t{0}, kPages - 1}) {
    EXPECT_TRUE(TouchRaises(page(map, index), Access::kRead, SIGBUS)) << "page " << index;
    EXPECT_TRUE(TouchRaises(page(map, index), Access::kWrite, SIGBUS)) << "page " << index;
  }
}

// VM types with private memory advertise and accept INIT_SHARED exactly when guest_memfd tracks
// shared/private itself (the in-place conversion series, v8 25/46: KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES
// reports PRIVATE for the VM); on mainline (6.18-7.3) they neither advertise nor accept it.
TEST_F(Mmap, InitSharedOnPrivateMemoryVmTypesOnlyWithPerFileAttributes) {
  REQUIRE_FEATURE("gmem.flag.INIT_SHARED");
  const char* kAttributesCap = "KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES";
  std::optional<uint64_t> cap = series::ActiveSelection().Value(kAttributesCap);
  std::string skipped;
  int tested = 0;
  for (auto [type, feature] : {std::pair{KVM_X86_SW_PROTECTED_VM, "vm_type.SW_PROTECTED"},
                               std::pair{KVM_X86_SNP_VM, "vm_type.SNP"},
                               std::pair{KVM_X86_TDX_VM, "vm_type.TDX"}}) {
    if (auto missing = ProbedFeatures().Why(feature)) {
      if (missing->broken) ADD_FAILURE() << missing->text;
      skipped += "\n" + missing->text;
      continue;
    }
    SCOPED_TRACE(VmTypeName(type));
    ASSERT_OK_AND_ASSIGN(Vm private_vm, kvm().CreateVm(type));
    bool per_file = cap && private_vm.CheckExtension(static_cast<long>(*cap)) == KVM_MEMORY_ATTRIBUTE_PRIVATE;
    std::string why = per_file ? fmt::format("{} = PRIVATE on this VM", kAttributesCap)
                               : cap ? fmt::format("{} = {} on this VM", kAttributesCap,
                                                   private_vm.CheckExtension(static_cast<long>(*cap)))
                                     : series::ActiveSelection().WhyNoValue(kAttributesCap);
    EXPECT_EQ(private_vm.CheckExtension(KVM_CAP_GUEST_MEMFD_FLAGS) & GUEST_MEMFD_FLAG_INIT_SHARED,
              per_file ? static_cast<long>(GUEST_MEMFD_FLAG_INIT_SHARED) : 0)
        << "KVM_CAP_GUEST_MEMFD_FLAGS and INIT_SHARED, with " << why;
    for (uint64_t flags : {uint64_t{GUEST_MEMFD_FLAG_INIT_SHARED}, kHostSharedGmemFlags}) {
      SyscallResult r = private_vm.RawCreateGuestMemfd(page_size(), flags);
      if (per_file) EXPECT_THAT(r, SyscallSucceeds()) << why;
      else EXPECT_THAT(r, SyscallFailsWithErrno(EINVAL)) << why;
      if (r.ok()) close(static_cast<int>(r.ret));
    }
    ++tested;
  }
  if (tested == 0) GTEST_SKIP() << "no VM type with private memory here:" << skipped;
}

}  // namespace
}  // namespace gmem
