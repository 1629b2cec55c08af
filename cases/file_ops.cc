// File operations on a guest_memfd. Its file_operations define only mmap, fallocate, open and
// release: no read/write/llseek, and the pseudo-file is opened without FMODE_PREAD/FMODE_LSEEK,
// so the VFS answers the rest (6.12 through 7.3 alike). The inode refuses every setattr.
// Only mainline flags are used: an unmerged series' flag may give write() a meaning.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <fmt/format.h>

#include <functional>
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
};

// One file call, made on a guest_memfd: its description has "{}" where the fd goes.
struct FileCall {
  std::string format;
  std::function<long(int fd)> call;
};

SyscallResult Make(const FileCall& c, int fd) {
  long ret = c.call(fd);
  int err = errno;
  return SyscallResult::Capture(ret, err, fmt::format(fmt::runtime(c.format), fd));
}

void ExpectAllFail(const std::vector<FileCall>& calls, int fd, int err) {
  for (const FileCall& c : calls) EXPECT_THAT(Make(c, fd), SyscallFailsWithErrno(err));
}

char buffer[64];
iovec iov = {buffer, sizeof buffer};

// read/write and their vector forms: no read or write method, so the VFS says EINVAL.
TEST_F(FileOps, ReadAndWriteFailWithEinval) {
  REQUIRE_FEATURE("gmem");
  ForEachMainlineGmem([](const GuestMemfd& gmem) {
    ExpectAllFail({{"read(guest_memfd {}, buf, 64)", [](int fd) { return read(fd, buffer, 64); }},
                   {"write(guest_memfd {}, buf, 64)", [](int fd) { return write(fd, buffer, 64); }},
                   {"readv(guest_memfd {}, 1 iov)", [](int fd) { return readv(fd, &iov, 1); }},
                   {"writev(guest_memfd {}, 1 iov)", [](int fd) { return writev(fd, &iov, 1); }}},
                  gmem.fd(), EINVAL);
  });
}

// Positioned I/O: the file is not pread/pwrite-capable, so ESPIPE before any method is looked up.
TEST_F(FileOps, PositionedIoFailsWithEspipe) {
  REQUIRE_FEATURE("gmem");
  ForEachMainlineGmem([](const GuestMemfd& gmem) {
    ExpectAllFail(
        {{"pread(guest_memfd {}, buf, 64, 0)", [](int fd) { return pread(fd, buffer, 64, 0); }},
         {"pwrite(guest_memfd {}, buf, 64, 0)", [](int fd) { return pwrite(fd, buffer, 64, 0); }},
         {"preadv(guest_memfd {}, 1 iov, 0)", [](int fd) { return preadv(fd, &iov, 1, 0); }},
         {"pwritev(guest_memfd {}, 1 iov, 0)", [](int fd) { return pwritev(fd, &iov, 1, 0); }}},
        gmem.fd(), ESPIPE);
  });
}

// lseek with every valid whence: the file is not seekable.
TEST_F(FileOps, LseekFailsWithEspipe) {
  REQUIRE_FEATURE("gmem");
  ForEachMainlineGmem([](const GuestMemfd& gmem) {
    ExpectAllFail({{"lseek(guest_memfd {}, 0, SEEK_SET)", [](int fd) { return lseek(fd, 0, SEEK_SET); }},
                   {"lseek(guest_memfd {}, 0, SEEK_CUR)", [](int fd) { return lseek(fd, 0, SEEK_CUR); }},
                   {"lseek(guest_memfd {}, 0, SEEK_END)", [](int fd) { return lseek(fd, 0, SEEK_END); }},
                   {"lseek(guest_memfd {}, 0, SEEK_DATA)", [](int fd) { return lseek(fd, 0, SEEK_DATA); }},
                   {"lseek(guest_memfd {}, 0, SEEK_HOLE)", [](int fd) { return lseek(fd, 0, SEEK_HOLE); }}},
                  gmem.fd(), ESPIPE);
  });
}

// ftruncate reaches the inode's setattr, which refuses any change: the size is fixed at creation.
TEST_F(FileOps, FtruncateFailsWithEinvalAndKeepsSize) {
  REQUIRE_FEATURE("gmem");
  ForEachMainlineGmem([](const GuestMemfd& gmem) {
    for (off_t length : {off_t(2 * size()), off_t(page_size()), off_t(size()), off_t{0}}) {
      FileCall truncate{fmt::format("ftruncate(guest_memfd {{}}, {:#x})", length),
                        [length](int fd) { return ftruncate(fd, length); }};
      EXPECT_THAT(Make(truncate, gmem.fd()), SyscallFailsWithErrno(EINVAL));
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
