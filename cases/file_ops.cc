// File operations on a guest_memfd. Its file_operations define only mmap, fallocate, open and
// release: no read/write/llseek, fsync, splice or ioctl, and the pseudo-file is opened without
// FMODE_PREAD/FMODE_LSEEK, so the VFS answers the rest (6.12 through 7.3 alike). The inode refuses
// every setattr, is an anonymous inode (no open method, no FIONREAD) and is no memfd (no seals).
// Only mainline flags are used, and write/pwrite/lseek skip on a kernel that may carry the
// unmerged write series, which changes them for every guest_memfd (see WriteSeriesMayApply).

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/falloc.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/uio.h>
#include <unistd.h>

#include <fmt/format.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "fixtures/kernel_changes.h"
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
    EXPECT_EQ(st.st_nlink, 1u);
    EXPECT_EQ(st.st_uid, geteuid()) << "owned by the creator's fsuid";
    EXPECT_EQ(st.st_gid, getegid()) << "owned by the creator's fsgid";
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

// Nothing to sync, no attributes to change: fsync and fdatasync fail (no fsync method), and
// fchmod, fchown and futimens reach the inode's setattr, which refuses every change, even one
// that changes nothing.
TEST_F(FileOps, SyncAndAttributeChangesFailWithEinval) {
  REQUIRE_FEATURE("gmem");
  const uid_t uid = geteuid();
  const gid_t gid = getegid();
  const timespec now[2] = {{0, UTIME_NOW}, {0, UTIME_NOW}};
  ForEachMainlineGmem([&](const GuestMemfd& gmem) {
    ExpectAllFail(
        {{"fsync(guest_memfd {})", [](int fd) { return long{fsync(fd)}; }, EINVAL},
         {"fdatasync(guest_memfd {})", [](int fd) { return long{fdatasync(fd)}; }, EINVAL},
         {"fchmod(guest_memfd {}, 0600)", [](int fd) { return long{fchmod(fd, 0600)}; }, EINVAL},
         {"fchmod(guest_memfd {}, 0644)", [](int fd) { return long{fchmod(fd, 0644)}; }, EINVAL},
         {fmt::format("fchown(guest_memfd {{}}, {}, {})", uid, gid),
          [=](int fd) { return long{fchown(fd, uid, gid)}; }, EINVAL},
         {"futimens(guest_memfd {}, NULL)", [](int fd) { return long{futimens(fd, nullptr)}; }, EINVAL},
         {"futimens(guest_memfd {}, {{UTIME_NOW, UTIME_NOW}})",
          [&](int fd) { return long{futimens(fd, now)}; }, EINVAL}},
        gmem.fd());
    struct stat st {};
    ASSERT_THAT(fstat(gmem.fd(), &st), SyscallSucceeds());
    EXPECT_EQ(st.st_mode & 07777, 0600u) << fmt::format("st_mode {:#o}", st.st_mode);
  });
}

// A pipe holding a few bytes, and a memfd of one page, the other ends of the copy calls.
struct CopyPeers {
  FileDescriptor read_end, write_end, memfd;

  static Result<CopyPeers> Make() {
    int p[2];
    if (pipe(p) != 0) return Error("pipe()", errno);
    CopyPeers peers{FileDescriptor(p[0]), FileDescriptor(p[1]), FileDescriptor()};
    if (write(p[1], "gmem", 4) != 4) return Error("write(pipe, 4 bytes)", errno);
    int m = memfd_create("gmemtest-copy-peer", MFD_CLOEXEC);
    if (m < 0) return Error("memfd_create()", errno);
    peers.memfd = FileDescriptor(m);
    if (ftruncate(m, 4096) != 0) return Error("ftruncate(memfd, 4096)", errno);
    return peers;
  }
};

// No splice_read or splice_write: splice fails with EINVAL in both directions, with or without
// an offset on the guest_memfd side.
TEST_F(FileOps, SpliceFailsBothWays) {
  REQUIRE_FEATURE("gmem");
  ForEachMainlineGmem([](const GuestMemfd& gmem) {
    ASSERT_OK_AND_ASSIGN(CopyPeers peers, CopyPeers::Make());
    const int r = peers.read_end.get(), w = peers.write_end.get();
    ExpectAllFail(
        {{fmt::format("splice(guest_memfd {{}}, NULL, pipe {}, NULL, 16, 0)", w),
          [w](int fd) { return long{splice(fd, nullptr, w, nullptr, 16, 0)}; }, EINVAL},
         {fmt::format("splice(guest_memfd {{}}, &0, pipe {}, NULL, 16, 0)", w),
          [w](int fd) { loff_t off = 0; return long{splice(fd, &off, w, nullptr, 16, 0)}; }, EINVAL},
         {fmt::format("splice(pipe {}, NULL, guest_memfd {{}}, NULL, 4, 0)", r),
          [r](int fd) { return long{splice(r, nullptr, fd, nullptr, 4, 0)}; }, EINVAL},
         {fmt::format("splice(pipe {}, NULL, guest_memfd {{}}, &0, 4, 0)", r),
          [r](int fd) { loff_t off = 0; return long{splice(r, nullptr, fd, &off, 4, 0)}; }, EINVAL}},
        gmem.fd());
  });
}

// sendfile, through the same missing splice methods: EINVAL both ways; with an offset on the
// guest_memfd, which cannot pread, ESPIPE.
TEST_F(FileOps, SendfileFailsBothWays) {
  REQUIRE_FEATURE("gmem");
  ForEachMainlineGmem([](const GuestMemfd& gmem) {
    ASSERT_OK_AND_ASSIGN(CopyPeers peers, CopyPeers::Make());
    const int w = peers.write_end.get(), m = peers.memfd.get();
    ExpectAllFail(
        {{fmt::format("sendfile(pipe {}, guest_memfd {{}}, NULL, 16)", w),
          [w](int fd) { return long{sendfile(w, fd, nullptr, 16)}; }, EINVAL},
         {fmt::format("sendfile(memfd {}, guest_memfd {{}}, NULL, 16)", m),
          [m](int fd) { return long{sendfile(m, fd, nullptr, 16)}; }, EINVAL},
         {fmt::format("sendfile(memfd {}, guest_memfd {{}}, &0, 16)", m),
          [m](int fd) { off_t off = 0; return long{sendfile(m, fd, &off, 16)}; }, ESPIPE},
         {fmt::format("sendfile(guest_memfd {{}}, memfd {}, NULL, 16)", m),
          [m](int fd) { return long{sendfile(fd, m, nullptr, 16)}; }, EINVAL}},
        gmem.fd());
  });
}

// copy_file_range: to or from another filesystem (a memfd) EXDEV; between two guest_memfd
// files, which share a filesystem, the splice fallback fails with EINVAL.
TEST_F(FileOps, CopyFileRangeFailsBothWays) {
  REQUIRE_FEATURE("gmem");
  ForEachMainlineGmem([this](const GuestMemfd& gmem) {
    ASSERT_OK_AND_ASSIGN(CopyPeers peers, CopyPeers::Make());
    ASSERT_OK_AND_ASSIGN(GuestMemfd other, vm().CreateGuestMemfd(size(), gmem.flags()));
    const int m = peers.memfd.get(), o = other.fd();
    ExpectAllFail(
        {{fmt::format("copy_file_range(guest_memfd {{}}, NULL, memfd {}, NULL, 16, 0)", m),
          [m](int fd) { return long{copy_file_range(fd, nullptr, m, nullptr, 16, 0)}; }, EXDEV},
         {fmt::format("copy_file_range(memfd {}, NULL, guest_memfd {{}}, NULL, 16, 0)", m),
          [m](int fd) { return long{copy_file_range(m, nullptr, fd, nullptr, 16, 0)}; }, EXDEV},
         {fmt::format("copy_file_range(guest_memfd {{}}, NULL, guest_memfd {}, NULL, 16, 0)", o),
          [o](int fd) { return long{copy_file_range(fd, nullptr, o, nullptr, 16, 0)}; }, EINVAL}},
        gmem.fd());
  });
}

// Seals belong to memfd (shmem and hugetlbfs files): F_ADD_SEALS and F_GET_SEALS fail with EINVAL.
TEST_F(FileOps, SealsFailWithEinval) {
  REQUIRE_FEATURE("gmem");
  ForEachMainlineGmem([](const GuestMemfd& gmem) {
    ExpectAllFail(
        {{"fcntl(guest_memfd {}, F_GET_SEALS)", [](int fd) { return long{fcntl(fd, F_GET_SEALS)}; }, EINVAL},
         {"fcntl(guest_memfd {}, F_ADD_SEALS, F_SEAL_WRITE)",
          [](int fd) { return long{fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE)}; }, EINVAL},
         {"fcntl(guest_memfd {}, F_ADD_SEALS, 0)", [](int fd) { return long{fcntl(fd, F_ADD_SEALS, 0)}; }, EINVAL}},
        gmem.fd());
  });
}

// Reopening the file through /proc/self/fd/N fails with ENXIO: the inode has no open method of
// its own, only the file KVM_CREATE_GUEST_MEMFD made has file operations.
TEST_F(FileOps, ReopenThroughProcFailsWithEnxio) {
  REQUIRE_FEATURE("gmem");
  ForEachMainlineGmem([](const GuestMemfd& gmem) {
    for (int flags : {O_RDWR, O_RDONLY, O_WRONLY, O_RDONLY | O_PATH}) {
      std::string path = fmt::format("/proc/self/fd/{}", gmem.fd());
      int ret = open(path.c_str(), flags | O_CLOEXEC);
      SyscallResult r = SyscallResult::Capture(ret, errno, fmt::format("open(\"{}\", {:#o})", path, flags));
      FileDescriptor opened(r.ok() ? static_cast<int>(r.ret) : -1);
      if (flags & O_PATH)  // O_PATH opens no file: it needs no file operations
        EXPECT_THAT(r, SyscallSucceeds());
      else
        EXPECT_THAT(r, SyscallFailsWithErrno(ENXIO));
    }
  });
}

// FIONREAD: the VFS answers it for regular files, but not for anonymous-inode ones since the
// kernel marks those (kernel change anon_inode_fionread); guest_memfd has no ioctl method, so
// it is then ENOTTY. Before, it reported the bytes from the file position (0) to i_size.
TEST_F(FileOps, Fionread) {
  REQUIRE_FEATURE("gmem");
  ChangeVerdict change = ForRunningKernel("anon_inode_fionread");
  SCOPED_TRACE(change.explanation());
  ASSERT_TRUE(change.known());
  ForEachMainlineGmem([&](const GuestMemfd& gmem) {
    int available = -1;
    int ret = ioctl(gmem.fd(), FIONREAD, &available);
    SyscallResult r = SyscallResult::Capture(ret, errno, fmt::format("ioctl(guest_memfd {}, FIONREAD)", gmem.fd()));
    if (change.gives_new()) {
      EXPECT_THAT(r, SyscallFailsWithErrno(ENOTTY));
      EXPECT_EQ(available, -1) << "FIONREAD wrote a count";
    } else {
      EXPECT_THAT(r, SyscallSucceeds());
      EXPECT_EQ(available, static_cast<int>(size()));
    }
  });
}

constexpr long kAnonInodeFsMagic = 0x09041934;  // include/uapi/linux/magic.h
constexpr long kGuestMemfdMagic = 0x474d454d;   // "GMEM", include/uapi/linux/magic.h

// The filesystem a guest_memfd lives on, as fstatfs and the /proc/self/fd link show it: the
// anon_inode filesystem until guest_memfd got its own (kernel change gmem_own_filesystem).
TEST_F(FileOps, FilesystemTypeAndLinkName) {
  REQUIRE_FEATURE("gmem");
  ChangeVerdict change = ForRunningKernel("gmem_own_filesystem");
  SCOPED_TRACE(change.explanation());
  ASSERT_TRUE(change.known());
  const long magic = change.Pick(kAnonInodeFsMagic, kGuestMemfdMagic);
  const std::string link = change.Pick(std::string("anon_inode:[kvm-gmem]"), std::string("/[kvm-gmem] (deleted)"));
  ForEachMainlineGmem([&](const GuestMemfd& gmem) {
    struct statfs fs {};
    ASSERT_THAT(fstatfs(gmem.fd(), &fs), SyscallSucceeds());
    EXPECT_EQ(static_cast<long>(fs.f_type), magic) << fmt::format("f_type {:#x}", static_cast<long>(fs.f_type));
    EXPECT_EQ(static_cast<long>(fs.f_bsize), static_cast<long>(page_size()));
    char target[256] = {};
    std::string path = fmt::format("/proc/self/fd/{}", gmem.fd());
    ssize_t n = readlink(path.c_str(), target, sizeof target - 1);
    ASSERT_THAT(n, SyscallSucceeds()) << "readlink " << path;
    EXPECT_EQ(std::string(target, static_cast<size_t>(n)), link) << "readlink " << path;
  });
}

}  // namespace
}  // namespace gmem
