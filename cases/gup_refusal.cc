// GUP refusal on memory that is not in the kernel's direct map.
//
// Every kernel path that reaches user memory through get_user_pages()/pin_user_pages() must refuse
// a mapping whose pages the kernel cannot address (mm/gup.c check_vma_flags(): vma_is_secretmem()
// -> -EFAULT, and gup_fast_folio_allowed() sends GUP-fast to that slow path), while the paths that
// copy through the user mapping (copy_{to,from}_user, plain CPU access) keep working.
//
// Backends: memfd_secret (mainline, the calibration) and guest_memfd created with the direct-map
// removal series' flag (GUEST_MEMFD_FLAG_NO_DIRECT_MAP|MMAP|INIT_SHARED; gmem-no-direct-map-v12
// swaps vma_is_secretmem() for vma_has_no_direct_map() in exactly those checks, so it must answer
// like memfd_secret). Controls: memfd and mainline guest_memfd (MMAP|INIT_SHARED), whose pages are
// in the direct map, where the same calls succeed and move the data: each case can pass and fail.
//
// The refusal errno of each path is kRefused below: what 6.18 gives on memfd_secret, which the
// 7.3 source gives too (cited per path).

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/io_uring.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "fixtures/backends.h"
#include "fixtures/bytes.h"
#include "fixtures/errno_name.h"
#include "fixtures/fault.h"
#include "fixtures/kvm.h"
#include "fixtures/mapping.h"
#include "fixtures/no_direct_map.h"
#include "fixtures/require.h"
#include "fixtures/series.h"
#include "fixtures/syscall_matchers.h"
#include "fixtures/uapi/mm_mainline.h"

namespace gmem {
namespace {

// Whether a backend's pages stay in the direct map: the one thing the family's expectations
// depend on.
struct GupBackend {
  std::string name;
  bool direct_map;
};
const GupBackend kGupBackends[] = {
    {"memfd", true},
    {"guest_memfd", true},
    {"memfd_secret", false},
    {"guest_memfd_no_direct_map", false},
};

// The errno each GUP user gives for memory outside the direct map: measured on 6.18 with
// memfd_secret, and what the Linux 7.3 source gives (file:line of 7.3).
struct Refusal {
  // iomap/blockdev direct I/O -> bio_iov_iter_get_pages -> pin_user_pages_fast: GUP-fast refuses
  // secretmem folios (gup_fast_folio_allowed), the slow path check_vma_flags() -> -EFAULT (gup.c:1219).
  int odirect = EFAULT;
  // process_vm_rw_single_vec: pin_user_pages_remote() <= 0 -> -EFAULT (process_vm_access.c:111).
  int process_vm = EFAULT;
  // vmsplice_to_pipe -> iter_to_pipe -> iov_iter_get_pages2 (splice.c:1460) -> -EFAULT.
  int vmsplice = EFAULT;
  // io_sqe_buffers_register -> io_pin_pages: pin_user_pages_fast(FOLL_WRITE|FOLL_LONGTERM)
  // (io_uring/memmap.c:78) -> -EFAULT.
  int io_uring = EFAULT;
  // mem_rw: access_remote_vm() moves 0 bytes -> copied = -EIO (fs/proc/base.c:915).
  int proc_mem = EIO;
  // generic_ptrace_peekdata / _pokedata: short ptrace_access_vm() -> -EIO (kernel/ptrace.c:1464, 1475).
  int ptrace_peek_poke = EIO;
  // faultin_page_range (FOLL_MADV_POPULATE): check_vma_flags() fails -> -EINVAL (gup.c:1390), which
  // madvise_populate() returns as "incompatible mapping" (madvise.c:988). Not EFAULT.
  int madv_populate = EINVAL;
};
constexpr Refusal kRefused{};

std::vector<const Backend*> GupBackendValues() {
  std::vector<const Backend*> out;
  for (const GupBackend& b : kGupBackends)
    out.push_back(b.name == kNoDirectMapBackendName ? GmemNoDirectMapBackend() : FindBackend(b.name));
  return out;
}

SyscallResult Captured(long ret, std::string call) { return SyscallResult::Capture(ret, errno, std::move(call)); }

// ---- a file that does real direct I/O ----

// A directory whose filesystem does direct I/O by pinning the user buffer. tmpfs accepts O_DIRECT
// but copies through the page cache (no GUP), so it is recognised and passed over: a real
// direct-I/O filesystem refuses a buffer misaligned to its block size (EINVAL); tmpfs accepts it.
struct DirectIoDir {
  std::string path;
  std::string why_none;
};

std::optional<int> OpenDirectTmpfile(const std::string& dir) {
  int fd = open(dir.c_str(), O_TMPFILE | O_RDWR | O_DIRECT | O_CLOEXEC, 0600);
  return fd >= 0 ? std::optional<int>(fd) : std::nullopt;
}

const DirectIoDir& FindDirectIoDir() {
  static const DirectIoDir found = [] {
    std::vector<std::string> candidates;
    if (const char* env = getenv("GMEMTEST_DIRECT_IO_DIR")) candidates.push_back(env);
    for (const char* d : {"/var/tmp", "/tmp", "/work", "/root"}) candidates.push_back(d);
    std::string tried;
    auto buf = MapAnonymous(2 * static_cast<size_t>(getpagesize()));
    if (!buf.ok()) return DirectIoDir{"", buf.error().message()};
    size_t page = static_cast<size_t>(getpagesize());
    for (const std::string& dir : candidates) {
      std::optional<int> fd = OpenDirectTmpfile(dir);
      if (!fd) {
        tried += fmt::format("; {}: O_TMPFILE|O_DIRECT: {}", dir, ErrnoName(errno));
        continue;
      }
      FileDescriptor owner(*fd);
      long aligned = pwrite(*fd, buf.value().bytes(), page, 0);
      long misaligned = pwrite(*fd, buf.value().bytes() + 1, page, 0);
      int err = errno;
      if (aligned == static_cast<long>(page) && misaligned < 0 && err == EINVAL) return DirectIoDir{dir, ""};
      tried += fmt::format("; {}: aligned O_DIRECT pwrite = {}, misaligned = {} ({})", dir, aligned, misaligned,
                           misaligned < 0 ? ErrnoName(err) : "accepted: buffered, not direct");
    }
    return DirectIoDir{"", "no directory does real direct I/O (set GMEMTEST_DIRECT_IO_DIR to one on ext4/xfs)" +
                               tried};
  }();
  return found;
}

// ---- a stopped, traced child that shares the mapping ----

// A forked child, stopped under ptrace (PTRACE_TRACEME + SIGSTOP), that inherited every mapping.
// Killed on destruction; dies with the test process (PR_SET_PDEATHSIG).
class TracedChild {
 public:
  static Result<TracedChild> Start() {
    pid_t pid = fork();
    if (pid < 0) return Error("fork()", errno);
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      ptrace(PTRACE_TRACEME, 0, nullptr, nullptr);
      raise(SIGSTOP);
      _exit(0);
    }
    TracedChild child(pid);
    // Bounded wait (never a hang): the child stops at once; give up after ~10 s.
    for (int i = 0; i < 1000; ++i) {
      int status = 0;
      pid_t r = waitpid(pid, &status, WNOHANG | WUNTRACED);
      if (r == pid && WIFSTOPPED(status)) return child;
      if (r == pid) return Error(fmt::format("child {} ended before stopping (status {:#x})", pid, status), 0);
      usleep(10000);
    }
    return Error(fmt::format("child {} did not stop under ptrace", pid), 0);
  }
  TracedChild(TracedChild&& other) noexcept : pid_(std::exchange(other.pid_, -1)) {}
  ~TracedChild() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  pid_t pid() const { return pid_; }

 private:
  explicit TracedChild(pid_t pid) : pid_(pid) {}
  pid_t pid_;
};

// ---- the family ----

class GupRefusal : public ::testing::TestWithParam<const Backend*> {
 protected:
  static constexpr uint8_t kMapped = 0x3c;   // what the mapping holds before each call
  static constexpr uint8_t kOutside = 0xc3;  // what the other side of each transfer holds

  void SetUp() override {
    REQUIRE_BACKEND(GetParam());
    const GupBackend* row = nullptr;
    for (const GupBackend& b : kGupBackends)
      if (b.name == GetParam()->name()) row = &b;
    ASSERT_NE(row, nullptr) << "no kGupBackends row for " << GetParam()->name();
    direct_map_ = row->direct_map;
    ASSERT_OK_AND_ASSIGN(file_, GetParam()->Create(page()));
    ASSERT_OK_AND_ASSIGN(map_, file_.Map(page()));
    ASSERT_TRUE(FillBytes(map_.bytes(), page(), kMapped));  // CPU access works on every backend
    ASSERT_OK_AND_ASSIGN(outside_, MapAnonymous(page()));
    std::memset(outside_.bytes(), kOutside, page());
  }

  static size_t page() { return static_cast<size_t>(getpagesize()); }
  void* addr() const { return map_.addr(); }

  // Opens a file doing real direct I/O, holding one page of kOutside; or says why there is none.
  std::optional<std::string> OpenDirectIoFile(FileDescriptor& fd) {
    const DirectIoDir& dir = FindDirectIoDir();
    if (dir.path.empty()) return dir.why_none;
    std::optional<int> raw = OpenDirectTmpfile(dir.path);
    if (!raw) {
      ADD_FAILURE() << "O_TMPFILE|O_DIRECT in " << dir.path << ": " << ErrnoName(errno);
      return "no direct-I/O file";
    }
    fd.reset(*raw);
    EXPECT_EQ(pwrite(fd.get(), outside_.addr(), page(), 0), static_cast<long>(page()));
    return std::nullopt;
  }

  // /proc/<child>/mem of a stopped child that shares the mapping (the child stays alive with it).
  bool OpenChildMem(std::optional<TracedChild>& child, FileDescriptor& mem) {
    auto started = TracedChild::Start();
    EXPECT_TRUE(started.ok()) << (started.ok() ? "" : started.error().message());
    if (!started.ok()) return false;
    child.emplace(std::move(started).value());
    mem.reset(open(fmt::format("/proc/{}/mem", child->pid()).c_str(), O_RDWR | O_CLOEXEC));
    EXPECT_TRUE(mem.valid()) << "open(/proc/" << child->pid() << "/mem): " << ErrnoName(errno);
    return mem.valid();
  }

  // A GUP user's outcome here: success where the pages are in the direct map, `refused` otherwise.
  ::testing::Matcher<SyscallResult> Gup(int refused) const {
    if (direct_map_) return SyscallSucceeds();
    return SyscallFailsWithErrno(refused);
  }
  // After a GUP user tried to fill the mapping: the data arrived, or the mapping is untouched.
  ::testing::AssertionResult MappingFilledByGup() const {
    return BytesAre(map_.bytes(), page(), direct_map_ ? kOutside : kMapped);
  }
  // After a GUP user tried to read the mapping into `outside_`: the data arrived, or nothing did.
  ::testing::AssertionResult OutsideFilledByGup() const {
    return BytesAre(outside_.bytes(), page(), direct_map_ ? kMapped : kOutside);
  }

  bool direct_map_ = true;
  BackendFile file_;
  Mapping map_;
  Mapping outside_;
};

// O_DIRECT read into the mapping pins it as the bio's target: refused without a direct map.
TEST_P(GupRefusal, ODirectReadIntoMapping) {
  FileDescriptor fd;
  if (auto why = OpenDirectIoFile(fd)) GTEST_SKIP() << *why;
  EXPECT_THAT(Captured(pread(fd.get(), addr(), page(), 0), "pread(O_DIRECT file, mapping)"), Gup(kRefused.odirect));
  EXPECT_TRUE(MappingFilledByGup());
}

// O_DIRECT write from the mapping pins it as the bio's source: refused without a direct map.
TEST_P(GupRefusal, ODirectWriteFromMapping) {
  FileDescriptor fd;
  if (auto why = OpenDirectIoFile(fd)) GTEST_SKIP() << *why;
  EXPECT_THAT(Captured(pwrite(fd.get(), addr(), page(), 0), "pwrite(O_DIRECT file, mapping)"), Gup(kRefused.odirect));
  ASSERT_EQ(pread(fd.get(), outside_.addr(), page(), 0), static_cast<long>(page()));
  EXPECT_TRUE(OutsideFilledByGup());
}

// process_vm_readv with the mapping as the remote side pins it: refused without a direct map.
TEST_P(GupRefusal, ProcessVmReadvFromMapping) {
  REQUIRE_FEATURE("process_vm_rw");
  iovec local{outside_.addr(), page()}, remote{addr(), page()};
  EXPECT_THAT(Captured(process_vm_readv(getpid(), &local, 1, &remote, 1, 0), "process_vm_readv(self, remote=mapping)"),
              Gup(kRefused.process_vm));
  EXPECT_TRUE(OutsideFilledByGup());
}

// process_vm_writev with the mapping as the remote side pins it: refused without a direct map.
TEST_P(GupRefusal, ProcessVmWritevIntoMapping) {
  REQUIRE_FEATURE("process_vm_rw");
  iovec local{outside_.addr(), page()}, remote{addr(), page()};
  EXPECT_THAT(Captured(process_vm_writev(getpid(), &local, 1, &remote, 1, 0), "process_vm_writev(self, remote=mapping)"),
              Gup(kRefused.process_vm));
  EXPECT_TRUE(MappingFilledByGup());
}

// process_vm_readv into the mapping as the LOCAL side copies with copy_to_user: works everywhere.
TEST_P(GupRefusal, ProcessVmReadvIntoLocalMappingWorks) {
  REQUIRE_FEATURE("process_vm_rw");
  iovec local{addr(), page()}, remote{outside_.addr(), page()};
  EXPECT_THAT(Captured(process_vm_readv(getpid(), &local, 1, &remote, 1, 0), "process_vm_readv(self, local=mapping)"),
              SyscallSucceedsWithValue(page()));
  EXPECT_TRUE(BytesAre(map_.bytes(), page(), kOutside));
}

// vmsplice of the mapping into a pipe takes references to its pages: refused without a direct map.
TEST_P(GupRefusal, VmspliceMappingIntoPipe) {
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
  FileDescriptor rd(p[0]), wr(p[1]);
  iovec iov{addr(), page()};
  EXPECT_THAT(Captured(vmsplice(wr.get(), &iov, 1, SPLICE_F_NONBLOCK), "vmsplice(pipe, mapping)"),
              Gup(kRefused.vmsplice));
  long got = read(rd.get(), outside_.addr(), page());
  EXPECT_EQ(got, direct_map_ ? static_cast<long>(page()) : -1L) << ErrnoName(errno);
  EXPECT_TRUE(OutsideFilledByGup());
}

// vmsplice from a pipe into the mapping copies with copy_to_user: works everywhere.
TEST_P(GupRefusal, VmspliceFromPipeIntoMappingWorks) {
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
  FileDescriptor rd(p[0]), wr(p[1]);
  ASSERT_EQ(write(wr.get(), outside_.addr(), page()), static_cast<long>(page()));
  iovec iov{addr(), page()};
  EXPECT_THAT(Captured(vmsplice(rd.get(), &iov, 1, SPLICE_F_NONBLOCK), "vmsplice(pipe read end, mapping)"),
              SyscallSucceedsWithValue(page()));
  EXPECT_TRUE(BytesAre(map_.bytes(), page(), kOutside));
}

// io_uring fixed-buffer registration pins the mapping long-term: refused without a direct map.
TEST_P(GupRefusal, IoUringRegisterBuffers) {
  REQUIRE_FEATURE("io_uring");
  io_uring_params params{};
  long ring = RawSyscall(425 /* io_uring_setup */, 1, reinterpret_cast<long>(&params));
  ASSERT_GE(ring, 0) << "io_uring_setup(1): " << ErrnoName(errno);
  FileDescriptor ring_fd(static_cast<int>(ring));
  iovec iov{addr(), page()};
  SyscallResult r = Captured(RawSyscall(427 /* io_uring_register */, ring, IORING_REGISTER_BUFFERS,
                                        reinterpret_cast<long>(&iov), 1),
                             "io_uring_register(IORING_REGISTER_BUFFERS, mapping)");
  EXPECT_THAT(r, Gup(kRefused.io_uring));
  if (r.ok()) RawSyscall(427, ring, IORING_UNREGISTER_BUFFERS, 0, 0);
}

// Reading the mapping through /proc/<pid>/mem of a child that shares it: refused (EIO) without a
// direct map.
TEST_P(GupRefusal, ProcPidMemRead) {
  std::optional<TracedChild> child;
  FileDescriptor mem;
  if (!OpenChildMem(child, mem)) return;
  EXPECT_THAT(Captured(pread(mem.get(), outside_.addr(), page(), static_cast<off_t>(map_.start())),
                       "pread(/proc/child/mem at the mapping)"),
              Gup(kRefused.proc_mem));
  EXPECT_TRUE(OutsideFilledByGup());
}

// Writing the mapping through /proc/<pid>/mem of a child: refused (EIO) without a direct map.
TEST_P(GupRefusal, ProcPidMemWrite) {
  std::optional<TracedChild> child;
  FileDescriptor mem;
  if (!OpenChildMem(child, mem)) return;
  EXPECT_THAT(Captured(pwrite(mem.get(), outside_.addr(), page(), static_cast<off_t>(map_.start())),
                       "pwrite(/proc/child/mem at the mapping)"),
              Gup(kRefused.proc_mem));
  // MAP_SHARED: the child's write is visible here.
  EXPECT_TRUE(MappingFilledByGup());
}

// PTRACE_PEEKDATA and PTRACE_POKEDATA of the mapping in a traced child: refused (EIO) without a
// direct map.
TEST_P(GupRefusal, PtracePeekAndPokeData) {
  ASSERT_OK_AND_ASSIGN(TracedChild child, TracedChild::Start());
  errno = 0;
  long word = ptrace(PTRACE_PEEKDATA, child.pid(), addr(), nullptr);
  SyscallResult peek = SyscallResult::Capture(errno ? -1 : 0, errno, "ptrace(PTRACE_PEEKDATA, child, mapping)");
  EXPECT_THAT(peek, Gup(kRefused.ptrace_peek_poke));
  if (peek.ok()) {
    EXPECT_EQ(static_cast<uint8_t>(word), kMapped);
  }
  long poke = ptrace(PTRACE_POKEDATA, child.pid(), addr(), reinterpret_cast<void*>(static_cast<uintptr_t>(0x0101010101010101ULL * kOutside)));
  EXPECT_THAT(Captured(poke, "ptrace(PTRACE_POKEDATA, child, mapping)"), Gup(kRefused.ptrace_peek_poke));
  EXPECT_TRUE(BytesAre(map_.bytes(), sizeof(long), direct_map_ ? kOutside : kMapped));
}

// MADV_POPULATE_READ / _WRITE fault pages in through GUP: refused without a direct map.
TEST_P(GupRefusal, MadvisePopulate) {
  EXPECT_THAT(RawMadvise(addr(), page(), MADV_POPULATE_READ), Gup(kRefused.madv_populate));
  EXPECT_THAT(RawMadvise(addr(), page(), MADV_POPULATE_WRITE), Gup(kRefused.madv_populate));
}

// The CPU reads and writes the mapping on every backend.
TEST_P(GupRefusal, CpuAccessWorks) {
  EXPECT_TRUE(TouchSucceeds(addr(), Access::kRead));
  EXPECT_TRUE(TouchSucceeds(addr(), Access::kWrite));
  EXPECT_TRUE(BytesAre(map_.bytes() + 1, page() - 1, kMapped));
}

// Buffered I/O copies through the user mapping (copy_{from,to}_user), so it works on every backend.
TEST_P(GupRefusal, BufferedIoWorks) {
  FileDescriptor file(static_cast<int>(RawSyscall(SYS_memfd_create, reinterpret_cast<long>("gmemtest-buffered"),
                                                  MFD_CLOEXEC)));
  ASSERT_TRUE(file.valid()) << ErrnoName(errno);
  EXPECT_THAT(Captured(pwrite(file.get(), addr(), page(), 0), "pwrite(memfd, mapping)"),
              SyscallSucceedsWithValue(page()));
  ASSERT_EQ(pwrite(file.get(), outside_.addr(), page(), page()), static_cast<long>(page()));
  EXPECT_THAT(Captured(pread(file.get(), addr(), page(), page()), "pread(memfd, mapping)"),
              SyscallSucceedsWithValue(page()));
  EXPECT_TRUE(BytesAre(map_.bytes(), page(), kOutside));
}

INSTANTIATE_TEST_SUITE_P(, GupRefusal, ::testing::ValuesIn(GupBackendValues()), BackendParamName);

}  // namespace
}  // namespace gmem
