// GUP refusal on memory that is not in the kernel's direct map.
//
// Every kernel path that reaches user memory through get_user_pages()/pin_user_pages() must refuse
// a mapping whose pages the kernel cannot address (mm/gup.c check_vma_flags(): vma_is_secretmem()
// -> -EFAULT, and gup_fast_folio_allowed() sends GUP-fast to that slow path), while the paths that
// copy through the user mapping (copy_{to,from}_user, plain CPU access) keep working.
//
// Backends, by how their pages answer GUP (GupKind):
// - in the direct map: memfd and mainline guest_memfd (MMAP|INIT_SHARED), the controls, where
//   every call succeeds and moves the data: each case can pass and fail;
// - outside the direct map: memfd_secret (mainline, the calibration) and guest_memfd created with
//   the direct-map removal series' flag (GUEST_MEMFD_FLAG_NO_DIRECT_MAP|MMAP|INIT_SHARED;
//   gmem-no-direct-map-v12 swaps vma_is_secretmem() for vma_has_no_direct_map() in exactly those
//   checks, so it must answer like memfd_secret): GUP refused, CPU access works;
// - private guest_memfd (MMAP without INIT_SHARED, on each VM type that offers it): mmap works but
//   no page can be faulted in (kvm_gmem_fault_user_mapping() -> VM_FAULT_SIGBUS), so every GUP
//   user and every copy through the mapping fails.
//
// The refusal errno of each path is in kRefusedNoDirectMap / kRefusedPrivate below, with where the
// source decides it. Every GUP call runs in a child under a time bound (BoundedCall): a GUP user
// that blocks on a refused page fails its case instead of hanging the suite.

#include <fcntl.h>
#include <gtest/gtest.h>
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
#include "fixtures/bounded_call.h"
#include "fixtures/bytes.h"
#include "fixtures/errno_name.h"
#include "fixtures/fault.h"
#include "fixtures/gup_test.h"
#include "fixtures/kvm.h"
#include "fixtures/mapping.h"
#include "fixtures/no_direct_map.h"
#include "fixtures/require.h"
#include "fixtures/series.h"
#include "fixtures/syscall_matchers.h"
#include "fixtures/uring.h"
#include "fixtures/uapi/mm_mainline.h"

namespace gmem {
namespace {

// ---- the backends and what each answers ----

enum class GupKind {
  kDirectMap,    // faultable, in the direct map: every GUP user works
  kNoDirectMap,  // faultable, outside the direct map: GUP refused, CPU access works
  kPrivate,      // private guest_memfd: nothing can fault a page in
};

struct GupBackend {
  std::string name;
  GupKind kind;
  bool splice_read;  // the file has ->splice_read (shmem does; secretmem and guest_memfd do not)
};
const GupBackend kGupBackends[] = {
    {"memfd", GupKind::kDirectMap, true},
    {"guest_memfd", GupKind::kDirectMap, false},
    {"memfd_secret", GupKind::kNoDirectMap, false},
    {"guest_memfd_no_direct_map", GupKind::kNoDirectMap, false},
    {"guest_memfd_private", GupKind::kPrivate, false},
    {"guest_memfd_private_sw_protected", GupKind::kPrivate, false},
};

// The errno each GUP user gives, per path.
struct Refusal {
  int odirect;
  int process_vm;
  int vmsplice;
  int io_uring;
  int proc_mem;
  int ptrace_peek_poke;
  int madv_populate;
};

// Memory outside the direct map: measured on 6.18 with memfd_secret, and what the Linux 7.3 source
// gives (file:line of 7.3).
constexpr Refusal kRefusedNoDirectMap{
    // iomap/blockdev direct I/O -> bio_iov_iter_get_pages -> pin_user_pages_fast: GUP-fast refuses
    // secretmem folios (gup_fast_folio_allowed), the slow path check_vma_flags() -> -EFAULT (gup.c:1219).
    .odirect = EFAULT,
    // process_vm_rw_single_vec: pin_user_pages_remote() <= 0 -> -EFAULT (process_vm_access.c:111).
    .process_vm = EFAULT,
    // vmsplice_to_pipe -> iter_to_pipe -> iov_iter_get_pages2 (splice.c:1460) -> -EFAULT.
    .vmsplice = EFAULT,
    // io_sqe_buffers_register -> io_pin_pages: pin_user_pages_fast(FOLL_WRITE|FOLL_LONGTERM)
    // (io_uring/memmap.c:78) -> -EFAULT.
    .io_uring = EFAULT,
    // mem_rw: access_remote_vm() moves 0 bytes -> copied = -EIO (fs/proc/base.c:915).
    .proc_mem = EIO,
    // generic_ptrace_peekdata / _pokedata: short ptrace_access_vm() -> -EIO (kernel/ptrace.c:1464, 1475).
    .ptrace_peek_poke = EIO,
    // faultin_page_range (FOLL_MADV_POPULATE): check_vma_flags() fails -> -EINVAL (gup.c:1390), which
    // madvise_populate() returns as "incompatible mapping" (madvise.c:988). Not EFAULT.
    .madv_populate = EINVAL,
};

// Private guest_memfd: check_vma_flags() lets the VMA through (it is not secretmem), the fault
// handler answers VM_FAULT_SIGBUS (virt/kvm/guest_memfd.c kvm_gmem_fault_user_mapping: no
// INIT_SHARED), which faultin_page() turns into -EFAULT (vm_fault_to_errno). Paths that report
// a short copy keep their own errno.
// madvise_populate() passes that -EFAULT through (SIGBUS/SIGSEGV, madvise.c:992), unlike the
// -EINVAL above. Measured on 6.18 and on 7.3.
constexpr Refusal kRefusedPrivate{.odirect = EFAULT, .process_vm = EFAULT, .vmsplice = EFAULT, .io_uring = EFAULT,
                                  .proc_mem = EIO, .ptrace_peek_poke = EIO, .madv_populate = EFAULT};

// A guest_memfd backend on a VM type whose KVM_CAP_GUEST_MEMFD_FLAGS (probed per VM type as
// gmem.flags.<TYPE>) must list `flag`.
class AdvertisedFlagBackend final : public Backend {
 public:
  AdvertisedFlagBackend(std::string name, unsigned long vm_type, uint64_t flags)
      : inner_(MakeGuestMemfdBackend(name, vm_type, flags, {"vm_type." + VmTypeShortName(vm_type)})),
        mask_feature_("gmem.flags." + VmTypeShortName(vm_type)),
        flags_(flags) {}
  std::string name() const override { return inner_->name(); }
  size_t page_size() const override { return inner_->page_size(); }
  std::optional<Features::Missing> Unavailable(const Features& features) const override {
    if (auto why = inner_->Unavailable(features)) return why;
    if (auto why = features.Why(mask_feature_)) return why;
    uint64_t advertised = static_cast<uint64_t>(features.Value(mask_feature_));
    if ((advertised & flags_) != flags_)
      return Features::Missing{false, fmt::format("{} = {:#x} lacks {:#x}", mask_feature_, advertised, flags_)};
    return std::nullopt;
  }
  Result<BackendFile> Create(size_t size) const override { return inner_->Create(size); }

 private:
  std::unique_ptr<Backend> inner_;
  std::string mask_feature_;
  uint64_t flags_;
};

// guest_memfd whose pages are private from creation: MMAP without INIT_SHARED.
const Backend* GmemPrivateBackend() {
  static const auto* backend =
      MakeGuestMemfdBackend("guest_memfd_private", KVM_X86_DEFAULT_VM, GUEST_MEMFD_FLAG_MMAP, {"gmem.flag.MMAP"})
          .release();
  return backend;
}
const Backend* GmemPrivateSwProtectedBackend() {
  static const auto* backend =
      new AdvertisedFlagBackend("guest_memfd_private_sw_protected", KVM_X86_SW_PROTECTED_VM, GUEST_MEMFD_FLAG_MMAP);
  return backend;
}

const Backend* GupBackendByName(const std::string& name) {
  if (name == kNoDirectMapBackendName) return GmemNoDirectMapBackend();
  if (name == "guest_memfd_private") return GmemPrivateBackend();
  if (name == "guest_memfd_private_sw_protected") return GmemPrivateSwProtectedBackend();
  return FindBackend(name);
}

// The family's backends whose kind is in `kinds`.
std::vector<const Backend*> GupBackendValues(std::initializer_list<GupKind> kinds) {
  std::vector<const Backend*> out;
  for (const GupBackend& b : kGupBackends)
    for (GupKind kind : kinds)
      if (b.kind == kind) out.push_back(GupBackendByName(b.name));
  return out;
}

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
    const char* env = getenv("GMEMTEST_DIRECT_IO_DIR");
    if (env) candidates.push_back(env);
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
    return DirectIoDir{"", fmt::format("no directory does real direct I/O (GMEMTEST_DIRECT_IO_DIR {}; set it to a "
                                       "directory on ext4/xfs)",
                                       env ? "names " + std::string(env) : "is unset") +
                               tried};
  }();
  return found;
}

// ---- a stopped, traced child that shares the mapping ----

// A forked child, stopped under ptrace (PTRACE_TRACEME + SIGSTOP), that inherited every mapping.
// Killed on destruction; dies with its parent (PR_SET_PDEATHSIG).
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
    row_ = row;
    ASSERT_OK_AND_ASSIGN(file_, GetParam()->Create(page()));
    ASSERT_OK_AND_ASSIGN(map_, file_.Map(page()));
    if (kind() != GupKind::kPrivate) ASSERT_TRUE(FillBytes(map_.bytes(), page(), kMapped));
    // Shared, so that what a bounded child writes here is seen by the case.
    ASSERT_OK_AND_ASSIGN(outside_, Map(page(), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1));
    std::memset(outside_.bytes(), kOutside, page());
  }

  static size_t page() { return static_cast<size_t>(getpagesize()); }
  void* addr() const { return map_.addr(); }
  GupKind kind() const { return row_->kind; }

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

  // A memfd holding one page of kOutside (a buffered file the GUP users read from / write to).
  FileDescriptor OutsideFile() {
    FileDescriptor file(static_cast<int>(RawSyscall(SYS_memfd_create, reinterpret_cast<long>("gmemtest-outside"),
                                                    MFD_CLOEXEC)));
    EXPECT_TRUE(file.valid()) << "memfd_create: " << ErrnoName(errno);
    EXPECT_EQ(pwrite(file.get(), outside_.addr(), page(), 0), static_cast<long>(page()));
    return file;
  }

  // process_vm_readv (`write` false) or _writev of one page between the mapping and `outside_`,
  // the mapping as the local or the remote side, under a time bound.
  SyscallResult ProcessVm(bool write, bool mapping_local) {
    iovec mapping{addr(), page()}, other{outside_.addr(), page()};
    const iovec* local = mapping_local ? &mapping : &other;
    const iovec* remote = mapping_local ? &other : &mapping;
    return BoundedCall(fmt::format("process_vm_{}(self, {}=mapping)", write ? "writev" : "readv",
                                   mapping_local ? "local" : "remote"),
                       [&] {
                         return write ? process_vm_writev(getpid(), local, 1, remote, 1, 0)
                                      : process_vm_readv(getpid(), local, 1, remote, 1, 0);
                       });
  }

  // A non-blocking pipe, optionally holding one page of kOutside.
  struct Pipe {
    FileDescriptor rd, wr;
  };
  Pipe MakePipe(bool filled) {
    int p[2];
    EXPECT_EQ(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0) << ErrnoName(errno);
    Pipe pipe{FileDescriptor(p[0]), FileDescriptor(p[1])};
    if (filled) EXPECT_EQ(write(pipe.wr.get(), outside_.addr(), page()), static_cast<long>(page()));
    return pipe;
  }

  // In a bounded child: a ring registers the mapping as fixed buffer 0, then IORING_OP_READ_FIXED
  // from `fd` into it (or WRITE_FIXED from it to `fd`); the registration's failure, or the op's.
  SyscallResult IoUringFixed(bool write, int fd) {
    return BoundedCall(fmt::format("IORING_REGISTER_BUFFERS(mapping) + IORING_OP_{}_FIXED(fd {}, mapping)",
                                   write ? "WRITE" : "READ", fd),
                       [&]() -> long {
                         auto ring = Uring::Create();
                         if (!ring.ok()) return errno = EPROTO, -1;
                         SyscallResult r = ring.value().RegisterBuffer(addr(), page());
                         if (r.ok())
                           r = write ? ring.value().WriteFixed(fd, addr(), page(), 0, 0)
                                     : ring.value().ReadFixed(fd, addr(), page(), 0, 0);
                         return r.ok() ? r.ret : (errno = r.err, -1);
                       });
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

  // A GUP user's outcome on this backend: success in the direct map, else the path's refusal.
  ::testing::Matcher<SyscallResult> Gup(int Refusal::*path) const {
    switch (kind()) {
      case GupKind::kDirectMap: return SyscallSucceeds();
      case GupKind::kNoDirectMap: return SyscallFailsWithErrno(kRefusedNoDirectMap.*path);
      case GupKind::kPrivate: break;
    }
    return SyscallFailsWithErrno(kRefusedPrivate.*path);
  }
  // After a GUP user tried to fill the mapping: the data arrived, or the mapping is untouched (a
  // private mapping still has no page: touching it still raises SIGBUS).
  ::testing::AssertionResult MappingFilledByGup() const {
    if (kind() == GupKind::kPrivate) return TouchRaises(addr(), Access::kRead, SIGBUS);
    return BytesAre(map_.bytes(), page(), kind() == GupKind::kDirectMap ? kOutside : kMapped);
  }
  // After a GUP user tried to read the mapping into `outside_`: the data arrived, or nothing did.
  ::testing::AssertionResult OutsideFilledByGup() const {
    return BytesAre(outside_.bytes(), page(), kind() == GupKind::kDirectMap ? kMapped : kOutside);
  }

  const GupBackend* row_ = nullptr;
  BackendFile file_;
  Mapping map_;
  Mapping outside_;
};

// O_DIRECT read into the mapping pins it as the bio's target: refused outside the direct map.
TEST_P(GupRefusal, ODirectReadIntoMapping) {
  FileDescriptor fd;
  if (auto why = OpenDirectIoFile(fd)) GTEST_SKIP() << *why;
  EXPECT_THAT(BoundedCall("pread(O_DIRECT file, mapping)", [&] { return pread(fd.get(), addr(), page(), 0); }),
              Gup(&Refusal::odirect));
  EXPECT_TRUE(MappingFilledByGup());
}

// O_DIRECT write from the mapping pins it as the bio's source: refused outside the direct map.
TEST_P(GupRefusal, ODirectWriteFromMapping) {
  FileDescriptor fd;
  if (auto why = OpenDirectIoFile(fd)) GTEST_SKIP() << *why;
  EXPECT_THAT(BoundedCall("pwrite(O_DIRECT file, mapping)", [&] { return pwrite(fd.get(), addr(), page(), 0); }),
              Gup(&Refusal::odirect));
  ASSERT_EQ(pread(fd.get(), outside_.addr(), page(), 0), static_cast<long>(page()));
  EXPECT_TRUE(OutsideFilledByGup());
}

// process_vm_readv with the mapping as the remote side pins it: refused outside the direct map.
TEST_P(GupRefusal, ProcessVmReadvFromMapping) {
  REQUIRE_FEATURE("process_vm_rw");
  EXPECT_THAT(ProcessVm(/*write=*/false, /*mapping_local=*/false),
              Gup(&Refusal::process_vm));
  EXPECT_TRUE(OutsideFilledByGup());
}

// process_vm_writev with the mapping as the remote side pins it: refused outside the direct map.
TEST_P(GupRefusal, ProcessVmWritevIntoMapping) {
  REQUIRE_FEATURE("process_vm_rw");
  EXPECT_THAT(ProcessVm(/*write=*/true, /*mapping_local=*/false),
              Gup(&Refusal::process_vm));
  EXPECT_TRUE(MappingFilledByGup());
}

// vmsplice of the mapping into a pipe takes references to its pages: refused outside the direct map.
TEST_P(GupRefusal, VmspliceMappingIntoPipe) {
  Pipe pipe = MakePipe(/*filled=*/false);
  iovec iov{addr(), page()};
  EXPECT_THAT(BoundedCall("vmsplice(pipe, mapping)", [&] { return vmsplice(pipe.wr.get(), &iov, 1, SPLICE_F_NONBLOCK); }),
              Gup(&Refusal::vmsplice));
  long got = read(pipe.rd.get(), outside_.addr(), page());
  EXPECT_EQ(got, kind() == GupKind::kDirectMap ? static_cast<long>(page()) : -1L) << ErrnoName(errno);
  EXPECT_TRUE(OutsideFilledByGup());
}

// splice() of the mapping's file into a pipe needs the file's ->splice_read: shmem has it (the
// page moves), secretmem and guest_memfd have none (EINVAL), whatever the direct map.
TEST_P(GupRefusal, SpliceMappedFileIntoPipe) {
  Pipe pipe = MakePipe(/*filled=*/false);
  loff_t off = 0;
  SyscallResult r = BoundedCall("splice(backend file, off 0, pipe, one page)", [&] {
    return splice(file_.fd.get(), &off, pipe.wr.get(), nullptr, page(), SPLICE_F_NONBLOCK);
  });
  if (!row_->splice_read) {
    EXPECT_THAT(r, SyscallFailsWithErrno(EINVAL));
    return;
  }
  EXPECT_THAT(r, SyscallSucceedsWithValue(page()));
  EXPECT_EQ(read(pipe.rd.get(), outside_.addr(), page()), static_cast<long>(page())) << ErrnoName(errno);
  EXPECT_TRUE(BytesAre(outside_.bytes(), page(), kMapped));
}

// io_uring fixed-buffer registration pins the mapping long-term (FOLL_LONGTERM): refused outside
// the direct map.
TEST_P(GupRefusal, IoUringRegisterBuffers) {
  REQUIRE_FEATURE("io_uring");
  EXPECT_THAT(BoundedCall("io_uring_register(IORING_REGISTER_BUFFERS, mapping)",
                          [&]() -> long {
                            auto ring = Uring::Create();
                            if (!ring.ok()) return errno = EPROTO, -1;
                            SyscallResult r = ring.value().RegisterBuffer(addr(), page());
                            if (r.ok()) ring.value().UnregisterBuffers();
                            return r.ok() ? r.ret : (errno = r.err, -1);
                          }),
              Gup(&Refusal::io_uring));
}

// IORING_OP_READ_FIXED into the mapping registered as a fixed buffer: the data arrives through the
// long-term pin; where registration is refused there is no buffer to read into.
TEST_P(GupRefusal, IoUringReadFixedIntoMapping) {
  REQUIRE_FEATURE("io_uring");
  FileDescriptor source = OutsideFile();
  EXPECT_THAT(IoUringFixed(/*write=*/false, source.get()),
              kind() == GupKind::kDirectMap ? SyscallSucceedsWithValue(page()) : Gup(&Refusal::io_uring));
  EXPECT_TRUE(MappingFilledByGup());
}

// IORING_OP_WRITE_FIXED from the mapping registered as a fixed buffer into a file.
TEST_P(GupRefusal, IoUringWriteFixedFromMapping) {
  REQUIRE_FEATURE("io_uring");
  FileDescriptor target = OutsideFile();
  EXPECT_THAT(IoUringFixed(/*write=*/true, target.get()),
              kind() == GupKind::kDirectMap ? SyscallSucceedsWithValue(page()) : Gup(&Refusal::io_uring));
  ASSERT_EQ(pread(target.get(), outside_.addr(), page(), 0), static_cast<long>(page()));
  EXPECT_TRUE(OutsideFilledByGup());
}

// Reading the mapping through /proc/<pid>/mem of a child that shares it: refused (EIO) outside
// the direct map.
TEST_P(GupRefusal, ProcPidMemRead) {
  std::optional<TracedChild> child;
  FileDescriptor mem;
  if (!OpenChildMem(child, mem)) return;
  EXPECT_THAT(BoundedCall("pread(/proc/child/mem at the mapping)",
                          [&] { return pread(mem.get(), outside_.addr(), page(), static_cast<off_t>(map_.start())); }),
              Gup(&Refusal::proc_mem));
  EXPECT_TRUE(OutsideFilledByGup());
}

// Writing the mapping through /proc/<pid>/mem of a child: refused (EIO) outside the direct map.
TEST_P(GupRefusal, ProcPidMemWrite) {
  std::optional<TracedChild> child;
  FileDescriptor mem;
  if (!OpenChildMem(child, mem)) return;
  EXPECT_THAT(BoundedCall("pwrite(/proc/child/mem at the mapping)",
                          [&] { return pwrite(mem.get(), outside_.addr(), page(), static_cast<off_t>(map_.start())); }),
              Gup(&Refusal::proc_mem));
  // MAP_SHARED: the child's write is visible here.
  EXPECT_TRUE(MappingFilledByGup());
}

// PTRACE_PEEKDATA and PTRACE_POKEDATA of the mapping in a traced child forked from a bounded
// child (tracer and tracee both inherited the mapping): refused (EIO) outside the direct map.
TEST_P(GupRefusal, PtracePeekAndPokeData) {
  const long poke_word = static_cast<long>(0x0101010101010101ULL * kOutside);
  // The tracer answers the peeked word's low byte (>= 0) or -1 with errno.
  auto as_tracer = [&](bool poke) -> long {
    auto child = TracedChild::Start();
    if (!child.ok()) return errno = ECHILD, -1;
    errno = 0;
    if (poke) return ptrace(PTRACE_POKEDATA, child.value().pid(), addr(), reinterpret_cast<void*>(poke_word));
    long word = ptrace(PTRACE_PEEKDATA, child.value().pid(), addr(), nullptr);
    return errno ? -1 : (word & 0xff);
  };
  SyscallResult peek = BoundedCall("ptrace(PTRACE_PEEKDATA, traced child, mapping)", [&] { return as_tracer(false); });
  EXPECT_THAT(peek, kind() == GupKind::kDirectMap ? SyscallSucceedsWithValue(kMapped) : Gup(&Refusal::ptrace_peek_poke));
  EXPECT_THAT(BoundedCall("ptrace(PTRACE_POKEDATA, traced child, mapping)", [&] { return as_tracer(true); }),
              Gup(&Refusal::ptrace_peek_poke));
  if (kind() == GupKind::kPrivate)
    EXPECT_TRUE(TouchRaises(addr(), Access::kRead, SIGBUS));
  else
    EXPECT_TRUE(BytesAre(map_.bytes(), sizeof(long), kind() == GupKind::kDirectMap ? kOutside : kMapped));
}

// MADV_POPULATE_READ / _WRITE fault pages in through GUP: refused outside the direct map (EINVAL)
// and on private memory (EFAULT).
TEST_P(GupRefusal, MadvisePopulate) {
  EXPECT_THAT(BoundedCall("madvise(mapping, MADV_POPULATE_READ)",
                          [&] { return static_cast<long>(madvise(addr(), page(), MADV_POPULATE_READ)); }),
              Gup(&Refusal::madv_populate));
  EXPECT_THAT(BoundedCall("madvise(mapping, MADV_POPULATE_WRITE)",
                          [&] { return static_cast<long>(madvise(addr(), page(), MADV_POPULATE_WRITE)); }),
              Gup(&Refusal::madv_populate));
}

// get_user_pages_fast() (gup_test GUP_FAST_BENCHMARK) gets the mapping's page only where it is
// in the direct map; the ioctl itself succeeds and reports how far the GUP calls got.
TEST_P(GupRefusal, GupTestGetUserPagesFast) {
  REQUIRE_FEATURE("gup_test");
  SyscallResult r = BoundedCall("ioctl(gup_test, GUP_FAST_BENCHMARK, mapping)", [&]() -> long {
    GupTestOutcome o = GupTestFast(kGupFastBenchmark, addr(), page());
    if (!o.call.ok()) return errno = o.call.err, -1;
    return static_cast<long>(o.bytes_got);
  });
  EXPECT_THAT(r, SyscallSucceedsWithValue(kind() == GupKind::kDirectMap ? page() : 0))
      << "(the value is how many bytes get_user_pages_fast() got)";
}

// pin_user_pages_fast() (gup_test PIN_FAST_BENCHMARK): FOLL_PIN, the same answer.
TEST_P(GupRefusal, GupTestPinUserPagesFast) {
  REQUIRE_FEATURE("gup_test");
  SyscallResult r = BoundedCall("ioctl(gup_test, PIN_FAST_BENCHMARK, mapping)", [&]() -> long {
    GupTestOutcome o = GupTestFast(kPinFastBenchmark, addr(), page());
    if (!o.call.ok()) return errno = o.call.err, -1;
    return static_cast<long>(o.bytes_got);
  });
  EXPECT_THAT(r, SyscallSucceedsWithValue(kind() == GupKind::kDirectMap ? page() : 0))
      << "(the value is how many bytes pin_user_pages_fast() pinned)";
}

INSTANTIATE_TEST_SUITE_P(, GupRefusal,
                         ::testing::ValuesIn(GupBackendValues({GupKind::kDirectMap, GupKind::kNoDirectMap,
                                                               GupKind::kPrivate})),
                         BackendParamName);

// ---- paths that copy through the user mapping instead of GUP ----

// copy_{to,from}_user and plain CPU access: they work wherever the CPU can fault the page in,
// direct map or not.
class GupCopyPaths : public GupRefusal {};

// The CPU reads and writes the mapping.
TEST_P(GupCopyPaths, CpuAccessWorks) {
  EXPECT_TRUE(TouchSucceeds(addr(), Access::kRead));
  EXPECT_TRUE(TouchSucceeds(addr(), Access::kWrite));
  EXPECT_TRUE(BytesAre(map_.bytes() + 1, page() - 1, kMapped));
}

// Buffered I/O copies through the user mapping (copy_{from,to}_user).
TEST_P(GupCopyPaths, BufferedIoWorks) {
  FileDescriptor file = OutsideFile();
  EXPECT_THAT(SyscallResult::Capture(pwrite(file.get(), addr(), page(), page()), errno, "pwrite(memfd, mapping)"),
              SyscallSucceedsWithValue(page()));
  EXPECT_THAT(SyscallResult::Capture(pread(file.get(), addr(), page(), 0), errno, "pread(memfd, mapping)"),
              SyscallSucceedsWithValue(page()));
  EXPECT_TRUE(BytesAre(map_.bytes(), page(), kOutside));
  ASSERT_EQ(pread(file.get(), outside_.addr(), page(), page()), static_cast<long>(page()));
  EXPECT_TRUE(BytesAre(outside_.bytes(), page(), kMapped));
}

// process_vm_readv into the mapping as the LOCAL side copies with copy_to_user.
TEST_P(GupCopyPaths, ProcessVmReadvIntoLocalMappingWorks) {
  REQUIRE_FEATURE("process_vm_rw");
  EXPECT_THAT(ProcessVm(/*write=*/false, /*mapping_local=*/true),
              SyscallSucceedsWithValue(page()));
  EXPECT_TRUE(BytesAre(map_.bytes(), page(), kOutside));
}

// process_vm_writev from the mapping as the LOCAL side copies with copy_from_user.
TEST_P(GupCopyPaths, ProcessVmWritevFromLocalMappingWorks) {
  REQUIRE_FEATURE("process_vm_rw");
  EXPECT_THAT(ProcessVm(/*write=*/true, /*mapping_local=*/true),
              SyscallSucceedsWithValue(page()));
  EXPECT_TRUE(BytesAre(outside_.bytes(), page(), kMapped));
}

// vmsplice from a pipe into the mapping copies with copy_to_user.
TEST_P(GupCopyPaths, VmspliceFromPipeIntoMappingWorks) {
  Pipe pipe = MakePipe(/*filled=*/true);
  iovec iov{addr(), page()};
  EXPECT_THAT(BoundedCall("vmsplice(pipe read end, mapping)",
                          [&] { return vmsplice(pipe.rd.get(), &iov, 1, SPLICE_F_NONBLOCK); }),
              SyscallSucceedsWithValue(page()));
  EXPECT_TRUE(BytesAre(map_.bytes(), page(), kOutside));
}

INSTANTIATE_TEST_SUITE_P(, GupCopyPaths,
                         ::testing::ValuesIn(GupBackendValues({GupKind::kDirectMap, GupKind::kNoDirectMap})),
                         BackendParamName);

// ---- the same copies on private guest_memfd: no page to copy to or from ----

class GupPrivateCopyPaths : public GupRefusal {};

// The CPU's first touch of a private page raises SIGBUS, read or write.
TEST_P(GupPrivateCopyPaths, CpuAccessRaisesSigbus) {
  EXPECT_TRUE(TouchRaises(addr(), Access::kRead, SIGBUS));
  EXPECT_TRUE(TouchRaises(addr(), Access::kWrite, SIGBUS));
}

// Buffered I/O from and into the mapping fails in copy_{from,to}_user: EFAULT, nothing moved.
TEST_P(GupPrivateCopyPaths, BufferedIoFaults) {
  FileDescriptor file = OutsideFile();
  EXPECT_THAT(BoundedCall("pwrite(memfd, mapping)", [&] { return pwrite(file.get(), addr(), page(), 0); }),
              SyscallFailsWithErrno(EFAULT));
  EXPECT_THAT(BoundedCall("pread(memfd, mapping)", [&] { return pread(file.get(), addr(), page(), 0); }),
              SyscallFailsWithErrno(EFAULT));
  ASSERT_EQ(pread(file.get(), outside_.addr(), page(), 0), static_cast<long>(page()));
  EXPECT_TRUE(BytesAre(outside_.bytes(), page(), kOutside));
  EXPECT_TRUE(TouchRaises(addr(), Access::kRead, SIGBUS));
}

// process_vm_readv/writev with the mapping as the LOCAL side: the copy faults, EFAULT.
TEST_P(GupPrivateCopyPaths, ProcessVmLocalSideFaults) {
  REQUIRE_FEATURE("process_vm_rw");
  EXPECT_THAT(ProcessVm(/*write=*/false, /*mapping_local=*/true), SyscallFailsWithErrno(EFAULT));
  EXPECT_THAT(ProcessVm(/*write=*/true, /*mapping_local=*/true), SyscallFailsWithErrno(EFAULT));
  EXPECT_TRUE(BytesAre(outside_.bytes(), page(), kOutside));
}

// vmsplice from a pipe into the mapping: copy_to_user faults, EFAULT.
TEST_P(GupPrivateCopyPaths, VmspliceFromPipeFaults) {
  Pipe pipe = MakePipe(/*filled=*/true);
  iovec iov{addr(), page()};
  EXPECT_THAT(BoundedCall("vmsplice(pipe read end, mapping)",
                          [&] { return vmsplice(pipe.rd.get(), &iov, 1, SPLICE_F_NONBLOCK); }),
              SyscallFailsWithErrno(EFAULT));
  EXPECT_TRUE(TouchRaises(addr(), Access::kRead, SIGBUS));
}

INSTANTIATE_TEST_SUITE_P(, GupPrivateCopyPaths, ::testing::ValuesIn(GupBackendValues({GupKind::kPrivate})),
                         BackendParamName);

}  // namespace
}  // namespace gmem
