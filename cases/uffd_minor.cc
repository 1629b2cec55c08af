// userfaultfd MINOR mode per backend: a touch of a page the file caches but the range does not map
// is trapped with UFFD_PAGEFAULT_FLAG_MINOR, and UFFDIO_CONTINUE maps the cached page itself.

#include <gmock/gmock.h>

#include "fixtures/bytes.h"
#include "fixtures/syscall_matchers.h"
#include "fixtures/uffd_family.h"

namespace gmem {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr uint64_t kMinor = UFFDIO_REGISTER_MODE_MINOR;
constexpr size_t kOffset = 0x123;
// How long a thread that must stay blocked is watched. Not a synchronisation: a thread the kernel
// wrongly woke finishes well within it, and the case then fails.
constexpr int kStillBlockedMs = 200;

class UffdMinor : public UffdFamily {
 protected:
  // UFFDIO_CONTINUE of page i with `mode`, which must map the whole page.
  void ContinuePage(size_t i, uint64_t mode = 0) {
    int64_t mapped = 0;
    ASSERT_THAT(uffd().RawContinue(page(i), page_size(), mode, &mapped), SyscallSucceeds());
    EXPECT_EQ(mapped, static_cast<int64_t>(page_size()));
  }

  // Traps a read of cached page 0 (filled with `fill`), resolves it by CONTINUE and checks the
  // reader saw `fill` and the one event was a minor read fault.
  void ReadThroughContinue(uint8_t fill) {
    FaultingThread& reader = Fault(page(0) + kOffset, Access::kRead);
    ASSERT_OK(NextEvent());
    EXPECT_FALSE(reader.Finished());
    ASSERT_NO_FATAL_FAILURE(ContinuePage(0));
    ASSERT_OK_AND_ASSIGN(TouchOutcome seen, reader.Wait(kFaultTimeoutMs));
    EXPECT_EQ(seen.signal, 0);
    EXPECT_EQ(seen.value, fill);
    EXPECT_THAT(Recorded(), ElementsAre(PageFault(page(0), UFFD_PAGEFAULT_FLAG_MINOR)));
  }
};

// A read of a page written through another mapping is a minor fault; CONTINUE maps the cached
// page, not a copy: later writes through either mapping show in both.
TEST_P(UffdMinor, CachedPageIsMinorAndContinueMapsThePageItself) {
  REQUIRE_UFFD_MODES(kMinor);
  ASSERT_NO_FATAL_FAILURE(Arm(kMinor));
  ASSERT_NO_FATAL_FAILURE(Populate(0, 0xcd));
  ASSERT_NO_FATAL_FAILURE(ReadThroughContinue(0xcd));
  EXPECT_TRUE(BytesAre(page(0), page_size(), 0xcd));
  page(0)[1] = 0x11;
  EXPECT_EQ(other(0)[1], 0x11);
  other(0)[2] = 0x22;
  EXPECT_EQ(page(0)[2], 0x22);
}

// A write of a cached page is a minor fault with the write flag; the write lands on the cached page.
TEST_P(UffdMinor, WriteOfACachedPageCarriesTheWriteFlag) {
  REQUIRE_UFFD_MODES(kMinor);
  ASSERT_NO_FATAL_FAILURE(Arm(kMinor));
  ASSERT_NO_FATAL_FAILURE(Populate(0, 0xcd));
  FaultingThread& writer = Fault(page(0) + kOffset, Access::kWrite, 0x5a);
  ASSERT_OK(NextEvent());
  ASSERT_NO_FATAL_FAILURE(ContinuePage(0));
  ASSERT_OK(writer.Wait(kFaultTimeoutMs));
  EXPECT_THAT(Recorded(), ElementsAre(PageFault(page(0), UFFD_PAGEFAULT_FLAG_MINOR | UFFD_PAGEFAULT_FLAG_WRITE)));
  EXPECT_EQ(other(0)[kOffset], 0x5a);
  EXPECT_TRUE(BytesAre(other(0), kOffset, 0xcd));
}

// A page filled by write() on the file is cached the same way: a minor fault, mapped by CONTINUE.
TEST_P(UffdMinor, PageFilledByWriteIsMinor) {
  REQUIRE_UFFD_MODES(kMinor);
  REQUIRE_WRITE_POPULATION();
  ASSERT_NO_FATAL_FAILURE(Arm(kMinor, 0, 1, WritePopulationOf(backend()).backend));
  ASSERT_NO_FATAL_FAILURE(WritePage(0, 0xee));
  ASSERT_NO_FATAL_FAILURE(ReadThroughContinue(0xee));
}

// MINOR traps only cached pages: a touch of an absent page allocates it as usual, with no event.
TEST_P(UffdMinor, AbsentPageIsNotTrapped) {
  REQUIRE_UFFD_MODES(kMinor);
  ASSERT_NO_FATAL_FAILURE(Arm(kMinor));
  FaultingThread& reader = Fault(page(0), Access::kRead);
  ASSERT_OK_AND_ASSIGN(TouchOutcome seen, reader.Wait(kFaultTimeoutMs));
  EXPECT_EQ(seen.signal, 0);
  EXPECT_EQ(seen.value, 0);
  EXPECT_THAT(Recorded(), IsEmpty());
}

// CONTINUE on a page the file does not cache fails with EFAULT (mfill_atomic_pte_continue and
// the hugetlb path: no folio to map).
TEST_P(UffdMinor, ContinueOnAnUncachedPageFailsWithEfault) {
  REQUIRE_UFFD_MODES(kMinor);
  ASSERT_NO_FATAL_FAILURE(Arm(kMinor));
  int64_t mapped = 0;
  EXPECT_THAT(uffd().RawContinue(page(0), page_size(), 0, &mapped), SyscallFailsWithErrno(EFAULT));
  EXPECT_EQ(mapped, -EFAULT);
}

// CONTINUE maps a cached page ahead of any fault; on a page already mapped it fails with EEXIST.
TEST_P(UffdMinor, ContinueOnAMappedPageFailsWithEexist) {
  REQUIRE_UFFD_MODES(kMinor);
  ASSERT_NO_FATAL_FAILURE(Arm(kMinor));
  ASSERT_NO_FATAL_FAILURE(Populate(0, 0xcd));
  ASSERT_NO_FATAL_FAILURE(ContinuePage(0));
  int64_t mapped = 0;
  EXPECT_THAT(uffd().RawContinue(page(0), page_size(), 0, &mapped), SyscallFailsWithErrno(EEXIST));
  EXPECT_EQ(mapped, -EEXIST);
  EXPECT_TRUE(BytesAre(page(0), page_size(), 0xcd));
  EXPECT_THAT(Recorded(), IsEmpty());
}

// CONTINUE with DONTWAKE maps the page but leaves the faulting thread asleep until UFFDIO_WAKE.
TEST_P(UffdMinor, DontwakeLeavesTheThreadAsleepUntilWake) {
  REQUIRE_UFFD_MODES(kMinor);
  ASSERT_NO_FATAL_FAILURE(Arm(kMinor));
  ASSERT_NO_FATAL_FAILURE(Populate(0, 0xcd));
  FaultingThread& reader = Fault(page(0) + kOffset, Access::kRead);
  ASSERT_OK(NextEvent());
  ASSERT_NO_FATAL_FAILURE(ContinuePage(0, UFFDIO_CONTINUE_MODE_DONTWAKE));
  EXPECT_TRUE(BytesAre(page(0), page_size(), 0xcd));  // mapped: this thread's reads do not fault
  EXPECT_FALSE(reader.Wait(kStillBlockedMs).ok()) << "the reader resumed without UFFDIO_WAKE";
  ASSERT_THAT(uffd().RawWake(page(0), page_size()), SyscallSucceeds());
  ASSERT_OK_AND_ASSIGN(TouchOutcome seen, reader.Wait(kFaultTimeoutMs));
  EXPECT_EQ(seen.value, 0xcd);
  EXPECT_THAT(Recorded(), ElementsAre(PageFault(page(0), UFFD_PAGEFAULT_FLAG_MINOR)));
}

INSTANTIATE_TEST_SUITE_P(, UffdMinor, UffdBackends(), BackendParamName);

}  // namespace
}  // namespace gmem
