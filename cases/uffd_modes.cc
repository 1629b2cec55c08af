// UFFDIO_REGISTER per backend: which modes and ranges it accepts, which it refuses, and the
// `ioctls` mask it advertises for an accepted range; and the uffd series' gate on guest_memfd.
// (guest_memfd without the uffd series refuses every mode with EINVAL: that baseline is
// cases/uffd_registration.cc; here it skips with it.)

#include <fcntl.h>
#include <gmock/gmock.h>
#include <unistd.h>

#include <fmt/format.h>

#include <string>

#include "fixtures/errno_name.h"
#include "fixtures/mapping.h"
#include "fixtures/syscall_matchers.h"
#include "fixtures/uffd_family.h"
#include "fixtures/vm_fixture.h"

namespace gmem {
namespace {

using namespace uffd_ioctl;

constexpr uint64_t kMissing = UFFDIO_REGISTER_MODE_MISSING;
constexpr uint64_t kWp = UFFDIO_REGISTER_MODE_WP;
constexpr uint64_t kMinor = UFFDIO_REGISTER_MODE_MINOR;
constexpr uint64_t kAllModes = kMissing | kWp | kMinor;

// The ioctls advertised for a range of each backend whatever the mode: hugetlbfs gets
// UFFD_API_RANGE_IOCTLS_BASIC (no ZEROPAGE: there is no huge zero page; no MOVE), PTE-mapped
// memory the full UFFD_API_RANGE_IOCTLS. guest_memfd's row is derived from the uffd series
// (v2 13/15 gives it vm_uffd_ops on PTE-mapped folios), unverified on a kernel.
struct IoctlRow {
  const char* backend;
  uint64_t ioctls;
};
constexpr IoctlRow kBaseIoctls[] = {
    {"memfd", kWake | kCopy | kZeropage | kMove | kPoison},
    {"hugetlbfs_2M", kWake | kCopy | kPoison},
    {"guest_memfd", kWake | kCopy | kZeropage | kMove | kPoison},
};

// The mask for `modes`: CONTINUE only for MINOR ranges, WRITEPROTECT only for WP ranges; MOVE
// (6.8) and POISON (6.6) only on kernels whose UFFDIO_API lists their features.
uint64_t ExpectedIoctls(const Backend& backend, uint64_t modes) {
  uint64_t ioctls = 0;
  for (const IoctlRow& row : kBaseIoctls)
    if (backend.name() == row.backend) ioctls = row.ioctls;
  if (!ProbedFeatures().Has("uffd.feature.MOVE")) ioctls &= ~kMove;
  if (!ProbedFeatures().Has("uffd.feature.POISON")) ioctls &= ~kPoison;
  if (modes & kMinor) ioctls |= kContinue;
  if (modes & kWp) ioctls |= kWriteprotect;
  return ioctls;
}

class UffdModes : public UffdFamily {};

// Every combination of MISSING, WP and MINOR is accepted, advertising the backend's ioctls.
TEST_P(UffdModes, AcceptsEveryModeCombinationWithItsIoctls) {
  REQUIRE_UFFD_MODES(kAllModes);
  ASSERT_NO_FATAL_FAILURE(Prepare());
  for (uint64_t modes = 1; modes <= kAllModes; ++modes) {
    SCOPED_TRACE(UffdModesName(modes));
    uint64_t ioctls = 0;
    ASSERT_THAT(uffd().RawRegister(page(0), page_size(), modes, &ioctls), SyscallSucceeds());
    EXPECT_EQ(UffdIoctlsName(ioctls), UffdIoctlsName(ExpectedIoctls(backend(), modes)));
    // WP (and its markers) must be dropped by unregistering before another mode is registered.
    ASSERT_THAT(uffd().RawUnregister(page(0), page_size()), SyscallSucceeds());
  }
}

// No mode, and any mode bit beyond MISSING|WP|MINOR (7.3's RWP needs UFFD_FEATURE_RWP, not asked
// for here), is refused with EINVAL.
TEST_P(UffdModes, RefusesNoModeAndUnknownModeBits) {
  REQUIRE_UFFD_MODES(kMissing);
  ASSERT_NO_FATAL_FAILURE(Prepare());
  EXPECT_THAT(uffd().RawRegister(page(0), page_size(), 0), SyscallFailsWithErrno(EINVAL));
  for (int bit = 3; bit < 64; ++bit)
    EXPECT_THAT(uffd().RawRegister(page(0), page_size(), kMissing | (1ULL << bit)), SyscallFailsWithErrno(EINVAL));
}

// A range that does not start and end on the backend's page size is refused with EINVAL
// (validate_range for base pages, the huge page size for hugetlbfs).
TEST_P(UffdModes, RefusesRangeNotAlignedToThePageSize) {
  REQUIRE_UFFD_MODES(kMissing);
  ASSERT_NO_FATAL_FAILURE(Prepare(0, 2));
  size_t half = page_size() / 2;
  EXPECT_THAT(uffd().RawRegister(page(0) + half, page_size(), kMissing), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(uffd().RawRegister(page(0), page_size() + half, kMissing), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(uffd().RawRegister(page(0), 2 * page_size(), kMissing), SyscallSucceeds());
}

// A range registered on one userfaultfd is refused to another with EBUSY.
TEST_P(UffdModes, RefusesRangeOwnedByAnotherUserfaultfd) {
  REQUIRE_UFFD_MODES(kMissing);
  ASSERT_NO_FATAL_FAILURE(Arm(kMissing));
  ASSERT_OK_AND_ASSIGN(Userfaultfd second, Userfaultfd::Open());
  EXPECT_THAT(second.RawRegister(page(0), page_size(), kMissing), SyscallFailsWithErrno(EBUSY));
}

// A MAP_SHARED mapping of a file opened read-only (no VM_MAYWRITE) is refused with EPERM:
// UFFDIO_COPY would otherwise fill holes of a file the process may not write.
TEST_P(UffdModes, RefusesSharedMappingWithoutWriteAccess) {
  REQUIRE_UFFD_MODES(kMissing);
  ASSERT_NO_FATAL_FAILURE(Prepare());
  std::string path = fmt::format("/proc/self/fd/{}", file().fd.get());
  FileDescriptor readonly(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!readonly.valid())
    GTEST_SKIP() << "cannot reopen the " << backend().name() << " file read-only: open(" << path
                 << ", O_RDONLY) failed: " << ErrnoName(errno);
  ASSERT_OK_AND_ASSIGN(Mapping map, Map(page_size(), PROT_READ, MAP_SHARED, readonly.get()));
  EXPECT_THAT(uffd().RawRegister(map.addr(), page_size(), kMissing), SyscallFailsWithErrno(EPERM));
}

INSTANTIATE_TEST_SUITE_P(, UffdModes, UffdBackends(), BackendParamName);

using UffdGuestMemfdGate = VmTest;

// With the uffd series, guest_memfd takes userfaultfd only when created INIT_SHARED
// (kvm_gmem_can_userfault(), v2 13/15): a mapping of an MMAP-only file is refused with EINVAL.
TEST_F(UffdGuestMemfdGate, RefusesFileNotCreatedInitShared) {
  REQUIRE_FEATURE("uffd.guest_memfd.MISSING");
  REQUIRE_FEATURE("gmem.flag.MMAP");
  ASSERT_OK_AND_ASSIGN(GuestMemfd gmem, vm().CreateGuestMemfd(page_size(), GUEST_MEMFD_FLAG_MMAP));
  ASSERT_OK_AND_ASSIGN(Mapping map, gmem.Map(page_size()));
  ASSERT_OK_AND_ASSIGN(Userfaultfd uffd, Userfaultfd::Open());
  for (uint64_t modes : {kMissing, kMinor})
    EXPECT_THAT(uffd.RawRegister(map.addr(), page_size(), modes), SyscallFailsWithErrno(EINVAL));
}

}  // namespace
}  // namespace gmem
