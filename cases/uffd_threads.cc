// userfaultfd under concurrency: many threads faulting at once, some on pages of their own and
// some on one shared page. Each thread's fault is delivered, each page resolved, no thread left
// asleep.

#include <gmock/gmock.h>

#include <vector>

#include "fixtures/syscall_matchers.h"
#include "fixtures/uffd_family.h"

namespace gmem {
namespace {

using ::testing::AllOf;
using ::testing::AnyOf;
using ::testing::AnyOfArray;
using ::testing::Each;
using ::testing::Field;
using ::testing::IsEmpty;
using ::testing::Le;
using ::testing::Matcher;
using ::testing::Not;
using ::testing::SizeIs;
using ::testing::UnorderedElementsAreArray;

constexpr size_t kOwnPages = 8;     // one thread each
constexpr size_t kSharedThreads = 4;  // all on the page after them
constexpr size_t kShared = kOwnPages;

class UffdThreads : public UffdFamily {
 protected:
  // Starts a thread per own page and kSharedThreads on the shared page (each on a byte of its
  // own), alternating reads and writes; `fill` is what the resolution puts in every page. Checks
  // that every thread resumed, and what `server` recorded: exactly one fault per own page, naming
  // its thread and access and carrying `kind`; between one and kSharedThreads faults on the shared
  // page, each from one of its threads; no failed resolution. Stops `server`.
  void FaultEverywhere(FaultServer& server, uint64_t kind, uint8_t fill) {
    auto access = [](size_t n) { return n % 2 ? Access::kWrite : Access::kRead; };
    std::vector<FaultingThread*> own, shared;
    for (size_t i = 0; i < kOwnPages; ++i) own.push_back(&Fault(page(i), access(i), kWritten));
    for (size_t n = 0; n < kSharedThreads; ++n) shared.push_back(&Fault(page(kShared) + n, access(n), kWritten));
    for (FaultingThread* t : own) ExpectResumed(*t, fill);
    for (FaultingThread* t : shared) ExpectResumed(*t, fill);
    server.Stop();

    auto write_flag = [](const FaultingThread* t) { return t->access() == Access::kWrite ? UFFD_PAGEFAULT_FLAG_WRITE : 0; };
    std::vector<Matcher<const UffdEvent&>> own_faults;
    for (FaultingThread* t : own) own_faults.push_back(AllOf(PageFault(t->addr(), kind | write_flag(t)), FaultedBy(t->tid())));
    std::vector<uint32_t> shared_tids;
    for (FaultingThread* t : shared) shared_tids.push_back(static_cast<uint32_t>(t->tid()));
    Matcher<const UffdEvent&> shared_fault = AllOf(
        AnyOf(PageFault(page(kShared), kind), PageFault(page(kShared), kind | UFFD_PAGEFAULT_FLAG_WRITE)),
        Field(&UffdEvent::ptid, AnyOfArray(shared_tids)));

    std::vector<UffdEvent> on_own, on_shared;
    for (const UffdEvent& e : server.Events())
      (e.address == reinterpret_cast<uintptr_t>(page(kShared)) ? on_shared : on_own).push_back(e);
    EXPECT_THAT(on_own, UnorderedElementsAreArray(own_faults));
    EXPECT_THAT(on_shared, AllOf(Not(IsEmpty()), SizeIs(Le(kSharedThreads)), Each(shared_fault)));
    EXPECT_THAT(server.Failures(), IsEmpty());
  }

 private:
  static constexpr uint8_t kWritten = 0x5a;

  // The thread completed without a signal; a reader saw `fill`, a writer's byte reads back
  // through the other mapping.
  void ExpectResumed(const FaultingThread& t, uint8_t fill) {
    auto outcome = t.Wait(kFaultTimeoutMs);
    ASSERT_TRUE(outcome.ok()) << outcome.error().message();
    ASSERT_EQ(outcome.value().signal, 0) << "thread " << t.tid() << " at " << t.addr();
    size_t offset = static_cast<uint8_t*>(t.addr()) - page(0);
    if (t.access() == Access::kRead)
      EXPECT_EQ(outcome.value().value, fill) << "thread " << t.tid() << " read of " << t.addr();
    else
      EXPECT_EQ(other(0)[offset], kWritten) << "thread " << t.tid() << " write of " << t.addr();
  }
};

// Missing faults from many threads at once, served by COPY as they arrive.
TEST_P(UffdThreads, ConcurrentMissingFaultsAreEachDeliveredAndResolved) {
  REQUIRE_UFFD_MODES(UFFDIO_REGISTER_MODE_MISSING);
  REQUIRE_FEATURE("uffd.feature.THREAD_ID");
  ASSERT_NO_FATAL_FAILURE(Arm(UFFDIO_REGISTER_MODE_MISSING, UFFD_FEATURE_THREAD_ID, kOwnPages + 1));
  FaultServer server(uffd(), CopyPages(uffd(), page_size(), 0xab));
  ASSERT_NO_FATAL_FAILURE(FaultEverywhere(server, 0, 0xab));
}

// Minor faults from many threads at once, served by CONTINUE as they arrive.
TEST_P(UffdThreads, ConcurrentMinorFaultsAreEachDeliveredAndResolved) {
  REQUIRE_UFFD_MODES(UFFDIO_REGISTER_MODE_MINOR);
  REQUIRE_FEATURE("uffd.feature.THREAD_ID");
  ASSERT_NO_FATAL_FAILURE(Arm(UFFDIO_REGISTER_MODE_MINOR, UFFD_FEATURE_THREAD_ID, kOwnPages + 1));
  for (size_t i = 0; i <= kOwnPages; ++i) ASSERT_NO_FATAL_FAILURE(Populate(i, 0xcd));
  FaultServer server(uffd(), ContinuePages(uffd(), page_size()));
  ASSERT_NO_FATAL_FAILURE(FaultEverywhere(server, UFFD_PAGEFAULT_FLAG_MINOR, 0xcd));
}

INSTANTIATE_TEST_SUITE_P(, UffdThreads, UffdBackends(), BackendParamName);

}  // namespace
}  // namespace gmem
