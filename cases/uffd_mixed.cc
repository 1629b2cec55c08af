// userfaultfd MISSING and MINOR registered on one range: each fault says which kind it is, and
// each kind has its resolution (COPY for absent pages, CONTINUE for cached ones; or, where the
// file takes write(), write() then CONTINUE for absent ones, as proposed for guest_memfd).

#include <gmock/gmock.h>

#include "fixtures/syscall_matchers.h"
#include "fixtures/uffd_family.h"

namespace gmem {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

constexpr uint64_t kMissingMinor = UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_MINOR;

class UffdMixed : public UffdFamily {};

// An absent page faults without UFFD_PAGEFAULT_FLAG_MINOR and a cached one with it; served
// together, COPY resolves the first and CONTINUE the second.
TEST_P(UffdMixed, EachFaultCarriesItsKind) {
  REQUIRE_UFFD_MODES(kMissingMinor);
  ASSERT_NO_FATAL_FAILURE(Arm(kMissingMinor, 0, 2));
  ASSERT_NO_FATAL_FAILURE(Populate(1, 0xcd));
  FaultServer server(uffd(), ByKind(CopyPages(uffd(), page_size(), 0xab), ContinuePages(uffd(), page_size())));
  FaultingThread& absent = Fault(page(0), Access::kRead);
  FaultingThread& cached = Fault(page(1), Access::kRead);
  ASSERT_OK_AND_ASSIGN(TouchOutcome absent_seen, absent.Wait(kFaultTimeoutMs));
  ASSERT_OK_AND_ASSIGN(TouchOutcome cached_seen, cached.Wait(kFaultTimeoutMs));
  EXPECT_EQ(absent_seen.value, 0xab);
  EXPECT_EQ(cached_seen.value, 0xcd);
  server.Stop();
  EXPECT_THAT(server.Events(),
              UnorderedElementsAre(PageFault(page(0), 0), PageFault(page(1), UFFD_PAGEFAULT_FLAG_MINOR)));
  EXPECT_THAT(server.Failures(), IsEmpty());
}

// A minor fault is not resolved by COPY (EEXIST: the page is cached) and its thread stays
// blocked; CONTINUE then resolves it.
TEST_P(UffdMixed, MinorFaultRefusesCopy) {
  REQUIRE_UFFD_MODES(kMissingMinor);
  ASSERT_NO_FATAL_FAILURE(Arm(kMissingMinor));
  ASSERT_NO_FATAL_FAILURE(Populate(0, 0xcd));
  FaultingThread& reader = Fault(page(0), Access::kRead);
  ASSERT_OK(NextEvent());
  std::vector<uint8_t> source(page_size(), 0xab);
  EXPECT_THAT(uffd().RawCopy(page(0), source.data(), page_size()), SyscallFailsWithErrno(EEXIST));
  EXPECT_FALSE(reader.Finished());
  ASSERT_THAT(uffd().RawContinue(page(0), page_size()), SyscallSucceeds());
  ASSERT_OK_AND_ASSIGN(TouchOutcome seen, reader.Wait(kFaultTimeoutMs));
  EXPECT_EQ(seen.value, 0xcd);
  EXPECT_THAT(Recorded(), ElementsAre(PageFault(page(0), UFFD_PAGEFAULT_FLAG_MINOR)));
}

// A missing fault is resolved by filling the page with write() on the file and mapping it with
// CONTINUE, without UFFDIO_COPY.
TEST_P(UffdMixed, MissingFaultResolvedByWriteThenContinue) {
  REQUIRE_UFFD_MODES(kMissingMinor);
  REQUIRE_WRITE_POPULATION();
  ASSERT_NO_FATAL_FAILURE(Arm(kMissingMinor, 0, 1, WritePopulationOf(backend()).backend));
  FaultingThread& reader = Fault(page(0), Access::kRead);
  ASSERT_OK(NextEvent());
  ASSERT_NO_FATAL_FAILURE(WritePage(0, 0xee));
  EXPECT_FALSE(reader.Finished());
  ASSERT_THAT(uffd().RawContinue(page(0), page_size()), SyscallSucceeds());
  ASSERT_OK_AND_ASSIGN(TouchOutcome seen, reader.Wait(kFaultTimeoutMs));
  EXPECT_EQ(seen.value, 0xee);
  EXPECT_THAT(Recorded(), ElementsAre(PageFault(page(0), 0)));
}

INSTANTIATE_TEST_SUITE_P(, UffdMixed, UffdBackends(), BackendParamName);

}  // namespace
}  // namespace gmem
