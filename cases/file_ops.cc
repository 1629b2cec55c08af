// File operations on a guest_memfd. Its file_operations define only mmap, fallocate, open and
// release: no read/write/llseek, and the pseudo-file is opened without FMODE_PREAD/FMODE_LSEEK,
// so the VFS answers the rest (6.12 through 7.3 alike). The inode refuses every setattr.
// Only mainline flags are used, and write/pwrite/lseek skip on a kernel that may carry the
// unmerged write series, which changes them for every guest_memfd (see WriteSeriesMayApply).

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <fmt/format.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "fixtures/kvm.h"
#include "fixtures/require.h"
#include "fixtures/syscall_matchers.h"
#include "fixtures/vm_fixture.h"

namespace gmem {
namespace {

class FileOps : public VmTest {
 protected:
  static constexpr size_t kPages = 4;
  static uint64_t size() { return kPages * page_size(); }

  // Runs `check` on a guest_memfd of each mainline flag set the kernel has (the file operations
  // do not depend on the flags; series flags are left out on purpose).
  void ForEachMainlineGmem(const std::function<void(const GuestMemfd&)>& check) const {
    std::vector<uint64_t> flag_sets = {0};
    if (ProbedFeatures().Has("gmem.flag.MMAP")) flag_sets.push_back(GUEST_MEMFD_FLAG_MMAP);
    if (ProbedFeatures().Has("gmem.flag.INIT_SHARED"))
      flag_sets.push_back(GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED);
    for (uint64_t flags : flag_sets) {
      SCOPED_TRACE("guest_memfd flags=" + GmemFlagsName(flags));
      ASSERT_OK_AND_ASSIGN(GuestMemfd gmem, vm().CreateGuestMemfd(size(), flags));
      check(gmem);
    }
  }

  // Why write, pwrite and lseek may not give their mainline answers here, or nullopt. The
  // unmerged gmem-write series (fixtures/uapi/series/gmem_write_v7.h) gives every guest_memfd,
  // with its flag or without, write_iter, llseek and FMODE_LSEEK|FMODE_PWRITE; its flag is found
  // by the probe when a profile names it, and otherwise shows as a bit beyond mainline's.
  static std::optional<std::string> WriteSeriesMayApply() {
    if (const Feature* write = ProbedFeatures().Find("gmem.flag.WRITE");
        write && write->state == FeatureState::kPresent)
      return "the kernel has the gmem-write series (gmem.flag.WRITE: " + write->how +
             "); write, pwrite and lseek are that family's cases";
    uint64_t advertised = static_cast<uint64_t>(ProbedFeatures().Value("gmem.flags.DEFAULT"));
    uint64_t beyond = advertised & ~(GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED);
    if (beyond == 0) return std::nullopt;
    return fmt::format(
        "KVM_CAP_GUEST_MEMFD_FLAGS = {:#x} on a KVM_X86_DEFAULT_VM has bits beyond mainline ({:#x}): "
        "an unmerged series may define write, pwrite and lseek on every guest_memfd "
        "(gmem-write-v7 does)", advertised, beyond);
  }
};

// One call on a guest_memfd: its description has "{}" where the fd goes, and `err` is the errno
// mainline answers it with.
struct FileCall {
  std::string format;
  std::function<long(int fd)> call;
  int err = 0;
};

SyscallResult Make(const FileCall& c, int fd) {
  long ret = c.call(fd);
  int err = errno;
  return SyscallResult::Capture(ret, err, fmt::format(fmt::runtime(c.format), fd));
}

void ExpectAllFail(const std::vector<FileCall>& calls, int fd) {
  for (const FileCall& c : calls) EXPECT_THAT(Make(c, fd), SyscallFailsWithErrno(c.err));
}

char buffer[64];
iovec iov = {buffer, sizeof buffer};

// No read method: EINVAL; not pread-capable: ESPIPE.
const std::vector<FileCall> kReads = {
    {"read(guest_memfd {}, buf, 64)", [](int fd) { return read(fd, buffer, 64); }, EINVAL},
    {"readv(guest_memfd {}, 1 iov)", [](int fd) { return readv(fd, &iov, 1); }, EINVAL},
    {"pread(guest_memfd {}, buf, 64, 0)", [](int fd) { return pread(fd, buffer, 64, 0); }, ESPIPE},
    {"preadv(guest_memfd {}, 1 iov, 0)", [](int fd) { return preadv(fd, &iov, 1, 0); }, ESPIPE}};

// No write method: EINVAL; not pwrite-capable: ESPIPE.
const std::vector<FileCall> kWrites = {
    {"write(guest_memfd {}, buf, 64)", [](int fd) { return write(fd, buffer, 64); }, EINVAL},
    {"writev(guest_memfd {}, 1 iov)", [](int fd) { return writev(fd, &iov, 1); }, EINVAL},
    {"pwrite(guest_memfd {}, buf, 64, 0)", [](int fd) { return pwrite(fd, buffer, 64, 0); }, ESPIPE},
    {"pwritev(guest_memfd {}, 1 iov, 0)", [](int fd) { return pwritev(fd, &iov, 1, 0); }, ESPIPE}};

// Not seekable, whatever the (valid) whence: ESPIPE.
const std::vector<FileCall> kSeeks = {
    {"lseek(guest_memfd {}, 0, SEEK_SET)", [](int fd) { return lseek(fd, 0, SEEK_SET); }, ESPIPE},
    {"lseek(guest_memfd {}, 0, SEEK_CUR)", [](int fd) { return lseek(fd, 0, SEEK_CUR); }, ESPIPE},
    {"lseek(guest_memfd {}, 0, SEEK_END)", [](int fd) { return lseek(fd, 0, SEEK_END); }, ESPIPE},
    {"lseek(guest_memfd {}, 0, SEEK_DATA)", [](int fd) { return lseek(fd, 0, SEEK_DATA); }, ESPIPE},
    {"lseek(guest_memfd {}, 0, SEEK_HOLE)", [](int fd) { return lseek(fd, 0, SEEK_HOLE); }, ESPIPE}};

// read, readv, pread and preadv all fail: the file has no read path.
TEST_F(FileOps, ReadCallsFail) {
  REQUIRE_FEATURE("gmem");
  ForEachMainlineGmem([](const GuestMemfd& gmem) { ExpectAllFail(kReads, gmem.fd()); });
}

// write, writev, pwrite and pwritev all fail: the file has no write path.
TEST_F(FileOps, WriteCallsFail) {
  REQUIRE_FEATURE("gmem");
  if (auto why = WriteSeriesMayApply()) GTEST_SKIP() << *why;
  ForEachMainlineGmem([](const GuestMemfd& gmem) { ExpectAllFail(kWrites, gmem.fd()); });
}

// lseek fails with ESPIPE for every whence: the file has no file position.
TEST_F(FileOps, LseekFailsWithEspipe) {
  REQUIRE_FEATURE("gmem");
  if (auto why = WriteSeriesMayApply()) GTEST_SKIP() << *why;
  ForEachMainlineGmem([](const GuestMemfd& gmem) { ExpectAllFail(kSeeks, gmem.fd()); });
}

// ftruncate reaches the inode's setattr, which refuses any change: the size is fixed at creation.
TEST_F(FileOps, FtruncateFailsWithEinvalAndKeepsSize) {
  REQUIRE_FEATURE("gmem");
  ForEachMainlineGmem([](const GuestMemfd& gmem) {
    for (off_t length : {off_t(2 * size()), off_t(page_size()), off_t(size()), off_t{0}}) {
      ExpectAllFail({{fmt::format("ftruncate(guest_memfd {{}}, {:#x})", length),
                      [length](int fd) { return ftruncate(fd, length); }, EINVAL}},
                    gmem.fd());
    }
    struct stat st {};
    ASSERT_THAT(fstat(gmem.fd(), &st), SyscallSucceeds());
    EXPECT_EQ(static_cast<uint64_t>(st.st_size), size());
  });
}

// fstat: a regular file, owner read/write only, of the created size, page-sized blocks.
TEST_F(FileOps, FstatReportsRegularFileOfCreatedSize) {
  REQUIRE_FEATURE("gmem");
  ForEachMainlineGmem([](const GuestMemfd& gmem) {
    struct stat st {};
    ASSERT_THAT(fstat(gmem.fd(), &st), SyscallSucceeds());
    EXPECT_TRUE(S_ISREG(st.st_mode)) << fmt::format("st_mode {:#o}", st.st_mode);
    EXPECT_EQ(st.st_mode & 07777, 0600u) << fmt::format("st_mode {:#o}", st.st_mode);
    EXPECT_EQ(static_cast<uint64_t>(st.st_size), size());
    EXPECT_EQ(static_cast<uint64_t>(st.st_blksize), page_size());
  });
}

// guest_memfd keeps no block count: st_blocks stays 0 even with every page allocated.
TEST_F(FileOps, FstatBlocksStayZeroWhenAllocated) {
  REQUIRE_FEATURE("gmem");
  ForEachMainlineGmem([](const GuestMemfd& gmem) {
    ASSERT_THAT(gmem.RawFallocate(FALLOC_FL_KEEP_SIZE, 0, size()), SyscallSucceeds());
    struct stat st {};
    ASSERT_THAT(fstat(gmem.fd(), &st), SyscallSucceeds());
    EXPECT_EQ(st.st_blocks, 0);
  });
}

// The fd is read/write and large-file, and not close-on-exec (the ioctl has no flag for it).
TEST_F(FileOps, FdIsReadWriteLargefileWithoutCloexec) {
  REQUIRE_FEATURE("gmem");
  // The kernel's O_LARGEFILE (include/uapi/asm-generic/fcntl.h); glibc defines it as 0 on x86-64.
  constexpr long kKernelLargefile = 0100000;
  ForEachMainlineGmem([](const GuestMemfd& gmem) {
    EXPECT_THAT(Make({"fcntl(guest_memfd {}, F_GETFL)", [](int fd) { return fcntl(fd, F_GETFL); }},
                     gmem.fd()),
                SyscallSucceedsWithValue(O_RDWR | kKernelLargefile));
    EXPECT_THAT(Make({"fcntl(guest_memfd {}, F_GETFD)", [](int fd) { return fcntl(fd, F_GETFD); }},
                     gmem.fd()),
                SyscallSucceedsWithValue(0));
  });
}

}  // namespace
}  // namespace gmem
