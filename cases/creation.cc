// KVM_CREATE_GUEST_MEMFD: which flags, sizes and argument words the kernel accepts, on which file
// descriptors and from which process; and the capabilities that describe guest_memfd, per VM type.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/falloc.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <climits>
#include <functional>
#include <utility>
#include <vector>

#include "fixtures/errno_name.h"
#include "fixtures/kvm.h"
#include "fixtures/mapping.h"
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

// A size far beyond memory (1 TiB) is accepted: nothing is allocated at creation, and the last
// page of the file is as reachable as the first.
TEST_F(Creation, AcceptsHugeSize) {
  REQUIRE_FEATURE("gmem");
  const uint64_t size = 1ULL << 40;
  ASSERT_OK_AND_ASSIGN(GuestMemfd gmem, vm().CreateGuestMemfd(size));
  struct stat st {};
  ASSERT_THAT(fstat(gmem.fd(), &st), SyscallSucceeds());
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), size);
  off_t last = static_cast<off_t>(size - page_size());
  EXPECT_THAT(gmem.RawFallocate(FALLOC_FL_KEEP_SIZE, last, static_cast<off_t>(page_size())), SyscallSucceeds());
  EXPECT_THAT(gmem.RawPunchHole(last, static_cast<off_t>(page_size())), SyscallSucceeds());
}

// One page, the smallest size, is accepted and is the file's size.
TEST_F(Creation, AcceptsOnePage) {
  REQUIRE_FEATURE("gmem");
  ASSERT_OK_AND_ASSIGN(GuestMemfd gmem, vm().CreateGuestMemfd(page_size()));
  struct stat st {};
  ASSERT_THAT(fstat(gmem.fd(), &st), SyscallSucceeds());
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), page_size());
}

// The largest page-aligned size that is positive as loff_t is accepted; one page more is not
// (RejectsNegativeSize).
TEST_F(Creation, AcceptsLargestPositiveSize) {
  REQUIRE_FEATURE("gmem");
  const uint64_t largest = static_cast<uint64_t>(LLONG_MAX) & ~(page_size() - 1);
  ASSERT_OK_AND_ASSIGN(GuestMemfd gmem, vm().CreateGuestMemfd(largest));
  struct stat st {};
  ASSERT_THAT(fstat(gmem.fd(), &st), SyscallSucceeds());
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), largest);
}

// The reserved words of struct kvm_create_guest_memfd are not checked: non-zero values are
// ignored and the file is created as with zeros.
TEST_F(Creation, IgnoresNonZeroReservedFields) {
  REQUIRE_FEATURE("gmem");
  constexpr size_t kReserved = sizeof(kvm_create_guest_memfd::reserved) / sizeof(__u64);
  for (size_t i = 0; i <= kReserved; ++i) {
    kvm_create_guest_memfd args{};
    args.size = 2 * page_size();
    for (size_t j = 0; j < kReserved; ++j)
      if (i == kReserved || j == i) args.reserved[j] = ~__u64{0} - j;  // one word, then all six
    SyscallResult r = vm().RawCreateGuestMemfd(args);
    ASSERT_THAT(r, SyscallSucceeds());
    FileDescriptor fd(static_cast<int>(r.ret));
    struct stat st {};
    ASSERT_THAT(fstat(fd.get(), &st), SyscallSucceeds());
    EXPECT_EQ(static_cast<uint64_t>(st.st_size), 2 * page_size()) << r.call;
  }
}

// The argument is read from user memory: an address that cannot be read fails with EFAULT.
TEST_F(Creation, UnreadableArgumentFailsWithEfault) {
  REQUIRE_FEATURE("gmem");
  ASSERT_OK_AND_ASSIGN(Mapping hole, MapAnonymous(page_size(), PROT_NONE));
  // The struct straddling into the inaccessible page fails as well as one wholly inside it.
  ASSERT_OK_AND_ASSIGN(Mapping edge, MapAnonymous(2 * page_size()));
  ASSERT_THAT(RawMprotect(edge.bytes() + page_size(), page_size(), PROT_NONE), SyscallSucceeds());
  uint8_t* straddling = edge.bytes() + page_size() - sizeof(uint64_t);
  for (uintptr_t arg : {uintptr_t{0}, hole.start(), reinterpret_cast<uintptr_t>(straddling)})
    EXPECT_THAT(RawIoctl(vm().fd(), KVM_CREATE_GUEST_MEMFD, arg, fmt::format("{:#x}", arg)),
                SyscallFailsWithErrno(EFAULT));
}

// KVM_CREATE_GUEST_MEMFD is a VM ioctl: /dev/kvm and a vCPU refuse it with EINVAL.
TEST_F(Creation, OnlyTheVmFdCreatesGuestMemfd) {
  REQUIRE_FEATURE("gmem");
  kvm_create_guest_memfd args{};
  args.size = page_size();
  EXPECT_THAT(RawIoctl(kvm().fd(), KVM_CREATE_GUEST_MEMFD, &args, "/dev/kvm, {size=one page}"),
              SyscallFailsWithErrno(EINVAL));
  ASSERT_OK_AND_ASSIGN(size_t run_size, kvm().RunSize());
  ASSERT_OK_AND_ASSIGN(Vcpu vcpu, vm().CreateVcpu(0, run_size));
  EXPECT_THAT(RawIoctl(vcpu.fd(), KVM_CREATE_GUEST_MEMFD, &args, "vCPU 0, {size=one page}"),
              SyscallFailsWithErrno(EINVAL));
}

// Runs `child` in a forked process and returns the numbers it reports (at most 8), or an error.
Result<std::vector<long>> ReportsFromChild(const std::function<std::vector<long>()>& child) {
  int fds[2];
  if (pipe(fds) != 0) return Error("pipe()", errno);
  pid_t pid = fork();
  if (pid < 0) return Error("fork()", errno);
  if (pid == 0) {
    std::vector<long> reports = child();
    ssize_t ignored = write(fds[1], reports.data(), reports.size() * sizeof(long));
    (void)ignored;
    _exit(0);
  }
  close(fds[1]);
  long buffer[8] = {};
  ssize_t got = read(fds[0], buffer, sizeof buffer);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || got < 0)
    return Error(fmt::format("forked child (status {:#x}, {} bytes reported)", status, got), ECHILD);
  return std::vector<long>(buffer, buffer + got / static_cast<ssize_t>(sizeof(long)));
}

// A VM belongs to the mm that created it: a forked child gets EIO from every VM ioctl,
// KVM_CREATE_GUEST_MEMFD and KVM_CHECK_EXTENSION alike.
TEST_F(Creation, ForkedChildGetsEioFromTheVm) {
  REQUIRE_FEATURE("gmem");
  int vm_fd = vm().fd();
  uint64_t size = page_size();
  ASSERT_OK_AND_ASSIGN(std::vector<long> errnos, ReportsFromChild([vm_fd, size] {
    kvm_create_guest_memfd args{};
    args.size = size;
    long create = ioctl(vm_fd, KVM_CREATE_GUEST_MEMFD, &args) < 0 ? errno : 0;
    long check = ioctl(vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_GUEST_MEMFD) < 0 ? errno : 0;
    return std::vector<long>{create, check};
  }));
  ASSERT_EQ(errnos.size(), 2u);
  EXPECT_EQ(errnos[0], EIO) << "KVM_CREATE_GUEST_MEMFD on the parent's VM fd in a forked child: "
                            << (errnos[0] ? ErrnoName(static_cast<int>(errnos[0])) : "succeeded");
  EXPECT_EQ(errnos[1], EIO) << "KVM_CHECK_EXTENSION on the parent's VM fd in a forked child: "
                            << (errnos[1] ? ErrnoName(static_cast<int>(errnos[1])) : "succeeded");
}

// The guest_memfd file itself is not tied to an mm: a forked child allocates and punches it.
TEST_F(Creation, ForkedChildCanFallocateTheGuestMemfd) {
  REQUIRE_FEATURE("gmem");
  ASSERT_OK_AND_ASSIGN(GuestMemfd gmem, vm().CreateGuestMemfd(2 * page_size()));
  int fd = gmem.fd();
  off_t page = static_cast<off_t>(page_size());
  ASSERT_OK_AND_ASSIGN(std::vector<long> errnos, ReportsFromChild([fd, page] {
    long allocate = fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 2 * page) < 0 ? errno : 0;
    long punch = fallocate(fd, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE, page, page) < 0 ? errno : 0;
    return std::vector<long>{allocate, punch};
  }));
  ASSERT_EQ(errnos.size(), 2u);
  EXPECT_EQ(errnos[0], 0) << "fallocate(KEEP_SIZE) in a forked child: " << ErrnoName(static_cast<int>(errnos[0]));
  EXPECT_EQ(errnos[1], 0) << "fallocate(PUNCH_HOLE) in a forked child: " << ErrnoName(static_cast<int>(errnos[1]));
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

// ---- KVM_CHECK_EXTENSION: what /dev/kvm says against what each VM type says ----

// The VM types the probe could create (vm_type.* present), each with a fresh VM.
std::vector<std::pair<unsigned long, Vm>> VmOfEachType(const Kvm& kvm) {
  std::vector<std::pair<unsigned long, Vm>> vms;
  for (unsigned long type : {KVM_X86_DEFAULT_VM, KVM_X86_SW_PROTECTED_VM, KVM_X86_SEV_VM, KVM_X86_SEV_ES_VM,
                             KVM_X86_SNP_VM, KVM_X86_TDX_VM}) {
    if (!ProbedFeatures().Has("vm_type." + VmTypeShortName(type))) continue;
    auto vm = kvm.CreateVm(type);
    EXPECT_TRUE(vm.ok()) << vm.error().message();
    if (vm.ok()) vms.emplace_back(type, std::move(vm).value());
  }
  return vms;
}

struct CapValues {
  long system;
  long per_vm;
};

CapValues Values(const Kvm& kvm, const Vm& vm, long cap) {
  return {kvm.CheckExtension(cap), vm.CheckExtension(cap)};
}

// Capabilities that do not depend on the VM: every VM type answers what /dev/kvm answers, and
// KVM_CAP_USER_MEMORY2 and KVM_CAP_MEMORY_FAULT_INFO are 1 wherever guest_memfd exists.
TEST_F(Creation, VmIndependentCapabilitiesMatchTheSystem) {
  REQUIRE_FEATURE("gmem");
  struct Cap {
    long number;
    const char* name;
    long required;  // the value guest_memfd needs (0: any)
  };
  const Cap caps[] = {{KVM_CAP_USER_MEMORY2, "KVM_CAP_USER_MEMORY2", 1},
                      {KVM_CAP_MEMORY_FAULT_INFO, "KVM_CAP_MEMORY_FAULT_INFO", 1},
                      {KVM_CAP_VM_TYPES, "KVM_CAP_VM_TYPES", 0},
                      {KVM_CAP_PRE_FAULT_MEMORY, "KVM_CAP_PRE_FAULT_MEMORY", 0}};
  for (auto& [type, vm] : VmOfEachType(kvm())) {
    for (const Cap& cap : caps) {
      CapValues v = Values(kvm(), vm, cap.number);
      SCOPED_TRACE(fmt::format("KVM_CHECK_EXTENSION({}) = {:#x} on /dev/kvm, {:#x} on a {}", cap.name,
                               v.system, v.per_vm, VmTypeName(type)));
      EXPECT_EQ(v.per_vm, v.system);
      if (cap.required) {
        EXPECT_EQ(v.system, cap.required);
      }
    }
    long types = kvm().CheckExtension(KVM_CAP_VM_TYPES);
    if (types) {
      EXPECT_TRUE(types & (1L << type))
          << fmt::format("KVM_CAP_VM_TYPES = {:#x} lacks the type of a VM that was created: {}", types, VmTypeName(type));
    }
  }
}

// KVM_CAP_GUEST_MEMFD is 1 on /dev/kvm; on a VM it says whether that VM can bind guest_memfd to
// memslots: non-zero exactly when KVM_SET_USER_MEMORY_REGION2 accepts KVM_MEM_GUEST_MEMFD there.
TEST_F(Creation, GuestMemfdCapabilitySaysWhetherTheVmCanBindIt) {
  REQUIRE_FEATURE("gmem");
  EXPECT_EQ(kvm().CheckExtension(KVM_CAP_GUEST_MEMFD), 1) << "KVM_CHECK_EXTENSION(KVM_CAP_GUEST_MEMFD) on /dev/kvm";
  for (auto& [type, vm] : VmOfEachType(kvm())) {
    long per_vm = vm.CheckExtension(KVM_CAP_GUEST_MEMFD);
    SCOPED_TRACE(fmt::format("KVM_CHECK_EXTENSION(KVM_CAP_GUEST_MEMFD) = {:#x} on a {}", per_vm, VmTypeName(type)));
    EXPECT_TRUE(per_vm == 0 || per_vm == 1);
    ASSERT_OK_AND_ASSIGN(GuestMemfd gmem, vm.CreateGuestMemfd(page_size()));
    SyscallResult bind = vm.RawSetMemoryRegion2(GmemRegion(0, 1ULL << 30, page_size(), gmem, 0));
    if (per_vm) {
      EXPECT_THAT(bind, SyscallSucceeds());
    } else {
      EXPECT_THAT(bind, SyscallFailsWithErrno(EINVAL));
    }
    if (bind.ok()) {
      EXPECT_THAT(vm.RawSetMemoryRegion2(GmemRegion(0, 1ULL << 30, 0, gmem, 0)), SyscallSucceeds());
    }
  }
}

// KVM_CAP_GUEST_MEMFD_FLAGS: no VM advertises a flag /dev/kvm does not; the default VM advertises
// exactly what /dev/kvm does, and a VM type with private memory never INIT_SHARED.
TEST_F(Creation, GuestMemfdFlagsPerVmWithinTheSystemFlags) {
  REQUIRE_FEATURE("kvm.cap.GUEST_MEMFD_FLAGS");
  long system = kvm().CheckExtension(KVM_CAP_GUEST_MEMFD_FLAGS);
  for (auto& [type, vm] : VmOfEachType(kvm())) {
    long per_vm = vm.CheckExtension(KVM_CAP_GUEST_MEMFD_FLAGS);
    SCOPED_TRACE(fmt::format("KVM_CHECK_EXTENSION(KVM_CAP_GUEST_MEMFD_FLAGS) = {} on /dev/kvm, {} on a {}",
                             GmemFlagsName(system), GmemFlagsName(per_vm), VmTypeName(type)));
    EXPECT_EQ(per_vm & ~system, 0);
    if (type == KVM_X86_DEFAULT_VM) {
      EXPECT_EQ(per_vm, system);
    }
    if (type == KVM_X86_SW_PROTECTED_VM || type == KVM_X86_SNP_VM || type == KVM_X86_TDX_VM) {
      EXPECT_EQ(per_vm & GUEST_MEMFD_FLAG_INIT_SHARED, 0);
    }
  }
}

}  // namespace
}  // namespace gmem
