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
using ::testing::AnyOfArray;
using ::testing::Each;
using ::testing::IsEmpty;
using ::testing::Le;
using ::testing::Matcher;
using ::testing::Not;
using ::testing::SizeIs;
using ::testing::UnorderedElementsAreArray;

constexpr size_t kOwnPages = 8;       // one thread on each
constexpr size_t kSharedThreads = 4;  // all on the page after them, each on a byte of its own
constexpr size_t kShared = kOwnPages;
constexpr uint8_t kWritten = 0x5a;    // what the writers store

class UffdThreads : public UffdFamily {
 protected:
  // Starts the threads, alternating reads and writes.
  void StartThreads() {
    auto access = [](size_t n) { return n % 2 ? Access::kWrite : Access::kRead; };
    for (size_t i = 0; i < kOwnPages; ++i) own_.push_back(&Fault(page(i), access(i), kWritten));
    for (size_t n = 0; n < kSharedThreads; ++n) shared_.push_back(&Fault(page(kShared) + n, access(n), kWritten));
  }

  // Every thread resumed without a signal: a reader saw `fill` (what the resolution put in every
  // page), a writer's byte reads back through the other mapping.
  void ExpectAllResumed(uint8_t fill) {
    for (const std::vector<FaultingThread*>* threads : {&own_, &shared_}) {
      for (const FaultingThread* t : *threads) {
        ASSERT_OK_AND_ASSIGN(TouchOutcome outcome, t->Wait(kFaultTimeoutMs));
        ASSERT_EQ(outcome.signal, 0) << "thread " << t->tid() << " at " << t->addr();
        if (t->access() == Access::kRead)
          EXPECT_EQ(outcome.value, fill) << "thread " << t->tid() << " read of " << t->addr();
        else
          EXPECT_EQ(other(0)[static_cast<uint8_t*>(t->addr()) - page(0)], kWritten) << "thread " << t->tid();
      }
    }
  }

  // Exactly one fault per own page, naming its thread and access and carrying `kind` (the mode's
  // flag); between one and kSharedThreads faults on the shared page, each from one of its threads
  // (a thread whose fault the kernel queued before the page was resolved is reported too).
  void ExpectFaults(const std::vector<UffdEvent>& events, uint64_t kind) {
    auto flags = [kind](const FaultingThread* t) {
      return kind | (t->access() == Access::kWrite ? UFFD_PAGEFAULT_FLAG_WRITE : 0);
    };
    auto fault_of = [&](const FaultingThread* t, const void* page) -> Matcher<const UffdEvent&> {
      return AllOf(PageFault(page, flags(t)), FaultedBy(t->tid()));
    };
    std::vector<Matcher<const UffdEvent&>> own_faults, shared_faults;
    for (const FaultingThread* t : own_) own_faults.push_back(fault_of(t, t->addr()));
    for (const FaultingThread* t : shared_) shared_faults.push_back(fault_of(t, page(kShared)));

    std::vector<UffdEvent> on_own, on_shared;
    for (const UffdEvent& e : events)
      (e.address == reinterpret_cast<uintptr_t>(page(kShared)) ? on_shared : on_own).push_back(e);
    EXPECT_THAT(on_own, UnorderedElementsAreArray(own_faults));
    EXPECT_THAT(on_shared, AllOf(Not(IsEmpty()), SizeIs(Le(kSharedThreads)), Each(AnyOfArray(shared_faults))));
  }

 private:
  std::vector<FaultingThread*> own_, shared_;
};

// Missing faults from many threads at once, served by COPY as they arrive.
TEST_P(UffdThreads, ConcurrentMissingFaultsAreEachDeliveredAndResolved) {
  REQUIRE_UFFD_MODES(UFFDIO_REGISTER_MODE_MISSING);
  REQUIRE_FEATURE("uffd.feature.THREAD_ID");
  ASSERT_NO_FATAL_FAILURE(Arm(UFFDIO_REGISTER_MODE_MISSING, UFFD_FEATURE_THREAD_ID, kOwnPages + 1));
  FaultServer server(uffd(), CopyPages(uffd(), page_size(), 0xab));
  StartThreads();
  ASSERT_NO_FATAL_FAILURE(ExpectAllResumed(0xab));
  server.Stop();
  ExpectFaults(server.Events(), 0);
  EXPECT_THAT(server.Failures(), IsEmpty());
}

// Minor faults from many threads at once, served by CONTINUE as they arrive.
TEST_P(UffdThreads, ConcurrentMinorFaultsAreEachDeliveredAndResolved) {
  REQUIRE_UFFD_MODES(UFFDIO_REGISTER_MODE_MINOR);
  REQUIRE_FEATURE("uffd.feature.THREAD_ID");
  ASSERT_NO_FATAL_FAILURE(Arm(UFFDIO_REGISTER_MODE_MINOR, UFFD_FEATURE_THREAD_ID, kOwnPages + 1));
  for (size_t i = 0; i <= kOwnPages; ++i) ASSERT_NO_FATAL_FAILURE(Populate(i, 0xcd));
  FaultServer server(uffd(), ContinuePages(uffd(), page_size()));
  StartThreads();
  ASSERT_NO_FATAL_FAILURE(ExpectAllResumed(0xcd));
  server.Stop();
  ExpectFaults(server.Events(), UFFD_PAGEFAULT_FLAG_MINOR);
  EXPECT_THAT(server.Failures(), IsEmpty());
}

INSTANTIATE_TEST_SUITE_P(, UffdThreads, UffdBackends(), BackendParamName);

}  // namespace
}  // namespace gmem
