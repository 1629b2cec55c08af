// UFFDIO_REGISTER on a guest_memfd mapping of a kernel without guest_memfd userfaultfd support:
// the mainline baseline. guest_memfd has no vm_uffd_ops there, so vma_can_userfault() refuses
// every mode (EINVAL), except write-protect alone on a WP_ASYNC context, which any memory gets.
// Kernels whose probe registers guest_memfd (the uffd series) are the uffd_*.cc families' part.

#include <gtest/gtest.h>

#include <initializer_list>
#include <optional>
#include <string>

#include "fixtures/fault.h"
#include "fixtures/require.h"
#include "fixtures/syscall_matchers.h"
#include "fixtures/uffd.h"
#include "fixtures/vm_fixture.h"

namespace gmem {
namespace {

// A shared guest_memfd mapping of four pages, nothing registered yet.
class GmemUffdRegistration : public VmTest {
 protected:
  void SetUp() override {
    VmTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    REQUIRE_FEATURE("uffd");
    REQUIRE_FEATURE("gmem");
    REQUIRE_FEATURE("gmem.flag.MMAP");
    REQUIRE_FEATURE("gmem.flag.INIT_SHARED");
    ASSERT_OK_AND_ASSIGN(gmem_, vm().CreateGuestMemfd(4 * page_size(), GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED));
    ASSERT_OK_AND_ASSIGN(map_, gmem_.Map(4 * page_size()));
  }

  // Why this baseline does not apply: the probe registered guest_memfd in one of `modes`, so the
  // uffd series' families (cases/uffd_*.cc), not this baseline, say what the kernel must do.
  static std::optional<std::string> SeriesCovers(std::initializer_list<const char*> modes) {
    for (const char* mode : modes)
      if (ProbedFeatures().Has(std::string("uffd.guest_memfd.") + mode))
        return std::string("uffd.guest_memfd.") + mode +
               " present: guest_memfd has userfaultfd support here; cases/uffd_*.cc cover it";
    return std::nullopt;
  }

  GuestMemfd gmem_;
  Mapping map_;
};

// MISSING is refused.
TEST_F(GmemUffdRegistration, RefusesMissing) {
  if (auto why = SeriesCovers({"MISSING"})) GTEST_SKIP() << *why;
  ASSERT_OK_AND_ASSIGN(Userfaultfd uffd, Userfaultfd::Open());
  EXPECT_THAT(uffd.RawRegister(map_.addr(), map_.length(), UFFDIO_REGISTER_MODE_MISSING),
              SyscallFailsWithErrno(EINVAL));
}

// MINOR is refused.
TEST_F(GmemUffdRegistration, RefusesMinor) {
  if (auto why = SeriesCovers({"MINOR"})) GTEST_SKIP() << *why;
  ASSERT_OK_AND_ASSIGN(Userfaultfd uffd, Userfaultfd::Open());
  EXPECT_THAT(uffd.RawRegister(map_.addr(), map_.length(), UFFDIO_REGISTER_MODE_MINOR),
              SyscallFailsWithErrno(EINVAL));
}

// Synchronous write-protect is refused too: only memory with uffd support takes it.
TEST_F(GmemUffdRegistration, RefusesSyncWriteProtect) {
  if (auto why = SeriesCovers({"MISSING", "MINOR"})) GTEST_SKIP() << *why;
  ASSERT_OK_AND_ASSIGN(Userfaultfd uffd, Userfaultfd::Open());
  EXPECT_THAT(uffd.RawRegister(map_.addr(), map_.length(), UFFDIO_REGISTER_MODE_WP),
              SyscallFailsWithErrno(EINVAL));
}

// On a WP_ASYNC context, write-protect alone registers on any memory, guest_memfd included, and
// advertises UFFDIO_WRITEPROTECT; the mapping stays writable.
TEST_F(GmemUffdRegistration, AsyncWriteProtectRegisters) {
  REQUIRE_FEATURE("uffd.feature.WP_ASYNC");
  ASSERT_OK_AND_ASSIGN(Userfaultfd uffd, Userfaultfd::Open(UFFD_FEATURE_WP_ASYNC));
  ASSERT_OK_AND_ASSIGN(uint64_t ioctls, uffd.Register(map_.addr(), map_.length(), UFFDIO_REGISTER_MODE_WP));
  EXPECT_TRUE(ioctls & (1ULL << _UFFDIO_WRITEPROTECT)) << UffdIoctlsName(ioctls);
  EXPECT_TRUE(TouchSucceeds(map_.bytes() + page_size(), Access::kWrite));
  EXPECT_THAT(uffd.RawUnregister(map_.addr(), map_.length()), SyscallSucceeds());
}

// WP_ASYNC admits write-protect alone: combined with MISSING or MINOR it is refused.
TEST_F(GmemUffdRegistration, AsyncWriteProtectRefusesOtherModes) {
  REQUIRE_FEATURE("uffd.feature.WP_ASYNC");
  if (auto why = SeriesCovers({"MISSING", "MINOR"})) GTEST_SKIP() << *why;
  ASSERT_OK_AND_ASSIGN(Userfaultfd uffd, Userfaultfd::Open(UFFD_FEATURE_WP_ASYNC));
  for (uint64_t mode : {UFFDIO_REGISTER_MODE_MISSING, UFFDIO_REGISTER_MODE_MINOR})
    EXPECT_THAT(uffd.RawRegister(map_.addr(), map_.length(), UFFDIO_REGISTER_MODE_WP | mode),
                SyscallFailsWithErrno(EINVAL));
}

}  // namespace
}  // namespace gmem
