// userfaultfd MISSING mode per backend: a touch of an absent page is trapped once, reported with
// its address, access and thread, and resolved by UFFDIO_COPY (or UFFDIO_ZEROPAGE).

#include <gmock/gmock.h>
#include <unistd.h>

#include <vector>

#include "fixtures/bytes.h"
#include "fixtures/syscall_matchers.h"
#include "fixtures/uffd_family.h"

namespace gmem {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr uint64_t kMissing = UFFDIO_REGISTER_MODE_MISSING;
constexpr size_t kOffset = 0x123;  // inside the first base page, not page-aligned

class UffdMissing : public UffdFamily {
 protected:
  // UFFDIO_COPY of a page of `fill` into page i, which must copy the whole page.
  void CopyPage(size_t i, uint8_t fill) {
    std::vector<uint8_t> source(page_size(), fill);
    int64_t copied = 0;
    ASSERT_THAT(uffd().RawCopy(page(i), source.data(), page_size(), 0, &copied), SyscallSucceeds());
    EXPECT_EQ(copied, static_cast<int64_t>(page_size()));
  }

  // Waits for `thread` to complete its access without a signal.
  void ExpectResumed(const FaultingThread& thread) {
    ASSERT_OK_AND_ASSIGN(TouchOutcome outcome, thread.Wait(kFaultTimeoutMs));
    EXPECT_EQ(outcome.signal, 0) << "the resumed access raised signal " << outcome.signal;
  }
};

// A read of an absent page is delivered once, at the page's address (no EXACT_ADDRESS), without
// the write flag or a thread id; the reader stays blocked until UFFDIO_COPY, then reads the copy.
TEST_P(UffdMissing, ReadIsDeliveredOnceAtThePageAndResolvedByCopy) {
  REQUIRE_UFFD_MODES(kMissing);
  ASSERT_NO_FATAL_FAILURE(Arm(kMissing));
  FaultingThread& reader = Fault(page(0) + kOffset, Access::kRead);
  ASSERT_OK(NextEvent());
  EXPECT_FALSE(reader.Finished());
  ASSERT_NO_FATAL_FAILURE(CopyPage(0, 0xab));
  ASSERT_OK_AND_ASSIGN(TouchOutcome seen, reader.Wait(kFaultTimeoutMs));
  EXPECT_EQ(seen.signal, 0);
  EXPECT_EQ(seen.value, 0xab);
  EXPECT_THAT(Recorded(), ElementsAre(AllOf(PageFault(page(0), 0), FaultedBy(0))));
  EXPECT_TRUE(BytesAre(page(0), page_size(), 0xab));
  EXPECT_TRUE(BytesAre(other(0), page_size(), 0xab));  // the copy went into the file
}

// A write of an absent page carries UFFD_PAGEFAULT_FLAG_WRITE; the write lands on the copied page.
TEST_P(UffdMissing, WriteCarriesTheWriteFlagAndLandsOnTheCopy) {
  REQUIRE_UFFD_MODES(kMissing);
  ASSERT_NO_FATAL_FAILURE(Arm(kMissing));
  FaultingThread& writer = Fault(page(0) + kOffset, Access::kWrite, 0x5a);
  ASSERT_OK(NextEvent());
  ASSERT_NO_FATAL_FAILURE(CopyPage(0, 0xab));
  ASSERT_NO_FATAL_FAILURE(ExpectResumed(writer));
  EXPECT_THAT(Recorded(), ElementsAre(PageFault(page(0), UFFD_PAGEFAULT_FLAG_WRITE)));
  EXPECT_TRUE(BytesAre(other(0), kOffset, 0xab));
  EXPECT_EQ(other(0)[kOffset], 0x5a);
  EXPECT_TRUE(BytesAre(other(0) + kOffset + 1, page_size() - kOffset - 1, 0xab));
}

// With UFFD_FEATURE_EXACT_ADDRESS the fault reports the byte touched, not its page.
TEST_P(UffdMissing, ExactAddressReportsTheByteTouched) {
  REQUIRE_UFFD_MODES(kMissing);
  REQUIRE_FEATURE("uffd.feature.EXACT_ADDRESS");
  ASSERT_NO_FATAL_FAILURE(Arm(kMissing, UFFD_FEATURE_EXACT_ADDRESS));
  FaultingThread& reader = Fault(page(0) + kOffset, Access::kRead);
  ASSERT_OK(NextEvent());
  ASSERT_NO_FATAL_FAILURE(CopyPage(0, 0xab));
  ASSERT_NO_FATAL_FAILURE(ExpectResumed(reader));
  EXPECT_THAT(Recorded(), ElementsAre(PageFault(page(0) + kOffset, 0)));
}

// With UFFD_FEATURE_THREAD_ID the fault names the thread that took it.
TEST_P(UffdMissing, ThreadIdNamesTheFaultingThread) {
  REQUIRE_UFFD_MODES(kMissing);
  REQUIRE_FEATURE("uffd.feature.THREAD_ID");
  ASSERT_NO_FATAL_FAILURE(Arm(kMissing, UFFD_FEATURE_THREAD_ID));
  FaultingThread& reader = Fault(page(0), Access::kRead);
  ASSERT_NE(reader.tid(), gettid());
  ASSERT_OK(NextEvent());
  ASSERT_NO_FATAL_FAILURE(CopyPage(0, 0xab));
  ASSERT_NO_FATAL_FAILURE(ExpectResumed(reader));
  EXPECT_THAT(Recorded(), ElementsAre(AllOf(PageFault(page(0), 0), FaultedBy(reader.tid()))));
}

// UFFDIO_COPY onto a page already mapped in the range fails with EEXIST and leaves it alone.
TEST_P(UffdMissing, CopyOntoAMappedPageFailsWithEexist) {
  REQUIRE_UFFD_MODES(kMissing);
  ASSERT_NO_FATAL_FAILURE(Arm(kMissing));
  ASSERT_NO_FATAL_FAILURE(CopyPage(0, 0xab));
  std::vector<uint8_t> source(page_size(), 0xcd);
  int64_t copied = 0;
  EXPECT_THAT(uffd().RawCopy(page(0), source.data(), page_size(), 0, &copied), SyscallFailsWithErrno(EEXIST));
  EXPECT_EQ(copied, -EEXIST);
  EXPECT_TRUE(BytesAre(page(0), page_size(), 0xab));
}

// UFFDIO_COPY onto a page the file already caches (written through another mapping) fails with
// EEXIST and leaves it alone.
TEST_P(UffdMissing, CopyOntoACachedPageFailsWithEexist) {
  REQUIRE_UFFD_MODES(kMissing);
  ASSERT_NO_FATAL_FAILURE(Arm(kMissing));
  ASSERT_NO_FATAL_FAILURE(Populate(0, 0xcd));
  std::vector<uint8_t> source(page_size(), 0xab);
  EXPECT_THAT(uffd().RawCopy(page(0), source.data(), page_size()), SyscallFailsWithErrno(EEXIST));
  EXPECT_TRUE(BytesAre(other(0), page_size(), 0xcd));
}

// MISSING traps only absent pages: a page the file caches maps on a touch, with no event.
TEST_P(UffdMissing, CachedPageIsNotTrapped) {
  REQUIRE_UFFD_MODES(kMissing);
  ASSERT_NO_FATAL_FAILURE(Arm(kMissing));
  ASSERT_NO_FATAL_FAILURE(Populate(0, 0xcd));
  FaultingThread& reader = Fault(page(0), Access::kRead);
  ASSERT_OK_AND_ASSIGN(TouchOutcome seen, reader.Wait(kFaultTimeoutMs));
  EXPECT_EQ(seen.value, 0xcd);
  EXPECT_THAT(Recorded(), IsEmpty());
}

// Where the range advertises UFFDIO_ZEROPAGE it resolves the fault with a zeroed page; where it
// does not (hugetlbfs has no huge zero page) the ioctl fails with EINVAL.
TEST_P(UffdMissing, ZeropageResolvesWhereAdvertised) {
  REQUIRE_UFFD_MODES(kMissing);
  ASSERT_NO_FATAL_FAILURE(Arm(kMissing));
  FaultingThread& reader = Fault(page(0) + kOffset, Access::kRead);
  ASSERT_OK(NextEvent());
  int64_t zeroed = 0;
  if (!(ioctls() & uffd_ioctl::kZeropage)) {
    EXPECT_THAT(uffd().RawZeropage(page(0), page_size(), 0, &zeroed), SyscallFailsWithErrno(EINVAL));
    EXPECT_FALSE(reader.Finished());
    return;  // teardown releases the reader
  }
  ASSERT_THAT(uffd().RawZeropage(page(0), page_size(), 0, &zeroed), SyscallSucceeds());
  EXPECT_EQ(zeroed, static_cast<int64_t>(page_size()));
  ASSERT_OK_AND_ASSIGN(TouchOutcome seen, reader.Wait(kFaultTimeoutMs));
  EXPECT_EQ(seen.value, 0);
  EXPECT_TRUE(BytesAre(other(0), page_size(), 0));
  EXPECT_THAT(Recorded(), ElementsAre(PageFault(page(0), 0)));
}

INSTANTIATE_TEST_SUITE_P(, UffdMissing, UffdBackends(), BackendParamName);

}  // namespace
}  // namespace gmem
