// mmap of a guest_memfd and host faults on it. mmap needs GUEST_MEMFD_FLAG_MMAP and a shared
// mapping; a host fault succeeds only inside i_size on memory that is shared with the host,
// which with mainline flags means GUEST_MEMFD_FLAG_INIT_SHARED.

#include <gtest/gtest.h>
#include <linux/falloc.h>
#include <linux/mempolicy.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "fixtures/bytes.h"
#include "fixtures/errno_name.h"
#include "fixtures/fault.h"
#include "fixtures/kernel_changes.h"
#include "fixtures/kvm.h"
#include "fixtures/mapping.h"
#include "fixtures/require.h"
#include "fixtures/series.h"
#include "fixtures/shared_gmem.h"
#include "fixtures/syscall_matchers.h"
#include "fixtures/uapi/mm_mainline.h"
#include "fixtures/vm_fixture.h"

namespace gmem {
namespace {

class Mmap : public SharedGmemTest {
 protected:
  static constexpr size_t kPages = 4;
  static size_t size() { return kPages * page_size(); }
  static uint8_t* page(const Mapping& map, size_t index) { return map.bytes() + index * page_size(); }
};

// Without GUEST_MEMFD_FLAG_MMAP the file cannot be mapped at all, shared or private, with any
// protection: ENODEV. PROT_EXEC is refused with EPERM before that where the file's filesystem is
// noexec (kernel change anon_inode_noexec), else it gets the same ENODEV.
TEST_F(Mmap, FailsWithEnodevWithoutMmapFlag) {
  REQUIRE_FEATURE("gmem");
  ChangeVerdict noexec = ForRunningKernel("anon_inode_noexec");
  SCOPED_TRACE(noexec.explanation());
  ASSERT_TRUE(noexec.known());
  std::vector<uint64_t> flag_sets = {0};
  if (ProbedFeatures().Has("gmem.flag.INIT_SHARED")) flag_sets.push_back(GUEST_MEMFD_FLAG_INIT_SHARED);
  for (uint64_t flags : flag_sets) {
    SCOPED_TRACE("guest_memfd flags=" + GmemFlagsName(flags));
    ASSERT_OK_AND_ASSIGN(GuestMemfd gmem, vm().CreateGuestMemfd(size(), flags));
    for (int map_flags : {MAP_SHARED, MAP_PRIVATE}) {
      for (int prot : {PROT_NONE, PROT_READ, PROT_WRITE, PROT_READ | PROT_WRITE})
        EXPECT_THAT(RawMap(size(), prot, map_flags, gmem.fd()), SyscallFailsWithErrno(ENODEV));
      for (int prot : {PROT_EXEC, PROT_READ | PROT_EXEC})
        EXPECT_THAT(RawMap(size(), prot, map_flags, gmem.fd()), SyscallFailsWithErrno(noexec.Pick(ENODEV, EPERM)));
    }
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

// A fault at or past i_size raises SIGBUS (BUS_ADRERR, si_addr the byte touched), though mmap
// itself accepts a range past the end.
TEST_F(Mmap, FaultPastEndOfFileRaisesSigbus) {
  SET_UP_SHARED_GMEM(size());
  ASSERT_OK_AND_ASSIGN(Mapping beyond, gmem().Map(2 * size()));
  EXPECT_TRUE(TouchSucceeds(page(beyond, kPages - 1), Access::kWrite));
  for (size_t index : {kPages, 2 * kPages - 1}) {
    EXPECT_TRUE(TouchRaisesAt(page(beyond, index) + 123, Access::kRead, SIGBUS, BUS_ADRERR)) << "page " << index;
    EXPECT_TRUE(TouchRaisesAt(page(beyond, index), Access::kWrite, SIGBUS, BUS_ADRERR)) << "page " << index;
  }
}

// A mappable but private guest_memfd (MMAP without INIT_SHARED) of `bytes`, mapped, on each VM
// type that advertises GUEST_MEMFD_FLAG_MMAP; `none` collects why a type was left out.
struct PrivateMapping {
  unsigned long type;
  Vm vm;
  GuestMemfd gmem;
  Mapping map;  // declared last: unmapped first
};
std::vector<PrivateMapping> PrivateMappings(const Kvm& kvm, size_t bytes, std::string& none) {
  std::vector<PrivateMapping> out;
  for (unsigned long type : {KVM_X86_DEFAULT_VM, KVM_X86_SW_PROTECTED_VM}) {
    std::string name = "gmem.flags." + VmTypeShortName(type);
    if (!(ProbedFeatures().Value(name) & GUEST_MEMFD_FLAG_MMAP)) {
      const Feature* f = ProbedFeatures().Find(name);
      none += fmt::format("\n{}: {}", VmTypeName(type), f ? f->how : name + " not probed");
      continue;
    }
    auto vm = kvm.CreateVm(type);
    auto gmem = vm.ok() ? vm.value().CreateGuestMemfd(bytes, GUEST_MEMFD_FLAG_MMAP) : Result<GuestMemfd>(vm.error());
    auto map = gmem.ok() ? gmem.value().Map(bytes) : Result<Mapping>(gmem.error());
    EXPECT_TRUE(map.ok()) << VmTypeName(type) << ": " << map.error().message();
    if (map.ok())
      out.push_back({type, std::move(vm).value(), std::move(gmem).value(), std::move(map).value()});
  }
  return out;
}

// Without INIT_SHARED the memory is private to the guest: mmap works, every host fault raises
// SIGBUS (BUS_ADRERR at the byte touched), before and after fallocate has allocated the pages.
TEST_F(Mmap, FaultOnPrivateMemoryRaisesSigbus) {
  REQUIRE_FEATURE("gmem.flag.MMAP");
  std::string none;
  std::vector<PrivateMapping> mappings = PrivateMappings(kvm(), size(), none);
  if (mappings.empty()) GTEST_SKIP() << "no VM type advertises GUEST_MEMFD_FLAG_MMAP:" << none;
  for (PrivateMapping& p : mappings) {
    SCOPED_TRACE(VmTypeName(p.type));
    for (bool allocated : {false, true}) {
      if (allocated) {
        ASSERT_THAT(p.gmem.RawFallocate(FALLOC_FL_KEEP_SIZE, 0, size()), SyscallSucceeds());
      }
      for (size_t index : {size_t{0}, kPages - 1}) {
        SCOPED_TRACE(fmt::format("page {}{}", index, allocated ? " after fallocate" : ""));
        EXPECT_TRUE(TouchRaisesAt(page(p.map, index) + 7, Access::kRead, SIGBUS, BUS_ADRERR));
        EXPECT_TRUE(TouchRaisesAt(page(p.map, index), Access::kWrite, SIGBUS, BUS_ADRERR));
      }
    }
  }
}

// get_mempolicy(MPOL_F_ADDR) on private memory reads the policy without faulting: MPOL_DEFAULT;
// asking for the node of the page (MPOL_F_NODE) must fault it in, which private memory refuses:
// EFAULT.
TEST_F(Mmap, PolicyQueryOnPrivateMemory) {
  REQUIRE_FEATURE("numa");
  REQUIRE_FEATURE("gmem.flag.MMAP");
  std::string none;
  std::vector<PrivateMapping> mappings = PrivateMappings(kvm(), size(), none);
  if (mappings.empty()) GTEST_SKIP() << "no VM type advertises GUEST_MEMFD_FLAG_MMAP:" << none;
  for (PrivateMapping& p : mappings) {
    SCOPED_TRACE(VmTypeName(p.type));
    int mode = -1;
    unsigned long nodes[16] = {};
    long addr = static_cast<long>(p.map.start());
    EXPECT_THAT(RawSyscall(SYS_get_mempolicy, reinterpret_cast<long>(&mode), reinterpret_cast<long>(nodes),
                           16 * 64 + 1, addr, MPOL_F_ADDR),
                SyscallSucceeds())
        << "get_mempolicy(&mode, nodes, 1025, private mapping, MPOL_F_ADDR)";
    EXPECT_EQ(mode, MPOL_DEFAULT);
    int node = -1;
    EXPECT_THAT(RawSyscall(SYS_get_mempolicy, reinterpret_cast<long>(&node), 0, 0, addr, MPOL_F_NODE | MPOL_F_ADDR),
                SyscallFailsWithErrno(EFAULT))
        << "get_mempolicy(&node, NULL, 0, private mapping, MPOL_F_NODE|MPOL_F_ADDR), node " << node;
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

// ---- madvise on a guest_memfd mapping ----

// Fills the mapping, gives it `advice` (expected to fail with `err`, or to succeed when 0) and
// checks that every page is still resident in the file and reads as before.
void ExpectAdviceKeepsData(Mapping& map, int advice, int err) {
  ASSERT_TRUE(FillBytes(map.bytes(), map.length(), 0x5a));
  if (err)
    EXPECT_THAT(RawMadvise(map.addr(), map.length(), advice), SyscallFailsWithErrno(err));
  else
    EXPECT_THAT(RawMadvise(map.addr(), map.length(), advice), SyscallSucceeds());
  ASSERT_OK_AND_ASSIGN(std::vector<bool> resident, ResidentPages(map));
  EXPECT_EQ(resident, std::vector<bool>(map.length() / getpagesize(), true));
  EXPECT_TRUE(BytesAre(map.bytes(), map.length(), 0x5a));
}

// MADV_DONTNEED drops the mapping's page table entries, not the file's pages: it succeeds, the
// pages stay in the page cache, and reading again shows the data.
TEST_F(Mmap, MadviseDontneedKeepsTheData) {
  SET_UP_SHARED_GMEM(size());
  ExpectAdviceKeepsData(map(), MADV_DONTNEED, 0);
}

// MADV_PAGEOUT succeeds but reclaims nothing: guest_memfd pages are unevictable, so they stay
// resident with their data.
TEST_F(Mmap, MadvisePageoutKeepsPagesResident) {
  SET_UP_SHARED_GMEM(size());
  ExpectAdviceKeepsData(map(), MADV_PAGEOUT, 0);
}

// MADV_FREE is for anonymous memory only: EINVAL on a guest_memfd mapping, data untouched.
TEST_F(Mmap, MadviseFreeFailsWithEinval) {
  SET_UP_SHARED_GMEM(size());
  ExpectAdviceKeepsData(map(), MADV_FREE, EINVAL);
}

// MADV_HUGEPAGE only marks the range (it succeeds where THP is built in); MADV_COLLAPSE then fails
// with EINVAL: a guest_memfd is an anonymous-inode file, never eligible for file THP (collapsing
// it was a bug, fixed by "mm: thp: deny THP for files on anonymous inodes"). The data is untouched.
TEST_F(Mmap, MadviseHugepageMarksAndCollapseFails) {
  REQUIRE_FEATURE("thp");
  constexpr size_t k2M = 2 << 20;
  REQUIRE_FEATURE("gmem.flag.MMAP");
  REQUIRE_FEATURE("gmem.flag.INIT_SHARED");
  ASSERT_OK_AND_ASSIGN(GuestMemfd gmem, vm().CreateGuestMemfd(2 * k2M, kHostSharedGmemFlags));
  // A 2M-aligned 2M window inside a 4M mapping: the unit MADV_COLLAPSE works on.
  ASSERT_OK_AND_ASSIGN(Mapping map, gmem.Map(2 * k2M));
  uint8_t* window = reinterpret_cast<uint8_t*>((map.start() + k2M - 1) & ~(k2M - 1));
  ASSERT_TRUE(FillBytes(window, k2M, 0x3c));
  EXPECT_THAT(RawMadvise(window, k2M, MADV_HUGEPAGE), SyscallSucceeds());
  EXPECT_THAT(RawMadvise(window, k2M, MADV_COLLAPSE), SyscallFailsWithErrno(EINVAL));
  EXPECT_TRUE(BytesAre(window, k2M, 0x3c));
  EXPECT_THAT(RawMadvise(window, k2M, MADV_NOHUGEPAGE), SyscallSucceeds());
}

// ---- where and how the file is mapped ----

// MAP_FIXED puts the mapping exactly at the address asked for, replacing what was there; the
// file's contents show through it.
TEST_F(Mmap, MapFixedReplacesTheRange) {
  SET_UP_SHARED_GMEM(size());
  ASSERT_TRUE(FillBytes(map().bytes(), size(), 0x21));
  ASSERT_OK_AND_ASSIGN(Mapping placeholder, MapAnonymous(size()));
  ASSERT_TRUE(FillBytes(placeholder.bytes(), size(), 0x99));
  void* got = mmap(placeholder.addr(), size(), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, gmem().fd(), 0);
  ASSERT_EQ(got, placeholder.addr()) << "mmap(MAP_SHARED|MAP_FIXED) at " << placeholder.addr() << ": "
                                     << (got == MAP_FAILED ? ErrnoName(errno) : "another address");
  EXPECT_TRUE(BytesAre(placeholder.bytes(), size(), 0x21));
  ASSERT_TRUE(FillBytes(placeholder.bytes(), page_size(), 0x22));
  EXPECT_TRUE(BytesAre(map().bytes(), page_size(), 0x22));
}

// File offsets: a mapping of the last page sees it; at or past the end mmap succeeds but every
// fault raises SIGBUS; an unaligned offset is EINVAL; an offset whose mapping would end beyond
// the largest file size is EOVERFLOW.
TEST_F(Mmap, OffsetsAtBelowAndAboveTheSize) {
  SET_UP_SHARED_GMEM(size());
  ASSERT_TRUE(FillBytes(page(map(), kPages - 1), page_size(), 0x44));
  const off_t end = static_cast<off_t>(size());
  ASSERT_OK_AND_ASSIGN(Mapping last, gmem().Map(page_size(), end - static_cast<off_t>(page_size())));
  EXPECT_TRUE(BytesAre(last.bytes(), page_size(), 0x44));
  const off_t largest = std::numeric_limits<off_t>::max() & ~static_cast<off_t>(page_size() - 1);
  for (off_t offset : {end, 2 * end, largest - static_cast<off_t>(page_size())}) {
    ASSERT_OK_AND_ASSIGN(Mapping past, gmem().Map(page_size(), offset));
    EXPECT_TRUE(TouchRaisesAt(past.bytes(), Access::kRead, SIGBUS, BUS_ADRERR)) << "offset " << offset;
  }
  for (off_t offset : {off_t{1}, static_cast<off_t>(page_size() / 2), end + 1})
    EXPECT_THAT(RawMap(page_size(), PROT_READ | PROT_WRITE, MAP_SHARED, gmem().fd(), offset),
                SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(RawMap(page_size(), PROT_READ | PROT_WRITE, MAP_SHARED, gmem().fd(), largest),
              SyscallFailsWithErrno(EOVERFLOW));
  EXPECT_THAT(RawMap(2 * page_size(), PROT_READ | PROT_WRITE, MAP_SHARED, gmem().fd(),
                     largest - static_cast<off_t>(page_size())),
              SyscallFailsWithErrno(EOVERFLOW));
}

// mprotect: read-only makes writes fault with SIGSEGV (SEGV_ACCERR) and keeps reads working;
// read/write again restores writes. The data is the file's throughout.
TEST_F(Mmap, MprotectChangesAccessNotContents) {
  SET_UP_SHARED_GMEM(size());
  ASSERT_TRUE(FillBytes(map().bytes(), size(), 0x31));
  ASSERT_THAT(RawMprotect(map().addr(), size(), PROT_READ), SyscallSucceeds());
  EXPECT_TRUE(TouchRaisesAt(page(map(), 1), Access::kWrite, SIGSEGV, SEGV_ACCERR));
  EXPECT_TRUE(BytesAre(map().bytes(), size(), 0x31));
  ASSERT_THAT(RawMprotect(map().addr(), size(), PROT_NONE), SyscallSucceeds());
  EXPECT_TRUE(TouchRaisesAt(page(map(), 2), Access::kRead, SIGSEGV, SEGV_ACCERR));
  ASSERT_THAT(RawMprotect(map().addr(), size(), PROT_READ | PROT_WRITE), SyscallSucceeds());
  EXPECT_TRUE(TouchSucceeds(page(map(), 1), Access::kWrite));
  EXPECT_TRUE(BytesAre(page(map(), 2), page_size(), 0x31));
}

// mremap moves a guest_memfd mapping with its contents, and grows it in place or elsewhere;
// the grown part past i_size faults SIGBUS like any mapping past the end.
TEST_F(Mmap, MremapMovesAndGrows) {
  SET_UP_SHARED_GMEM(size());
  ASSERT_TRUE(FillBytes(map().bytes(), size(), 0x17));
  void* moved = mremap(map().addr(), size(), 2 * size(), MREMAP_MAYMOVE);
  ASSERT_NE(moved, MAP_FAILED) << "mremap(MREMAP_MAYMOVE) of a guest_memfd mapping: " << ErrnoName(errno);
  map().release();
  Mapping grown(moved, 2 * size());
  EXPECT_TRUE(BytesAre(grown.bytes(), size(), 0x17));
  EXPECT_TRUE(TouchRaisesAt(grown.bytes() + size(), Access::kRead, SIGBUS, BUS_ADRERR));
  ASSERT_TRUE(FillBytes(grown.bytes(), page_size(), 0x18));
  ASSERT_OK_AND_ASSIGN(Mapping check, gmem().Map(size()));
  EXPECT_TRUE(BytesAre(check.bytes(), page_size(), 0x18));
}

}  // namespace
}  // namespace gmem
