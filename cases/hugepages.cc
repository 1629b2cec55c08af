// Huge pages: what backs a mapping and how the hugetlb pool accounts for it.
//
// Mainline backends show the observables work: hugetlbfs (memfd MFD_HUGETLB, 2 MiB) reservation
// and allocation counters, the page size smaps reports, kpageflags' HUGE/THP/COMPOUND bits; and
// THP for anonymous and shmem (memfd) memory under the sysfs modes and MADV_HUGEPAGE/MADV_COLLAPSE.
// guest_memfd's hugetlb backing is an unmerged series (gmem-hugetlb-rfc-v2): alignment errnos,
// reservation at creation, and folio split/merge with conversion; those cases skip naming the
// profile until a kernel and profile provide it.
//
// Every case leaves the hugetlb pool and /proc/meminfo's Huge* lines as it found them: the
// fixture checks in TearDown.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/falloc.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fmt/format.h>

#include <chrono>
#include <optional>
#include <thread>
#include <vector>

#include "fixtures/backends.h"
#include "fixtures/bytes.h"
#include "fixtures/hugepage_pool.h"
#include "fixtures/ioctl.h"
#include "fixtures/kvm.h"
#include "fixtures/mm_observe.h"
#include "fixtures/require.h"
#include "fixtures/series.h"
#include "fixtures/syscall_matchers.h"
#include "fixtures/uapi/mm_mainline.h"
#include "fixtures/vm_fixture.h"

namespace gmem {
namespace {

constexpr size_t k2M = 2u << 20;
const size_t kPage = static_cast<size_t>(getpagesize());

// Polls `done` every 20 ms for at most `limit` (memory freed after an RCU grace period or by a
// worker shows up a little after the call that released it). Not a timing assertion: the case
// checks the final state, this only bounds how long it waits for it.
template <typename F>
bool Eventually(F done, std::chrono::milliseconds limit = std::chrono::milliseconds(5000)) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return done();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

// The 2 MiB counters moved by exactly (free, resv) since `before`, the rest unchanged.
::testing::AssertionResult MovedBy(const HugetlbCounters& before, long free, long resv) {
  auto now = HugetlbCounters::Read(k2M);
  if (!now.ok()) return ::testing::AssertionFailure() << now.error().message();
  HugetlbCounters want = before;
  want.free += free;
  want.resv += resv;
  if (now.value() == want) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "2 MiB hugetlb counters are " << now.value().Describe() << ", expected "
                                       << want.Describe() << " (free " << fmt::format("{:+}", free) << ", resv "
                                       << fmt::format("{:+}", resv) << " from " << before.Describe() << ")";
}

// Base fixture: snapshots /proc/meminfo's hugetlb lines and both pools, and checks that the case
// left them as it found them (waiting, bounded, for deferred frees).
class Hugepages : public ::testing::Test {
 protected:
  void SetUp() override {
    auto meminfo = MeminfoHugetlb();
    ASSERT_TRUE(meminfo.ok()) << meminfo.error().message();
    meminfo_ = meminfo.value();
  }
  void TearDown() override {
    if (meminfo_.empty()) return;
    std::map<std::string, uint64_t> now;
    Eventually([&] {
      auto m = MeminfoHugetlb();
      now = m.ok() ? m.value() : std::map<std::string, uint64_t>{};
      return now == meminfo_;
    });
    EXPECT_EQ(now, meminfo_) << "/proc/meminfo hugetlb lines differ from before the case";
  }

 private:
  std::map<std::string, uint64_t> meminfo_;
};

// ---- hugetlbfs (memfd MFD_HUGETLB, 2 MiB) ----

class HugetlbMemfd : public Hugepages {
 protected:
  void SetUp() override {
    Hugepages::SetUp();
    REQUIRE_FEATURE("hugetlb.2M");
  }
  // A 2 MiB hugetlb memfd of `size`, with a pool that has `size` free (restored afterwards).
  Result<BackendFile> Create(size_t size) { return FindBackend("hugetlbfs_2M")->Create(size); }
  static HugetlbCounters Counters() {
    auto c = HugetlbCounters::Read(k2M);
    EXPECT_TRUE(c.ok()) << c.error().message();
    return c.ok() ? c.value() : HugetlbCounters{};
  }
};

// A shared mapping reserves its page at mmap; the first fault turns the reservation into an
// allocation; the page belongs to the file, so munmap keeps it and close gives it back.
TEST_F(HugetlbMemfd, SharedMappingReservesAndFaultAllocates) {
  ASSERT_OK_AND_ASSIGN(BackendFile file, Create(k2M));
  HugetlbCounters before = Counters();
  std::optional<Mapping> map;
  {
    ASSERT_OK_AND_ASSIGN(Mapping m, file.Map(k2M));
    map.emplace(std::move(m));
  }
  EXPECT_TRUE(MovedBy(before, 0, +1)) << "after mmap";
  map->bytes()[0] = 1;
  EXPECT_TRUE(MovedBy(before, -1, 0)) << "after the first fault";
  map.reset();
  EXPECT_TRUE(MovedBy(before, -1, 0)) << "after munmap";
  file.fd.reset();
  EXPECT_TRUE(MovedBy(before, 0, 0)) << "after close";
}

// fallocate allocates every huge page its range touches, however unaligned; PUNCH_HOLE over the
// whole page frees it.
TEST_F(HugetlbMemfd, FallocateAllocatesWholePagesPunchHoleFreesThem) {
  ASSERT_OK_AND_ASSIGN(BackendFile file, Create(k2M));
  HugetlbCounters before = Counters();
  ASSERT_THAT(fallocate(file.fd.get(), 0, static_cast<off_t>(kPage), static_cast<off_t>(kPage)), SyscallSucceeds());
  EXPECT_TRUE(MovedBy(before, -1, 0)) << "after fallocate of one small page";
  ASSERT_THAT(fallocate(file.fd.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, k2M), SyscallSucceeds());
  EXPECT_TRUE(MovedBy(before, 0, 0)) << "after PUNCH_HOLE";
}

// The file size and a mapping's file offset must be multiples of the huge page size: EINVAL.
TEST_F(HugetlbMemfd, SizeAndMapOffsetMustBeHugeAligned) {
  ASSERT_OK_AND_ASSIGN(BackendFile file, Create(2 * k2M));
  EXPECT_THAT(ftruncate(file.fd.get(), static_cast<off_t>(k2M + kPage)), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(RawMap(k2M, PROT_READ | PROT_WRITE, MAP_SHARED, file.fd.get(), static_cast<off_t>(kPage)),
              SyscallFailsWithErrno(EINVAL));
  struct stat st {};
  ASSERT_EQ(fstat(file.fd.get(), &st), 0);
  EXPECT_EQ(st.st_size, static_cast<off_t>(2 * k2M));
  EXPECT_EQ(st.st_blksize, static_cast<blksize_t>(k2M));
}

// A shared mapping needs its pages reserved up front: one page more than the pool has free
// fails at mmap with ENOMEM, and reserves nothing.
TEST_F(HugetlbMemfd, MmapBeyondThePoolFailsWithEnomem) {
  ASSERT_OK_AND_ASSIGN(BackendFile pool_holder, Create(k2M));  // the pool has at least one free page
  HugetlbCounters before = Counters();
  if (before.overcommit != 0) GTEST_SKIP() << "nr_overcommit_hugepages = " << before.overcommit << " lets the pool grow";
  const size_t pages = static_cast<size_t>(before.free - before.resv) + 1;
  int fd = static_cast<int>(syscall(SYS_memfd_create, "gmemtest-short", MFD_CLOEXEC | MFD_HUGETLB | (21u << MFD_HUGE_SHIFT)));
  ASSERT_GE(fd, 0);
  FileDescriptor file(fd);
  ASSERT_EQ(ftruncate(fd, static_cast<off_t>(pages * k2M)), 0);
  EXPECT_THAT(RawMap(pages * k2M, PROT_READ | PROT_WRITE, MAP_SHARED, fd), SyscallFailsWithErrno(ENOMEM));
  EXPECT_TRUE(MovedBy(before, 0, 0));
}

// smaps reports the mapping's page size as 2 MiB, for the kernel and the MMU alike.
TEST_F(HugetlbMemfd, SmapsReportsHugePageSize) {
  ASSERT_OK_AND_ASSIGN(BackendFile file, Create(k2M));
  ASSERT_OK_AND_ASSIGN(Mapping map, file.Map(k2M));
  map.bytes()[0] = 1;
  ASSERT_OK_AND_ASSIGN(SmapsEntry vma, SmapsOf(map.addr()));
  EXPECT_EQ(vma.Field("KernelPageSize"), k2M / 1024) << vma.header;
  EXPECT_EQ(vma.Field("MMUPageSize"), k2M / 1024) << vma.header;
}

// kpageflags marks the frames as one hugetlb folio: HUGE with a compound head, then tails at the
// following frames.
TEST_F(HugetlbMemfd, KpageflagsShowOneHugetlbFolio) {
  if (std::string why = WhyNoKpageFlags(); !why.empty()) GTEST_SKIP() << "/proc/kpageflags unusable: " << why;
  ASSERT_OK_AND_ASSIGN(BackendFile file, Create(k2M));
  ASSERT_OK_AND_ASSIGN(Mapping map, file.Map(k2M));
  map.bytes()[0] = 1;
  ASSERT_OK_AND_ASSIGN(uint64_t head_pfn, PfnOf(map.bytes()));
  ASSERT_OK_AND_ASSIGN(uint64_t head, KpageFlags(head_pfn));
  ASSERT_OK_AND_ASSIGN(uint64_t tail, KpageFlags(head_pfn + 1));
  const uint64_t huge_head = KpageFlag(KPF_HUGE) | KpageFlag(KPF_COMPOUND_HEAD);
  const uint64_t huge_tail = KpageFlag(KPF_HUGE) | KpageFlag(KPF_COMPOUND_TAIL);
  EXPECT_EQ(head & huge_head, huge_head) << KpageFlagsName(head);
  EXPECT_EQ(tail & huge_tail, huge_tail) << KpageFlagsName(tail);
  ASSERT_OK_AND_ASSIGN(uint64_t next_pfn, PfnOf(map.bytes() + kPage));
  EXPECT_EQ(next_pfn, head_pfn + 1);
}

// ---- THP: anonymous memory and shmem (memfd) ----

// The two THP backends: which sysfs mode governs them and which smaps field counts PMD mappings.
struct ThpKind {
  const char* name;
  const char* mode_knob;
  const char* size_knob;  // the 2 MiB size's own knob, set to "inherit" so mode_knob rules (or null)
  const char* pmd_field;
  bool shared;
};
void PrintTo(const ThpKind* kind, std::ostream* os) { *os << kind->name; }
const ThpKind kAnon{"anon", "/sys/kernel/mm/transparent_hugepage/enabled",
                    "/sys/kernel/mm/transparent_hugepage/hugepages-2048kB/enabled", "AnonHugePages", false};
// memfd files follow the global shmem mode only (the per-size knobs are for anonymous shmem).
const ThpKind kShmem{"shmem", "/sys/kernel/mm/transparent_hugepage/shmem_enabled", nullptr, "ShmemPmdMapped", true};

class Thp : public Hugepages {
 protected:
  void SetUp() override {
    Hugepages::SetUp();
    REQUIRE_FEATURE("thp");
  }
  // A 2 MiB-aligned 2 MiB mapping of `kind` (a fresh memfd for shmem), nothing faulted in yet.
  void MapRegion(const ThpKind& kind) {
    if (kind.shared) {
      int fd = static_cast<int>(syscall(SYS_memfd_create, "gmemtest-thp", MFD_CLOEXEC));
      ASSERT_GE(fd, 0);
      memfd_ = FileDescriptor(fd);
      ASSERT_EQ(ftruncate(fd, static_cast<off_t>(k2M)), 0);
    }
    ASSERT_OK_AND_ASSIGN(map_, MapAligned(k2M, k2M, PROT_READ | PROT_WRITE,
                                          kind.shared ? MAP_SHARED : MAP_PRIVATE | MAP_ANONYMOUS, memfd_.get()));
  }
  // Sets `kind`'s THP mode for the rest of the case.
  void SetMode(const ThpKind& kind, const char* mode) {
    if (kind.size_knob && access(kind.size_knob, F_OK) == 0) {
      ASSERT_OK_AND_ASSIGN(ScopedSysfsChoice size, ScopedSysfsChoice::Set(kind.size_knob, "inherit"));
      knobs_.push_back(std::move(size));
    }
    ASSERT_OK_AND_ASSIGN(ScopedSysfsChoice knob, ScopedSysfsChoice::Set(kind.mode_knob, mode));
    knobs_.push_back(std::move(knob));
  }
  // The region is mapped by one PMD-sized THP: smaps' field says 2 MiB and kpageflags says THP.
  ::testing::AssertionResult MappedByThp(const ThpKind& kind, bool expected) {
    auto vma = SmapsOf(map_.addr());
    if (!vma.ok()) return ::testing::AssertionFailure() << vma.error().message();
    uint64_t pmd_kb = vma.value().Field(kind.pmd_field);
    std::string flags = "(kpageflags unusable)";
    bool thp = expected;
    if (WhyNoKpageFlags().empty()) {
      auto f = KpageFlagsAt(map_.addr());
      if (!f.ok()) return ::testing::AssertionFailure() << f.error().message();
      thp = f.value() & KpageFlag(KPF_THP);
      flags = KpageFlagsName(f.value());
    }
    bool huge = pmd_kb == k2M / 1024 && thp;
    bool small = pmd_kb == 0 && !thp;
    if (expected ? huge : small) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << kind.name << " region: " << kind.pmd_field << " " << pmd_kb
                                         << " kB, kpageflags " << flags << "; expected "
                                         << (expected ? "one 2 MiB THP" : "small pages");
  }

  FileDescriptor memfd_;
  Mapping map_;
  std::vector<ScopedSysfsChoice> knobs_;
};

// MADV_COLLAPSE turns a populated region into one THP with the same contents, whatever the sysfs
// mode says short of "deny" (here "never"), for anonymous and shmem memory alike.
class ThpCollapse : public Thp, public ::testing::WithParamInterface<const ThpKind*> {};

TEST_P(ThpCollapse, MadvCollapseMakesOneThpInNeverMode) {
  const ThpKind& kind = *GetParam();
  ASSERT_NO_FATAL_FAILURE(SetMode(kind, "never"));
  ASSERT_NO_FATAL_FAILURE(MapRegion(kind));
  ASSERT_TRUE(FillBytes(map_.bytes(), k2M, 0x3e));
  ASSERT_TRUE(MappedByThp(kind, false));
  SyscallResult r;
  for (int attempt = 0; attempt < 3; ++attempt) {  // EAGAIN: a transient failure to isolate pages
    long ret = madvise(map_.addr(), k2M, MADV_COLLAPSE);
    r = SyscallResult::Capture(ret, errno, fmt::format("madvise({}, 2M, MADV_COLLAPSE)", map_.addr()));
    if (r.ok() || r.err != EAGAIN) break;
  }
  ASSERT_THAT(r, SyscallSucceeds());
  EXPECT_TRUE(MappedByThp(kind, true));
  EXPECT_TRUE(BytesAre(map_.bytes(), k2M, 0x3e));
}

INSTANTIATE_TEST_SUITE_P(, ThpCollapse, ::testing::Values(&kAnon, &kShmem),
                         [](const auto& info) { return std::string(info.param->name); });

// A first fault in an aligned 2 MiB region maps one THP exactly when the backend's sysfs mode
// allows it: "always" always, "advise"/"madvise" only after MADV_HUGEPAGE, "never" not even then.
struct FaultMode {
  const ThpKind* kind;
  const char* mode;
  bool madvise;
  bool thp;
};
void PrintTo(const FaultMode& m, std::ostream* os) {
  *os << m.kind->name << " in mode " << m.mode << (m.madvise ? " with MADV_HUGEPAGE" : "");
}
class ThpFault : public Thp, public ::testing::WithParamInterface<FaultMode> {};

TEST_P(ThpFault, MapsThpOnlyWhereTheModeAllows) {
  const FaultMode& p = GetParam();
  ASSERT_NO_FATAL_FAILURE(SetMode(*p.kind, p.mode));
  ASSERT_NO_FATAL_FAILURE(MapRegion(*p.kind));
  if (p.madvise) {
    ASSERT_EQ(madvise(map_.addr(), k2M, MADV_HUGEPAGE), 0);
  }
  map_.bytes()[0] = 1;
  EXPECT_TRUE(MappedByThp(*p.kind, p.thp));
}

INSTANTIATE_TEST_SUITE_P(, ThpFault,
                         ::testing::Values(FaultMode{&kShmem, "always", false, true},
                                           FaultMode{&kShmem, "advise", true, true},
                                           FaultMode{&kShmem, "advise", false, false},
                                           FaultMode{&kShmem, "never", true, false},
                                           FaultMode{&kAnon, "madvise", true, true},
                                           FaultMode{&kAnon, "madvise", false, false},
                                           FaultMode{&kAnon, "never", true, false}),
                         [](const auto& info) {
                           return fmt::format("{}_{}{}", info.param.kind->name, info.param.mode,
                                              info.param.madvise ? "_MadvHugepage" : "");
                         });

// shmem's "deny" mode forbids THP outright, MADV_COLLAPSE included: EINVAL.
TEST_F(Thp, ShmemDenyModeRefusesCollapse) {
  ASSERT_NO_FATAL_FAILURE(SetMode(kShmem, "deny"));
  ASSERT_NO_FATAL_FAILURE(MapRegion(kShmem));
  ASSERT_TRUE(FillBytes(map_.bytes(), k2M, 1));
  EXPECT_THAT(madvise(map_.addr(), k2M, MADV_COLLAPSE), SyscallFailsWithErrno(EINVAL));
  EXPECT_TRUE(MappedByThp(kShmem, false));
}

// ---- guest_memfd backed by hugetlb (series gmem-hugetlb-rfc-v2) ----

uint64_t SeriesValue(const char* name) { return *series::ActiveSelection().Value(name); }

// A default VM whose guest_memfd files can be hugetlb-backed; skips naming the series' capability
// (and the profile that would supply it) first.
class GmemHugetlb : public Hugepages {
 protected:
  explicit GmemHugetlb(unsigned long vm_type = KVM_X86_DEFAULT_VM) : vm_type_(vm_type) {}
  void SetUp() override {
    Hugepages::SetUp();
    REQUIRE_FEATURE("kvm.cap.GMEM_HUGETLB");
    REQUIRE_UAPI("GUEST_MEMFD_FLAG_HUGETLB");
    REQUIRE_UAPI("GUESTMEM_HUGETLB_FLAG_2MB");
    REQUIRE_FEATURE("hugetlb.2M");
    auto kvm = Kvm::Open();
    ASSERT_TRUE(kvm.ok()) << kvm.error().message();
    auto vm = kvm.value().CreateVm(vm_type_);
    ASSERT_TRUE(vm.ok()) << vm.error().message();
    vm_.emplace(std::move(vm).value());
  }
  const Vm& vm() const { return *vm_; }
  static uint64_t HugetlbFlags() { return SeriesValue("GUEST_MEMFD_FLAG_HUGETLB") | SeriesValue("GUESTMEM_HUGETLB_FLAG_2MB"); }
  static HugetlbCounters Counters() {
    auto c = HugetlbCounters::Read(k2M);
    EXPECT_TRUE(c.ok()) << c.error().message();
    return c.ok() ? c.value() : HugetlbCounters{};
  }

 private:
  unsigned long vm_type_;
  std::optional<Vm> vm_;
};

// Sizes must be multiples of the huge page size (EINVAL otherwise); a file's block size is the
// huge page size.
TEST_F(GmemHugetlb, RejectsSizesNotHugeAligned) {
  ASSERT_OK_AND_ASSIGN(HugepagePool pool, HugepagePool::Reserve(k2M, 1));
  for (uint64_t size : {uint64_t{kPage}, uint64_t{k2M + kPage}, uint64_t{k2M / 2}})
    EXPECT_THAT(vm().RawCreateGuestMemfd(size, HugetlbFlags()), SyscallFailsWithErrno(EINVAL));
  ASSERT_OK_AND_ASSIGN(GuestMemfd gmem, vm().CreateGuestMemfd(k2M, HugetlbFlags()));
  struct stat st {};
  ASSERT_EQ(fstat(gmem.fd(), &st), 0);
  EXPECT_EQ(st.st_size, static_cast<off_t>(k2M));
  EXPECT_EQ(st.st_blksize, static_cast<blksize_t>(k2M));
}

// fallocate's offset and length must be huge-page aligned: EINVAL (unlike hugetlbfs, which rounds;
// the series' selftest asserts the failure, its WIP successor the errno).
TEST_F(GmemHugetlb, RejectsUnalignedFallocate) {
  ASSERT_OK_AND_ASSIGN(HugepagePool pool, HugepagePool::Reserve(k2M, 2));
  ASSERT_OK_AND_ASSIGN(GuestMemfd gmem, vm().CreateGuestMemfd(2 * k2M, HugetlbFlags()));
  EXPECT_THAT(gmem.RawFallocate(FALLOC_FL_KEEP_SIZE, static_cast<off_t>(kPage), k2M), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(gmem.RawFallocate(FALLOC_FL_KEEP_SIZE, 0, static_cast<off_t>(kPage)), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(gmem.RawFallocate(FALLOC_FL_KEEP_SIZE, 0, k2M), SyscallSucceeds());
}

blkcnt_t BlocksOf(const GuestMemfd& gmem) {
  struct stat st {};
  EXPECT_EQ(fstat(gmem.fd(), &st), 0);
  return st.st_blocks;
}

// The file reserves its pages at creation; fallocate turns the reservation into an allocation
// (counted in st_blocks), PUNCH_HOLE back into a reservation, and close (after a grace period)
// releases it all. Surplus pages are never used.
TEST_F(GmemHugetlb, ReservesAtCreateAllocatesAtFallocate) {
  ASSERT_OK_AND_ASSIGN(HugepagePool pool, HugepagePool::Reserve(k2M, 1));
  HugetlbCounters before = Counters();
  std::optional<GuestMemfd> gmem;
  {
    ASSERT_OK_AND_ASSIGN(GuestMemfd created, vm().CreateGuestMemfd(k2M, HugetlbFlags()));
    gmem.emplace(std::move(created));
  }
  EXPECT_TRUE(MovedBy(before, 0, +1)) << "after KVM_CREATE_GUEST_MEMFD";
  ASSERT_THAT(gmem->RawFallocate(FALLOC_FL_KEEP_SIZE, 0, k2M), SyscallSucceeds());
  EXPECT_TRUE(MovedBy(before, -1, 0)) << "after fallocate";
  EXPECT_EQ(BlocksOf(*gmem), static_cast<blkcnt_t>(k2M / 512)) << "st_blocks after fallocate";
  ASSERT_THAT(gmem->RawPunchHole(0, k2M), SyscallSucceeds());
  EXPECT_TRUE(MovedBy(before, 0, +1)) << "after PUNCH_HOLE";
  EXPECT_EQ(BlocksOf(*gmem), 0) << "st_blocks after PUNCH_HOLE";
  gmem.reset();
  EXPECT_TRUE(Eventually([&] { return static_cast<bool>(MovedBy(before, 0, 0)); })) << MovedBy(before, 0, 0).message();
}

// Conversion splits a private huge folio when part of it becomes shared and merges it again once
// the whole range is private. Observed through kpageflags at the folio's frames (recorded while
// shared): COMPOUND_HEAD|HUGE when merged, a plain frame when split. The series does not define
// kpageflags; this is what splitting and merging a hugetlb folio means for the frames.
class GmemHugetlbConversion : public GmemHugetlb {
 protected:
  GmemHugetlbConversion() : GmemHugetlb(KVM_X86_SW_PROTECTED_VM) {}
  void SetUp() override {
    GmemHugetlb::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    REQUIRE_FEATURE("gmem.ioctl.GMEM_CONVERT_SHARED");
    REQUIRE_FEATURE("gmem.ioctl.GMEM_CONVERT_PRIVATE");
    REQUIRE_UAPI("GUEST_MEMFD_FLAG_SUPPORT_SHARED");
    if (std::string why = WhyNoKpageFlags(); !why.empty()) GTEST_SKIP() << "/proc/kpageflags unusable: " << why;
  }
  // KVM_GMEM_CONVERT_{SHARED,PRIVATE} on [first_page, first_page + pages): struct {offset, size, error_offset, ...}.
  SyscallResult Convert(const GuestMemfd& gmem, uint64_t first_page, uint64_t pages, bool to_private) {
    const char* name = to_private ? "KVM_GMEM_CONVERT_PRIVATE" : "KVM_GMEM_CONVERT_SHARED";
    unsigned long request = static_cast<unsigned long>(SeriesValue(name));
    std::vector<uint64_t> arg(_IOC_SIZE(request) / 8, 0);
    arg[0] = first_page * kPage;
    arg[1] = pages * kPage;
    return RawIoctl(gmem.fd(), request, arg.data(), fmt::format("{{offset={:#x}, size={:#x}}}", arg[0], arg[1]));
  }
  static ::testing::AssertionResult Merged(uint64_t head_pfn, bool expected) {
    auto head = KpageFlags(head_pfn);
    if (!head.ok()) return ::testing::AssertionFailure() << head.error().message();
    const uint64_t merged = KpageFlag(KPF_HUGE) | KpageFlag(KPF_COMPOUND_HEAD);
    bool is_merged = (head.value() & merged) == merged;
    if (is_merged == expected) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "frame " << fmt::format("{:#x}", head_pfn) << " has kpageflags "
                                         << KpageFlagsName(head.value()) << ", expected the head of "
                                         << (expected ? "a merged 2 MiB hugetlb folio" : "a split folio");
  }
};

TEST_F(GmemHugetlbConversion, SplitsOnPartialConversionMergesWhenWhole) {
  ASSERT_OK_AND_ASSIGN(HugepagePool pool, HugepagePool::Reserve(k2M, 1));
  const uint64_t pages = k2M / kPage;
  ASSERT_OK_AND_ASSIGN(GuestMemfd gmem, vm().CreateGuestMemfd(k2M, HugetlbFlags() | SeriesValue("GUEST_MEMFD_FLAG_SUPPORT_SHARED")));
  ASSERT_THAT(gmem.RawFallocate(FALLOC_FL_KEEP_SIZE, 0, k2M), SyscallSucceeds());
  ASSERT_OK_AND_ASSIGN(Mapping map, gmem.Map(k2M));
  map.bytes()[0] = 1;
  ASSERT_OK_AND_ASSIGN(uint64_t head_pfn, PfnOf(map.bytes()));
  EXPECT_TRUE(Merged(head_pfn, false)) << "while the whole range is shared";

  ASSERT_THAT(Convert(gmem, 0, pages, true), SyscallSucceeds());
  EXPECT_TRUE(Merged(head_pfn, true)) << "once the whole range is private";
  ASSERT_THAT(Convert(gmem, 3, 1, false), SyscallSucceeds());
  EXPECT_TRUE(Merged(head_pfn, false)) << "with page 3 shared";
  map.bytes()[3 * kPage] = 1;
  ASSERT_OK_AND_ASSIGN(uint64_t shared_pfn, PfnOf(map.bytes() + 3 * kPage));
  EXPECT_EQ(shared_pfn, head_pfn + 3) << "the shared page is the folio's own frame";
  ASSERT_THAT(Convert(gmem, 3, 1, true), SyscallSucceeds());
  EXPECT_TRUE(Merged(head_pfn, true)) << "once page 3 is private again";
}

}  // namespace
}  // namespace gmem
