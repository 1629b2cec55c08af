// KVM_CREATE_GUEST_MEMFD: which flags and sizes the kernel accepts.

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vector>

#include "fixtures/kvm.h"
#include "fixtures/require.h"
#include "fixtures/syscall_matchers.h"
#include "fixtures/vm_fixture.h"

namespace gmem {
namespace {

using Creation = VmTest;

// The flags KVM advertises for this VM (0 on kernels that predate KVM_CAP_GUEST_MEMFD_FLAGS).
uint64_t SupportedFlags(const Vm& vm) {
  return ProbedFeatures().Has("kvm.cap.GUEST_MEMFD_FLAGS") ? vm.CheckExtension(KVM_CAP_GUEST_MEMFD_FLAGS) : 0;
}

// Every flag bit KVM does not advertise is refused with EINVAL.
TEST_F(Creation, RejectsUnknownFlagBits) {
  REQUIRE_FEATURE("gmem");
  uint64_t supported = SupportedFlags(vm());
  for (int bit = 0; bit < 64; ++bit) {
    uint64_t flag = 1ULL << bit;
    if (supported & flag) continue;
    EXPECT_THAT(vm().RawCreateGuestMemfd(page_size(), flag), SyscallFailsWithErrno(EINVAL));
  }
}

// Every combination of advertised flags is accepted.
TEST_F(Creation, AcceptsEverySupportedFlagCombination) {
  REQUIRE_FEATURE("gmem");
  uint64_t supported = SupportedFlags(vm());
  std::vector<uint64_t> bits;
  for (int bit = 0; bit < 64; ++bit)
    if (supported & (1ULL << bit)) bits.push_back(1ULL << bit);
  for (uint64_t subset = 0; subset < (1ULL << bits.size()); ++subset) {
    uint64_t flags = 0;
    for (size_t i = 0; i < bits.size(); ++i)
      if (subset & (1ULL << i)) flags |= bits[i];
    EXPECT_OK(vm().CreateGuestMemfd(page_size(), flags));
  }
}

// A zero size is refused.
TEST_F(Creation, RejectsZeroSize) {
  REQUIRE_FEATURE("gmem");
  EXPECT_THAT(vm().RawCreateGuestMemfd(0, 0), SyscallFailsWithErrno(EINVAL));
}

// Sizes that are not a multiple of the page size are refused.
TEST_F(Creation, RejectsUnalignedSize) {
  REQUIRE_FEATURE("gmem");
  for (uint64_t size : {uint64_t{1}, page_size() - 1, page_size() + 1, 3 * page_size() / 2})
    EXPECT_THAT(vm().RawCreateGuestMemfd(size, 0), SyscallFailsWithErrno(EINVAL));
}

// A size that is negative as loff_t is refused.
TEST_F(Creation, RejectsNegativeSize) {
  REQUIRE_FEATURE("gmem");
  EXPECT_THAT(vm().RawCreateGuestMemfd(~uint64_t{0} & ~(page_size() - 1), 0), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(vm().RawCreateGuestMemfd(1ULL << 63, 0), SyscallFailsWithErrno(EINVAL));
}

// A huge size is accepted without allocating anything: memory comes at fault or fallocate time.
TEST_F(Creation, AcceptsHugeSizeWithoutAllocating) {
  REQUIRE_FEATURE("gmem");
  ASSERT_OK_AND_ASSIGN(GuestMemfd gmem, vm().CreateGuestMemfd(1ULL << 40));
  struct stat st {};
  ASSERT_EQ(fstat(gmem.fd(), &st), 0);
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), 1ULL << 40);
  EXPECT_EQ(st.st_blocks, 0);
}

// Several guest_memfd files can be created for one VM, each its own file.
TEST_F(Creation, SeveralFilesPerVm) {
  REQUIRE_FEATURE("gmem");
  std::vector<GuestMemfd> files;
  for (int i = 0; i < 8; ++i) {
    ASSERT_OK_AND_ASSIGN(GuestMemfd gmem, vm().CreateGuestMemfd(page_size() * (i + 1)));
    files.push_back(std::move(gmem));
  }
  struct stat first {}, second {};
  ASSERT_EQ(fstat(files[0].fd(), &first), 0);
  ASSERT_EQ(fstat(files[1].fd(), &second), 0);
  EXPECT_NE(first.st_ino, second.st_ino);
  EXPECT_EQ(second.st_size, static_cast<off_t>(2 * page_size()));
}

}  // namespace
}  // namespace gmem
