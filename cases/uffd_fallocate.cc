// Pages allocated by fallocate() and never written, reached through userfaultfd: whichever path
// maps them first (a MINOR fault resolved by UFFDIO_CONTINUE, CONTINUE ahead of any fault, a plain
// fault on a MISSING range, a fault through another mapping) must show zeros, never memory someone
// freed; UFFDIO_COPY must not replace them; and data put into them through one path must survive
// a later fault through another. Freed memory is filled with kStaleByte right before, so a page
// handed out uncleared shows it.

#include <gmock/gmock.h>

#include <vector>

#include "fixtures/bytes.h"
#include "fixtures/stale_memory.h"
#include "fixtures/syscall_matchers.h"
#include "fixtures/uffd_family.h"

namespace gmem {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr uint64_t kMinor = UFFDIO_REGISTER_MODE_MINOR;
constexpr uint64_t kMissing = UFFDIO_REGISTER_MODE_MISSING;
constexpr size_t kOffset = 0x123;

class UffdFallocate : public UffdFamily {
 protected:
  // Fills freed memory with kStaleByte, arms `modes` over `pages` pages (of `variant`) and
  // fallocates all of them.
  void ArmFallocated(uint64_t modes, size_t pages = 1, const Backend* variant = nullptr) {
    ASSERT_NO_FATAL_FAILURE(LeaveStaleMemory(variant ? *variant : backend()));
    ASSERT_NO_FATAL_FAILURE(Arm(modes, 0, pages, variant));
    ASSERT_NO_FATAL_FAILURE(Fallocate(0, pages));
  }

  // UFFDIO_CONTINUE of `pages` pages from page i, which must map all of them.
  void ContinuePages(size_t i, size_t pages = 1) {
    int64_t mapped = 0;
    ASSERT_THAT(uffd().RawContinue(page(i), pages * page_size(), 0, &mapped), SyscallSucceeds());
    EXPECT_EQ(mapped, static_cast<int64_t>(pages * page_size()));
  }

  // A read of page i is trapped as a fault, CONTINUE resolves it and the reader sees `expected`.
  void ReadThroughContinue(size_t i, uint8_t expected) {
    FaultingThread& reader = Fault(page(i) + kOffset, Access::kRead);
    ASSERT_OK(NextEvent());
    ASSERT_NO_FATAL_FAILURE(ContinuePages(i));
    ASSERT_OK_AND_ASSIGN(TouchOutcome seen, reader.Wait(kFaultTimeoutMs));
    EXPECT_EQ(seen.signal, 0);
    EXPECT_EQ(seen.value, expected);
  }
};

// A fallocated page is cached, so a read of it on a MINOR range is a minor fault; CONTINUE maps
// it, and it reads as zeros through both mappings.
//
// Fails on guest_memfd with [PATCH v2 13/15] "KVM: guest_memfd: implement userfaultfd operations"
// (and any kernel with that patch as posted): kvm_gmem_fallocate() allocates folios through
// kvm_gmem_get_folio() without clearing them (guest_memfd clears lazily, on the first
// kvm_gmem_fault_user_mapping() or kvm_gmem_get_pfn() that finds the folio !uptodate), and
// UFFDIO_CONTINUE maps whatever uffd_ops->get_folio_noalloc() returns: the patch's
// kvm_gmem_get_folio_noalloc() is a bare __filemap_get_folio(), so mfill_atomic_pte_continue()
// installs the uncleared, !uptodate folio and userspace reads what the page last held. shmem's
// get_folio_noalloc (shmem_get_folio(SGP_NOALLOC)) clears a fallocated folio before returning it,
// and hugetlbfs clears at fallocate.
TEST_P(UffdFallocate, MinorFaultOnAFallocatedPageContinuesAsZeros) {
  REQUIRE_UFFD_MODES(kMinor);
  ASSERT_NO_FATAL_FAILURE(ArmFallocated(kMinor));
  ASSERT_NO_FATAL_FAILURE(ReadThroughContinue(0, 0));
  EXPECT_THAT(Recorded(), ElementsAre(PageFault(page(0), UFFD_PAGEFAULT_FLAG_MINOR)));
  EXPECT_TRUE(ReadsAsZeros(page(0), page_size())) << "through the continued mapping";
  EXPECT_TRUE(ReadsAsZeros(other(0), page_size())) << "through the other mapping";
}

// CONTINUE of fallocated pages ahead of any fault maps every one of them as zeros.
// Fails on guest_memfd with [PATCH v2 13/15] as posted: see MinorFaultOnAFallocatedPageContinuesAsZeros.
TEST_P(UffdFallocate, ContinueAheadOfAnyFaultMapsZeros) {
  REQUIRE_UFFD_MODES(kMinor);
  constexpr size_t kPages = 2;
  ASSERT_NO_FATAL_FAILURE(ArmFallocated(kMinor, kPages));
  ASSERT_NO_FATAL_FAILURE(ContinuePages(0, kPages));
  EXPECT_TRUE(ReadsAsZeros(page(0), kPages * page_size()));
  EXPECT_THAT(Recorded(), IsEmpty());
}

// Data written through a continued fallocated page is the page's: a later first fault through
// another mapping finds it, and the continued mapping still shows it.
//
// Fails on guest_memfd with [PATCH v2 13/15] as posted: CONTINUE mapped the folio without
// marking it uptodate, so the other mapping's fault, kvm_gmem_fault_user_mapping(), finds it
// !uptodate and clears it, wiping what userspace wrote through the first mapping.
TEST_P(UffdFallocate, DataWrittenThroughAContinuedPageSurvivesAFaultElsewhere) {
  REQUIRE_UFFD_MODES(kMinor);
  ASSERT_NO_FATAL_FAILURE(ArmFallocated(kMinor));
  ASSERT_NO_FATAL_FAILURE(ContinuePages(0));
  ASSERT_TRUE(FillBytes(page(0), page_size(), 0x77));
  EXPECT_TRUE(BytesAre(other(0), page_size(), 0x77)) << "through the other mapping, faulted after the write";
  EXPECT_TRUE(BytesAre(page(0), page_size(), 0x77)) << "through the continued mapping";
}

// The reverse order: a first fault through the unregistered mapping zero-fills the page and keeps
// what is written there; the MINOR fault that follows maps the same page with that data.
TEST_P(UffdFallocate, PageFaultedElsewhereFirstContinuesWithItsData) {
  REQUIRE_UFFD_MODES(kMinor);
  ASSERT_NO_FATAL_FAILURE(ArmFallocated(kMinor, 2));
  EXPECT_TRUE(ReadsAsZeros(other(0), 2 * page_size())) << "through the other mapping";
  ASSERT_TRUE(FillBytes(other(1), page_size(), 0x33));
  ASSERT_NO_FATAL_FAILURE(ReadThroughContinue(1, 0x33));
  EXPECT_TRUE(BytesAre(page(1), page_size(), 0x33));
  ASSERT_NO_FATAL_FAILURE(ContinuePages(0));
  EXPECT_TRUE(ReadsAsZeros(page(0), page_size()));
}

// A fallocated page is not missing: a read on a MISSING range raises no event and reads zeros.
TEST_P(UffdFallocate, FallocatedPageIsNotMissingAndReadsZeros) {
  REQUIRE_UFFD_MODES(kMissing);
  ASSERT_NO_FATAL_FAILURE(ArmFallocated(kMissing));
  FaultingThread& reader = Fault(page(0) + kOffset, Access::kRead);
  ASSERT_OK_AND_ASSIGN(TouchOutcome seen, reader.Wait(kFaultTimeoutMs));
  EXPECT_EQ(seen.signal, 0);
  EXPECT_EQ(seen.value, 0);
  EXPECT_THAT(Recorded(), IsEmpty());
  EXPECT_TRUE(ReadsAsZeros(page(0), page_size()));
  EXPECT_TRUE(ReadsAsZeros(other(0), page_size()));
}

// UFFDIO_COPY does not replace a fallocated page (EEXIST: the file already caches one there); the
// page keeps reading as zeros through both mappings.
TEST_P(UffdFallocate, CopyOntoAFallocatedPageFailsWithEexist) {
  REQUIRE_UFFD_MODES(kMissing);
  ASSERT_NO_FATAL_FAILURE(ArmFallocated(kMissing));
  std::vector<uint8_t> source(page_size(), 0xab);
  int64_t copied = 0;
  EXPECT_THAT(uffd().RawCopy(page(0), source.data(), page_size(), 0, &copied), SyscallFailsWithErrno(EEXIST));
  EXPECT_EQ(copied, -EEXIST);
  EXPECT_TRUE(ReadsAsZeros(page(0), page_size()));
  EXPECT_TRUE(ReadsAsZeros(other(0), page_size()));
  EXPECT_THAT(Recorded(), IsEmpty());
}

// write() over a fallocated page replaces it whole: the MINOR fault that follows maps the written
// data, and a fallocated page beside it that nobody wrote still continues as zeros.
// The second half fails on guest_memfd with [PATCH v2 13/15] as posted: see
// MinorFaultOnAFallocatedPageContinuesAsZeros.
TEST_P(UffdFallocate, WriteOverAFallocatedPageIsWhatContinueMaps) {
  REQUIRE_UFFD_MODES(kMinor);
  REQUIRE_WRITE_POPULATION();
  ASSERT_NO_FATAL_FAILURE(ArmFallocated(kMinor, 2, WritePopulationOf(backend()).backend));
  ASSERT_NO_FATAL_FAILURE(WritePage(0, 0xee));
  ASSERT_NO_FATAL_FAILURE(ReadThroughContinue(0, 0xee));
  EXPECT_TRUE(BytesAre(page(0), page_size(), 0xee));
  ASSERT_NO_FATAL_FAILURE(ContinuePages(1));
  EXPECT_TRUE(ReadsAsZeros(page(1), page_size()));
}

// write() after CONTINUE mapped a fallocated page lands on that mapped page, and a later fault
// through the other mapping shows the written data, not a cleared page.
TEST_P(UffdFallocate, WriteAfterContinueSurvivesAFaultElsewhere) {
  REQUIRE_UFFD_MODES(kMinor);
  REQUIRE_WRITE_POPULATION();
  ASSERT_NO_FATAL_FAILURE(ArmFallocated(kMinor, 1, WritePopulationOf(backend()).backend));
  ASSERT_NO_FATAL_FAILURE(ContinuePages(0));
  ASSERT_NO_FATAL_FAILURE(WritePage(0, 0xee));
  EXPECT_TRUE(BytesAre(page(0), page_size(), 0xee)) << "through the continued mapping";
  EXPECT_TRUE(BytesAre(other(0), page_size(), 0xee)) << "through the other mapping, faulted after the write";
}

INSTANTIATE_TEST_SUITE_P(, UffdFallocate, UffdBackends(), BackendParamName);

}  // namespace
}  // namespace gmem
