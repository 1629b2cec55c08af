// fallocate on a guest_memfd: only allocation and hole punching, both with FALLOC_FL_KEEP_SIZE,
// on page-aligned ranges. Allocation must stay inside i_size; punching may run past it.

#include <gtest/gtest.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <atomic>
#include <initializer_list>
#include <limits>
#include <thread>
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
constexpr int kFallocWriteZeroes = 0x80;  // FALLOC_FL_WRITE_ZEROES, include/uapi/linux/falloc.h (6.17)

struct Range {
  off_t offset;
  off_t length;
};

class Fallocate : public SharedGmemTest {
 protected:
  static constexpr size_t kPages = 4;
  static off_t size() { return static_cast<off_t>(kPages * page_size()); }
  static off_t pages(off_t n) { return n * static_cast<off_t>(page_size()); }

  // Ranges that start at the end of the file, start past it, straddle it, or end at the largest
  // file size.
  static std::vector<Range> PastEnd() {
    const off_t far = (std::numeric_limits<off_t>::max() & ~(pages(1) - 1)) - pages(1);
    return {{size(), pages(1)}, {size() + pages(1), pages(1)}, {size() - pages(1), pages(2)}, {far, pages(1)}};
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

// An empty range or a negative offset is refused with EINVAL before the mode is considered:
// supported or not, known or not, the answer is the same.
TEST_F(Fallocate, RejectsEmptyOrNegativeRangeBeforeLookingAtTheMode) {
  REQUIRE_FEATURE("gmem");
  ASSERT_OK_AND_ASSIGN(GuestMemfd gmem, vm().CreateGuestMemfd(size()));
  for (int mode : {kAllocate, kPunchHole, 0, FALLOC_FL_ZERO_RANGE, FALLOC_FL_COLLAPSE_RANGE, 1 << 30}) {
    EXPECT_THAT(gmem.RawFallocate(mode, 0, 0), SyscallFailsWithErrno(EINVAL));
    EXPECT_THAT(gmem.RawFallocate(mode, 0, -pages(1)), SyscallFailsWithErrno(EINVAL));
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
                   FALLOC_FL_INSERT_RANGE, FALLOC_FL_UNSHARE_RANGE, FALLOC_FL_UNSHARE_RANGE | FALLOC_FL_KEEP_SIZE,
                   kFallocWriteZeroes, kFallocWriteZeroes | FALLOC_FL_KEEP_SIZE,
                   FALLOC_FL_NO_HIDE_STALE | FALLOC_FL_KEEP_SIZE,
                   FALLOC_FL_ZERO_RANGE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE})
    EXPECT_THAT(gmem.RawFallocate(mode, 0, pages(1)), SyscallFailsWithErrno(EOPNOTSUPP));
  EXPECT_EQ(FileSize(gmem), size());
}

// Every bit beyond the known modes, alone or beside KEEP_SIZE or PUNCH_HOLE|KEEP_SIZE, is
// refused with EOPNOTSUPP.
TEST_F(Fallocate, RefusesUnknownModeBitsWithEopnotsupp) {
  REQUIRE_FEATURE("gmem");
  ASSERT_OK_AND_ASSIGN(GuestMemfd gmem, vm().CreateGuestMemfd(size()));
  for (int bit = 8; bit < 32; ++bit) {
    int unknown = static_cast<int>(1U << bit);
    for (int mode : {unknown, unknown | kAllocate, unknown | kPunchHole})
      EXPECT_THAT(gmem.RawFallocate(mode, 0, size()), SyscallFailsWithErrno(EOPNOTSUPP));
  }
}

// The mode is checked before alignment: an unsupported mode on an unaligned range is EOPNOTSUPP,
// a supported mode on it EINVAL.
TEST_F(Fallocate, ModeIsCheckedBeforeAlignment) {
  REQUIRE_FEATURE("gmem");
  ASSERT_OK_AND_ASSIGN(GuestMemfd gmem, vm().CreateGuestMemfd(size()));
  for (Range r : {Range{1, pages(1)}, Range{0, 1}, Range{pages(1) + 1, pages(1) - 1}}) {
    for (int mode : {0, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, FALLOC_FL_COLLAPSE_RANGE, 1 << 12})
      EXPECT_THAT(gmem.RawFallocate(mode, r.offset, r.length), SyscallFailsWithErrno(EOPNOTSUPP));
    for (int mode : {kAllocate, kPunchHole})
      EXPECT_THAT(gmem.RawFallocate(mode, r.offset, r.length), SyscallFailsWithErrno(EINVAL));
  }
}

// An offset + length that wraps past the largest file size fails with EFBIG, whatever the
// alignment and even for a mode only guest_memfd refuses (ZERO_RANGE): the VFS checks the range
// first. Only a mode the VFS itself rejects (an unknown bit) is EOPNOTSUPP first. A range that
// ends just inside the largest size gets the usual answers (allocation past EOF EINVAL,
// punching succeeds).
TEST_F(Fallocate, OffsetPlusLengthOverflowFailsWithEfbig) {
  REQUIRE_FEATURE("gmem");
  ASSERT_OK_AND_ASSIGN(GuestMemfd gmem, vm().CreateGuestMemfd(size()));
  const off_t last_page = std::numeric_limits<off_t>::max() & ~(pages(1) - 1);
  for (int mode : {kAllocate, kPunchHole, int{FALLOC_FL_ZERO_RANGE}}) {
    EXPECT_THAT(gmem.RawFallocate(mode, last_page, pages(1)), SyscallFailsWithErrno(EFBIG));
    EXPECT_THAT(gmem.RawFallocate(mode, pages(1), std::numeric_limits<off_t>::max()), SyscallFailsWithErrno(EFBIG));
    EXPECT_THAT(gmem.RawFallocate(mode, last_page, pages(1) + 1), SyscallFailsWithErrno(EFBIG));
  }
  EXPECT_THAT(gmem.RawFallocate((1 << 12) | kAllocate, last_page, pages(1)), SyscallFailsWithErrno(EOPNOTSUPP));
  EXPECT_THAT(gmem.RawFallocate(kAllocate, last_page - pages(1), pages(1)), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(gmem.RawPunchHole(last_page - pages(1), pages(1)), SyscallSucceeds());
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

// Punching a hole frees the pages: they leave the page cache (guest_memfd keeps no st_blocks).
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

// Sends `signo` to one thread over and over until destroyed, with a handler that does nothing
// (SA_RESTART) installed meanwhile; the previous action is restored.
class SignalStorm {
 public:
  SignalStorm(pthread_t target, int signo) : signo_(signo) {
    struct sigaction sa {};
    sa.sa_handler = [](int) {};
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(signo_, &sa, &previous_);
    sender_ = std::thread([this, target] {
      while (!stop_.load(std::memory_order_relaxed)) pthread_kill(target, signo_);
    });
  }
  ~SignalStorm() {
    stop_ = true;
    sender_.join();
    sigaction(signo_, &previous_, nullptr);
  }
  SignalStorm(const SignalStorm&) = delete;
  SignalStorm& operator=(const SignalStorm&) = delete;

 private:
  int signo_;
  struct sigaction previous_ {};
  std::atomic<bool> stop_{false};
  std::thread sender_;
};

// A signal during a large allocation ends it with EINTR (the allocation loop checks for pending
// signals between pages), and it is not restarted although the handler has SA_RESTART. The file
// is unharmed: without signals the same allocation then completes.
TEST_F(Fallocate, SignalInterruptsLargeAllocationWithEintr) {
  REQUIRE_FEATURE("gmem");
  const off_t large = 64 << 20;
  ASSERT_OK_AND_ASSIGN(GuestMemfd gmem, vm().CreateGuestMemfd(large));
  constexpr int kAttempts = 200;
  int completed = 0;
  SyscallResult interrupted;
  {
    SignalStorm storm(pthread_self(), SIGUSR2);
    for (int attempt = 0; attempt < kAttempts && interrupted.call.empty(); ++attempt) {
      SyscallResult r = gmem.RawFallocate(kAllocate, 0, large);
      if (r.ok()) {
        ++completed;
        ASSERT_THAT(gmem.RawPunchHole(0, large), SyscallSucceeds());
      } else {
        interrupted = r;
      }
    }
  }
  ASSERT_FALSE(interrupted.call.empty())
      << "fallocate(KEEP_SIZE) of " << large << " bytes completed " << completed
      << " times while SIGUSR2 was sent to the thread continuously: never interrupted";
  EXPECT_THAT(interrupted, SyscallFailsWithErrno(EINTR));
  EXPECT_THAT(gmem.RawFallocate(kAllocate, 0, large), SyscallSucceeds());
  EXPECT_THAT(gmem.RawPunchHole(0, large), SyscallSucceeds());
}

}  // namespace
}  // namespace gmem
