// write()/pwrite() as a way to populate a file's pages without mapping them.
//
// The family runs over memfd (shmem: the mainline semantics every backend is compared with) and
// guest_memfd created with the write flag of the gmem-write series (GUEST_MEMFD_FLAG_WRITE, from
// the kernel headers or an explicit --series-profile=gmem-write-v7; fixtures/series.h). What the
// two do differently is one row each in kSemantics, from [PATCH v7 1/2]
// <20251114151828.98165-2-kalyazin@amazon.com>: kvm_gmem_write_begin() refuses (EINVAL) a page
// that is unaligned or past i_size, and write_iter = generic_perform_write goes page by page, so
// a write that reaches such a page after whole pages stops there (a short write).
// Without the flag, write() and pwrite() give the kernel's "no write path" errnos (mainline) or
// ENODEV (the series).

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "fixtures/backends.h"
#include "fixtures/bytes.h"
#include "fixtures/kvm.h"
#include "fixtures/mapping.h"
#include "fixtures/require.h"
#include "fixtures/series.h"
#include "fixtures/syscall_matchers.h"
#include "fixtures/vm_fixture.h"

namespace gmem {
namespace {

// How one backend answers write(): the only place the family's expectations differ.
struct WriteSemantics {
  std::string backend;
  int unaligned_errno;          // pwrite at an unaligned offset or of an unaligned length (0: written)
  int past_eof_errno;           // pwrite wholly past EOF (0: written, and the file grows)
  bool stops_at_bad_page;       // a write reaching an unaligned tail or EOF is short (else whole)
  bool counts_blocks;           // st_blocks follows population (guest_memfd keeps none)
};

const WriteSemantics kSemantics[] = {
    {"memfd", 0, 0, false, true},
    {"guest_memfd_write", EINVAL, EINVAL, true, false},
};

const Backend* GmemWriteBackend() {
  static const auto* backend =
      MakeSeriesGuestMemfdBackend("guest_memfd_write", KVM_X86_DEFAULT_VM,
                                  GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED, "GUEST_MEMFD_FLAG_WRITE",
                                  {"gmem.flag.WRITE", "gmem.flag.MMAP", "gmem.flag.INIT_SHARED"})
          .release();
  return backend;
}

SyscallResult Pwrite(int fd, const void* buf, size_t len, off_t offset) {
  long r = pwrite(fd, buf, len, offset);
  return SyscallResult::Capture(r, errno, fmt::format("pwrite(fd {}, buf, {:#x}, {:#x})", fd, len, offset));
}

SyscallResult Write(int fd, const void* buf, size_t len) {
  long r = write(fd, buf, len);
  return SyscallResult::Capture(r, errno, fmt::format("write(fd {}, buf, {:#x})", fd, len));
}

off_t FileSize(int fd) {
  struct stat st {};
  return fstat(fd, &st) == 0 ? st.st_size : -1;
}

class WritePopulate : public ::testing::TestWithParam<const Backend*> {
 protected:
  static constexpr size_t kPages = 4;

  void SetUp() override {
    REQUIRE_BACKEND(GetParam());
    for (const WriteSemantics& s : kSemantics)
      if (s.backend == GetParam()->name()) semantics_ = &s;
    ASSERT_NE(semantics_, nullptr) << "no kSemantics row for " << GetParam()->name();
    ASSERT_OK_AND_ASSIGN(file_, GetParam()->Create(size()));
    pattern_.resize(size());
    for (size_t i = 0; i < pattern_.size(); ++i) pattern_[i] = static_cast<uint8_t>(i / page() * 17 + i % 251 + 1);
  }

  static size_t page() { return static_cast<size_t>(getpagesize()); }
  static size_t size() { return kPages * page(); }
  int fd() const { return file_.fd.get(); }
  const WriteSemantics& semantics() const { return *semantics_; }
  const uint8_t* pattern(size_t offset = 0) const { return pattern_.data() + offset; }

  // The outcome a write that reaches a bad page after `whole` good bytes has here.
  ::testing::Matcher<SyscallResult> StopsAfter(size_t whole, size_t requested) const {
    return SyscallSucceedsWithValue(semantics().stops_at_bad_page ? whole : requested);
  }
  ::testing::Matcher<SyscallResult> RefusedWith(int err, size_t requested) const {
    if (err) return SyscallFailsWithErrno(err);
    return SyscallSucceedsWithValue(requested);
  }

  // The file's pages as a later MAP_SHARED mapping sees them.
  Result<Mapping> MapAll() const { return file_.Map(size()); }

  BackendFile file_;
  const WriteSemantics* semantics_ = nullptr;
  std::vector<uint8_t> pattern_;
};

// pwrite of whole pages at a page-aligned offset writes all of them.
TEST_P(WritePopulate, PwriteOfWholePagesWritesThemAll) {
  EXPECT_THAT(Pwrite(fd(), pattern(), 2 * page(), page()), SyscallSucceedsWithValue(2 * page()));
  EXPECT_EQ(FileSize(fd()), static_cast<off_t>(size()));
}

// Data written by pwrite is what a mapping made afterwards reads; unwritten pages read zero.
TEST_P(WritePopulate, DataIsSeenThroughALaterMapping) {
  ASSERT_THAT(Pwrite(fd(), pattern(page()), page(), page()), SyscallSucceedsWithValue(page()));
  ASSERT_OK_AND_ASSIGN(Mapping map, MapAll());
  EXPECT_EQ(std::memcmp(map.bytes() + page(), pattern(page()), page()), 0);
  EXPECT_TRUE(BytesAre(map.bytes(), page(), 0));
  EXPECT_TRUE(BytesAre(map.bytes() + 2 * page(), 2 * page(), 0));
}

// pwrite populates the page cache with no mapping at all: a mapping made afterwards finds exactly
// the written pages resident (mincore), and st_blocks counts them where the backend keeps it.
TEST_P(WritePopulate, PopulatesPagesWithoutAnyMapping) {
  ASSERT_THAT(Pwrite(fd(), pattern(), page(), 2 * page()), SyscallSucceedsWithValue(page()));
  struct stat st {};
  ASSERT_EQ(fstat(fd(), &st), 0);
  EXPECT_EQ(st.st_blocks, semantics().counts_blocks ? static_cast<blkcnt_t>(page() / 512) : 0);
  ASSERT_OK_AND_ASSIGN(Mapping map, MapAll());
  ASSERT_OK_AND_ASSIGN(std::vector<bool> resident, ResidentPages(map));
  EXPECT_EQ(resident, (std::vector<bool>{false, false, true, false}));
}

// write() writes at the file offset and advances it, like any seekable file.
TEST_P(WritePopulate, WriteAdvancesTheFileOffset) {
  ASSERT_EQ(lseek(fd(), static_cast<off_t>(page()), SEEK_SET), static_cast<off_t>(page()));
  EXPECT_THAT(Write(fd(), pattern(), page()), SyscallSucceedsWithValue(page()));
  EXPECT_THAT(Write(fd(), pattern(page()), page()), SyscallSucceedsWithValue(page()));
  EXPECT_EQ(lseek(fd(), 0, SEEK_CUR), static_cast<off_t>(3 * page()));
  ASSERT_OK_AND_ASSIGN(Mapping map, MapAll());
  EXPECT_EQ(std::memcmp(map.bytes() + page(), pattern(), 2 * page()), 0);
}

// A write over a page that is already mapped and written replaces its contents.
TEST_P(WritePopulate, OverwritesAPageAlreadyFaultedIn) {
  ASSERT_OK_AND_ASSIGN(Mapping map, MapAll());
  ASSERT_TRUE(FillBytes(map.bytes(), page(), 0x5a));
  ASSERT_THAT(Pwrite(fd(), pattern(), page(), 0), SyscallSucceedsWithValue(page()));
  EXPECT_EQ(std::memcmp(map.bytes(), pattern(), page()), 0);
}

// An unaligned offset or length: written on shmem; refused by guest_memfd's write_begin.
TEST_P(WritePopulate, UnalignedOffsetOrLength) {
  EXPECT_THAT(Pwrite(fd(), pattern(), 1, 0), RefusedWith(semantics().unaligned_errno, 1));
  EXPECT_THAT(Pwrite(fd(), pattern(), page(), 1), RefusedWith(semantics().unaligned_errno, page()));
  EXPECT_THAT(Pwrite(fd(), pattern(), page() - 8, page() + 8),
              RefusedWith(semantics().unaligned_errno, page() - 8));
}

// A write wholly past EOF: extends a shmem file; refused by guest_memfd, whose size is fixed.
TEST_P(WritePopulate, PastEndOfFile) {
  EXPECT_THAT(Pwrite(fd(), pattern(), page(), size()), RefusedWith(semantics().past_eof_errno, page()));
  EXPECT_EQ(FileSize(fd()), static_cast<off_t>(semantics().past_eof_errno ? size() : size() + page()));
}

// A write straddling EOF: whole on shmem (the file grows); short on guest_memfd, up to EOF.
TEST_P(WritePopulate, StraddlingEndOfFile) {
  EXPECT_THAT(Pwrite(fd(), pattern(), 2 * page(), size() - page()), StopsAfter(page(), 2 * page()));
}

// Whole pages followed by a partial one: whole on shmem; short on guest_memfd, the whole pages only.
TEST_P(WritePopulate, PartialTailPage) {
  EXPECT_THAT(Pwrite(fd(), pattern(), 2 * page() + 100, 0), StopsAfter(2 * page(), 2 * page() + 100));
  ASSERT_OK_AND_ASSIGN(Mapping map, MapAll());
  EXPECT_EQ(std::memcmp(map.bytes(), pattern(), 2 * page()), 0);
}

std::vector<const Backend*> WriteBackends() { return {FindBackend("memfd"), GmemWriteBackend()}; }
INSTANTIATE_TEST_SUITE_P(, WritePopulate, ::testing::ValuesIn(WriteBackends()), BackendParamName);

// ---- guest_memfd without the write flag ----

// What write() and pwrite() give on a guest_memfd created without GUEST_MEMFD_FLAG_WRITE.
struct NoFlagAnswer {
  const char* kernel;
  int write_errno;
  int pwrite_errno;
};
// Mainline (7.3 virt/kvm/guest_memfd.c kvm_gmem_fops: no write_iter, file without FMODE_PWRITE):
// vfs_write() finds no FMODE_CAN_WRITE, ksys_pwrite64() no FMODE_PWRITE.
constexpr NoFlagAnswer kMainline{"mainline (no write_iter, no FMODE_PWRITE)", EINVAL, ESPIPE};
// gmem-write-v7: write_iter and FMODE_PWRITE on every guest_memfd; write_begin refuses without the flag.
constexpr NoFlagAnswer kWriteSeries{"gmem-write-v7 (kvm_gmem_write_begin without the flag)", ENODEV, ENODEV};

class WriteWithoutFlag : public VmTest {
 protected:
  // The answer this kernel gives, or why that cannot be known: an advertised flag bit no source
  // names may be the write series, which changes write() for every guest_memfd.
  std::optional<std::string> Unknowable() const {
    if (ProbedFeatures().Has("gmem.flag.WRITE")) return std::nullopt;
    uint64_t known = 0;  // every bit some gmem.flag.* feature names
    for (const Feature& f : ProbedFeatures().all())
      if (f.name.starts_with("gmem.flag.") && f.state == FeatureState::kPresent) known |= static_cast<uint64_t>(f.value);
    uint64_t unknown = static_cast<uint64_t>(ProbedFeatures().Value("gmem.flags.DEFAULT")) & ~known;
    if (!unknown) return std::nullopt;
    return fmt::format("the kernel advertises guest_memfd flag bits {:#x} that no header or selected profile "
                       "names; if one is GUEST_MEMFD_FLAG_WRITE, write() differs (select --series-profile="
                       "gmem-write-v7 or build with GMEMTEST_KERNEL_HEADERS)", unknown);
  }
  const NoFlagAnswer& Answer() const { return ProbedFeatures().Has("gmem.flag.WRITE") ? kWriteSeries : kMainline; }
};

// write() and pwrite() on a guest_memfd without the write flag are refused.
TEST_F(WriteWithoutFlag, IsRefused) {
  REQUIRE_FEATURE("gmem");
  if (auto why = Unknowable()) GTEST_SKIP() << *why;
  std::vector<uint8_t> buf(page_size(), 0xab);
  for (uint64_t flags : {uint64_t{0}, uint64_t{GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED}}) {
    if (flags && !ProbedFeatures().Has("gmem.flag.INIT_SHARED")) continue;
    ASSERT_OK_AND_ASSIGN(GuestMemfd gmem, vm().CreateGuestMemfd(4 * page_size(), flags));
    SCOPED_TRACE(fmt::format("{}, flags {}", Answer().kernel, GmemFlagsName(flags)));
    EXPECT_THAT(Write(gmem.fd(), buf.data(), buf.size()), SyscallFailsWithErrno(Answer().write_errno));
    EXPECT_THAT(Pwrite(gmem.fd(), buf.data(), buf.size(), 0), SyscallFailsWithErrno(Answer().pwrite_errno));
  }
}

}  // namespace
}  // namespace gmem
