// fallocate on a guest_memfd: only allocation and hole punching, both with FALLOC_FL_KEEP_SIZE,
// on page-aligned ranges. Allocation must stay inside i_size; punching may run past it.

#include <gtest/gtest.h>
#include <linux/falloc.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <initializer_list>
#include <vector>

#include "fixtures/bytes.h"
#include "fixtures/kvm.h"
#include "fixtures/mapping.h"
#include "fixtures/require.h"
#include "fixtures/shared_gmem.h"
#include "fixtures/syscall_matchers.h"
#include "fixtures/vm_fixture.h"

namespace gmem {
namespace {

constexpr int kAllocate = FALLOC_FL_KEEP_SIZE;
constexpr int kPunchHole = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
constexpr uint8_t kData = 0xaa;

struct Range {
  off_t offset;
  off_t length;
};

class Fallocate : public SharedGmemTest {
 protected:
  static constexpr size_t kPages = 4;
  static off_t size() { return static_cast<off_t>(kPages * page_size()); }
  static off_t pages(off_t n) { return n * static_cast<off_t>(page_size()); }

  // Ranges that start at the end of the file, start past it, or straddle it.
  static std::vector<Range> PastEnd() {
    return {{size(), pages(1)}, {size() + pages(1), pages(1)}, {size() - pages(1), pages(2)}};
  }

  // The file's size as fstat reports it.
  static off_t FileSize(const GuestMemfd& gmem) {
    struct stat st {};
    EXPECT_THAT(fstat(gmem.fd(), &st), SyscallSucceeds());
    return st.st_size;
  }
};

// Each page of `map` reads as the value given for it.
::testing::AssertionResult PagesAre(const Mapping& map, std::initializer_list<uint8_t> values) {
  size_t index = 0;
  for (uint8_t value : values) {
    if (auto same = BytesAre(map.bytes() + index * getpagesize(), getpagesize(), value); !same)
      return same << fmt::format(" (page {})", index);
    ++index;
  }
  return ::testing::AssertionSuccess();
}

// Both modes refuse an offset or length that is not page-aligned.
TEST_F(Fallocate, RejectsUnalignedRange) {
  REQUIRE_FEATURE("gmem");
  ASSERT_OK_AND_ASSIGN(GuestMemfd gmem, vm().CreateGuestMemfd(size()));
  off_t page = pages(1);
  for (int mode : {kAllocate, kPunchHole}) {
    for (Range r : {Range{1, page}, Range{page - 1, page}, Range{page + 1, page}, Range{0, 1},
                    Range{0, page - 1}, Range{0, page + 1}, Range{page, page - 1}})
      EXPECT_THAT(gmem.RawFallocate(mode, r.offset, r.length), SyscallFailsWithErrno(EINVAL));
  }
}

// An empty range or a negative offset is refused before the mode is considered.
TEST_F(Fallocate, RejectsEmptyOrNegativeRange) {
  REQUIRE_FEATURE("gmem");
  ASSERT_OK_AND_ASSIGN(GuestMemfd gmem, vm().CreateGuestMemfd(size()));
  for (int mode : {kAllocate, kPunchHole}) {
    EXPECT_THAT(gmem.RawFallocate(mode, 0, 0), SyscallFailsWithErrno(EINVAL));
    EXPECT_THAT(gmem.RawFallocate(mode, -pages(1), pages(1)), SyscallFailsWithErrno(EINVAL));
  }
}

// KEEP_SIZE allocation inside the file succeeds, for part or all of it, and keeps the size.
TEST_F(Fallocate, AllocatesInsideFileKeepingSize) {
  REQUIRE_FEATURE("gmem");
  ASSERT_OK_AND_ASSIGN(GuestMemfd gmem, vm().CreateGuestMemfd(size()));
  EXPECT_THAT(gmem.RawFallocate(kAllocate, pages(1), pages(2)), SyscallSucceeds());
  EXPECT_THAT(gmem.RawFallocate(kAllocate, 0, size()), SyscallSucceeds());
  EXPECT_EQ(FileSize(gmem), size());
}

// Every mode but allocate/punch-hole with KEEP_SIZE is unsupported; so is growing the file.
TEST_F(Fallocate, RefusesOtherModesWithEopnotsupp) {
  REQUIRE_FEATURE("gmem");
  ASSERT_OK_AND_ASSIGN(GuestMemfd gmem, vm().CreateGuestMemfd(size()));
  for (int mode : {0, FALLOC_FL_PUNCH_HOLE, FALLOC_FL_ZERO_RANGE,
                   FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, FALLOC_FL_COLLAPSE_RANGE,
                   FALLOC_FL_INSERT_RANGE, FALLOC_FL_UNSHARE_RANGE | FALLOC_FL_KEEP_SIZE,
                   FALLOC_FL_NO_HIDE_STALE | FALLOC_FL_KEEP_SIZE,
                   FALLOC_FL_ZERO_RANGE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE})
    EXPECT_THAT(gmem.RawFallocate(mode, 0, pages(1)), SyscallFailsWithErrno(EOPNOTSUPP));
  EXPECT_EQ(FileSize(gmem), size());
}

// Allocation must end inside i_size: starting at, past, or straddling the end is EINVAL.
TEST_F(Fallocate, AllocationPastEndOfFileFailsWithEinval) {
  REQUIRE_FEATURE("gmem");
  ASSERT_OK_AND_ASSIGN(GuestMemfd gmem, vm().CreateGuestMemfd(size()));
  for (Range r : PastEnd())
    EXPECT_THAT(gmem.RawFallocate(kAllocate, r.offset, r.length), SyscallFailsWithErrno(EINVAL));
  EXPECT_EQ(FileSize(gmem), size());
}

// Punching has no size check: a hole at, past, or straddling the end succeeds and changes nothing.
TEST_F(Fallocate, PunchHolePastEndOfFileSucceeds) {
  REQUIRE_FEATURE("gmem");
  ASSERT_OK_AND_ASSIGN(GuestMemfd gmem, vm().CreateGuestMemfd(size()));
  for (Range r : PastEnd())
    EXPECT_THAT(gmem.RawPunchHole(r.offset, r.length), SyscallSucceeds());
  EXPECT_EQ(FileSize(gmem), size());
}

// Punching a hole zeroes exactly the punched pages; the pages around it keep their data.
TEST_F(Fallocate, PunchHoleZeroesRange) {
  SET_UP_SHARED_GMEM(size());
  ASSERT_TRUE(FillBytes(map().bytes(), size(), kData));
  ASSERT_THAT(gmem().RawPunchHole(pages(1), pages(2)), SyscallSucceeds());
  EXPECT_TRUE(PagesAre(map(), {kData, 0, 0, kData}));
  ASSERT_TRUE(FillBytes(map().bytes(), size(), kData));  // the hole is usable again
  EXPECT_TRUE(PagesAre(map(), {kData, kData, kData, kData}));
}

// Punching a hole frees the pages: they leave the page cache (st_blocks cannot tell, see FileOps).
TEST_F(Fallocate, PunchHoleFreesPages) {
  SET_UP_SHARED_GMEM(size());
  ASSERT_TRUE(FillBytes(map().bytes(), size(), kData));
  ASSERT_OK_AND_ASSIGN(std::vector<bool> before, ResidentPages(map()));
  EXPECT_EQ(before, (std::vector<bool>{true, true, true, true}));
  ASSERT_THAT(gmem().RawPunchHole(pages(1), pages(2)), SyscallSucceeds());
  ASSERT_OK_AND_ASSIGN(std::vector<bool> after, ResidentPages(map()));
  EXPECT_EQ(after, (std::vector<bool>{true, false, false, true}));
}

// Pages allocated by fallocate read as zero when the host first faults them in.
TEST_F(Fallocate, AllocatedPagesReadAsZero) {
  SET_UP_SHARED_GMEM(size());
  ASSERT_THAT(gmem().RawFallocate(kAllocate, 0, size()), SyscallSucceeds());
  EXPECT_TRUE(BytesAre(map().bytes(), size(), 0));
}

// madvise(MADV_REMOVE) on a mapping punches the hole through the file's fallocate.
TEST_F(Fallocate, MadviseRemovePunchesHole) {
  SET_UP_SHARED_GMEM(size());
  ASSERT_TRUE(FillBytes(map().bytes(), size(), kData));
  ASSERT_THAT(RawMadvise(map().bytes() + pages(2), pages(1), MADV_REMOVE), SyscallSucceeds());
  EXPECT_TRUE(PagesAre(map(), {kData, kData, 0, kData}));
}

}  // namespace
}  // namespace gmem
