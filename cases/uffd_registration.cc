// UFFDIO_REGISTER on a guest_memfd mapping of a kernel without guest_memfd userfaultfd support:
// the mainline baseline. guest_memfd has no vm_uffd_ops there, so vma_can_userfault() refuses
// every mode (EINVAL), except write-protect alone on a WP_ASYNC context, which any memory gets.
// Kernels whose probe registers guest_memfd (the uffd series) are the uffd_*.cc families' part.

#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cstring>
#include <initializer_list>
#include <optional>
#include <string>

#include "fixtures/fault.h"
#include "fixtures/mapping.h"
#include "fixtures/require.h"
#include "fixtures/syscall_matchers.h"
#include "fixtures/uapi/uffd_mainline.h"
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

// An anonymous page followed directly by a guest_memfd page, as two VMAs of one range.
class GmemUffdSpanning : public GmemUffdRegistration {
 protected:
  void SetUp() override {
    GmemUffdRegistration::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    const size_t page = page_size();
    ASSERT_OK_AND_ASSIGN(span_, MapAnonymous(2 * page));
    void* gmem_page = mmap(span_.bytes() + page, page, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, gmem_.fd(), 0);
    ASSERT_EQ(gmem_page, span_.bytes() + page) << "mmap(MAP_FIXED) of guest_memfd after the anonymous page: " << strerror(errno);
  }
  Mapping span_;  // [anonymous page][guest_memfd page 0]
};

// A range reaching from an anonymous VMA into a guest_memfd VMA is refused as a whole for MISSING:
// the anonymous part is left unregistered (another userfaultfd registers it alone).
TEST_F(GmemUffdSpanning, MissingOverBothRegistersNothing) {
  if (auto why = SeriesCovers({"MISSING"})) GTEST_SKIP() << *why;
  ASSERT_OK_AND_ASSIGN(Userfaultfd uffd, Userfaultfd::Open());
  EXPECT_THAT(uffd.RawRegister(span_.addr(), span_.length(), UFFDIO_REGISTER_MODE_MISSING),
              SyscallFailsWithErrno(EINVAL));
  ASSERT_OK_AND_ASSIGN(Userfaultfd other, Userfaultfd::Open());
  EXPECT_THAT(other.RawRegister(span_.addr(), page_size(), UFFDIO_REGISTER_MODE_MISSING), SyscallSucceeds())
      << "the anonymous VMA was left registered to the first userfaultfd";
}

// On a WP_ASYNC context write-protect alone takes both VMAs of the range.
TEST_F(GmemUffdSpanning, AsyncWriteProtectOverBothRegisters) {
  REQUIRE_FEATURE("uffd.feature.WP_ASYNC");
  ASSERT_OK_AND_ASSIGN(Userfaultfd uffd, Userfaultfd::Open(UFFD_FEATURE_WP_ASYNC));
  EXPECT_THAT(uffd.RawRegister(span_.addr(), span_.length(), UFFDIO_REGISTER_MODE_WP), SyscallSucceeds());
  EXPECT_TRUE(TouchSucceeds(span_.bytes() + page_size(), Access::kWrite));
}

// Read-write protection (UFFDIO_REGISTER_MODE_RWP) needs memory with userfaultfd support: it is
// refused on guest_memfd while anonymous memory of the same context takes it.
TEST_F(GmemUffdRegistration, RefusesReadWriteProtect) {
  REQUIRE_FEATURE("uffd.feature.RWP");
  if (auto why = SeriesCovers({"MISSING", "MINOR"})) GTEST_SKIP() << *why;
  ASSERT_OK_AND_ASSIGN(Userfaultfd uffd, Userfaultfd::Open(UFFD_FEATURE_RWP));
  EXPECT_THAT(uffd.RawRegister(map_.addr(), map_.length(), UFFDIO_REGISTER_MODE_RWP),
              SyscallFailsWithErrno(EINVAL));
  ASSERT_OK_AND_ASSIGN(Mapping anonymous, MapAnonymous(page_size()));
  EXPECT_THAT(uffd.RawRegister(anonymous.addr(), anonymous.length(), UFFDIO_REGISTER_MODE_RWP), SyscallSucceeds())
      << "RWP on anonymous memory, the control";
}

}  // namespace
}  // namespace gmem
