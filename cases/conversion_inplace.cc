// In-place shared/private conversion (the guest_memfd in-place conversion series): the
// KVM_SET_MEMORY_ATTRIBUTES2 ioctl on a guest_memfd file. Private offsets are the guest's only:
// host faults on them raise SIGBUS; shared offsets map. Granularity is the page; a page with
// references beyond guest_memfd's own blocks shared->private with EAGAIN and its offset.
//
// The request number, struct size and error_offset position come from the run's series selection
// (fixtures/series.h: the kernel's headers, or --series-profile=gmem-inplace-conversion-v8);
// whether the kernel implements it is the probe's trial ioctl (gmem.ioctl.SET_MEMORY_ATTRIBUTES2).
// Without the series, every ioctl on a guest_memfd file is ENOTTY (no unlocked_ioctl, 6.8-7.3).

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "fixtures/bytes.h"
#include "fixtures/fault.h"
#include "fixtures/guest_payloads.h"
#include "fixtures/ioctl.h"
#include "fixtures/kvm.h"
#include "fixtures/pin.h"
#include "fixtures/require.h"
#include "fixtures/series.h"
#include "fixtures/syscall_matchers.h"
#include "fixtures/vm_fixture.h"

namespace gmem {
namespace {

uint64_t PageSize() { return static_cast<uint64_t>(getpagesize()); }
constexpr uint64_t kPrivate = KVM_MEMORY_ATTRIBUTE_PRIVATE;
constexpr const char* kIoctl = "KVM_SET_MEMORY_ATTRIBUTES2";
constexpr const char* kStructSize = "sizeof(struct kvm_memory_attributes2)";
constexpr const char* kErrorOffsetField = "offsetof(struct kvm_memory_attributes2, error_offset)";

// ---- Without the series ----

// A guest_memfd file has no ioctls: KVM's own requests (and the series' one, where a profile names
// it but the kernel lacks it) are ENOTTY on it.
TEST(GuestMemfdIoctl, NoneWithoutInPlaceConversion) {
  REQUIRE_FEATURE("gmem");
  auto kvm = Kvm::Open();
  ASSERT_OK(kvm);
  ASSERT_OK_AND_ASSIGN(Vm vm, kvm.value().CreateVm());
  ASSERT_OK_AND_ASSIGN(GuestMemfd gmem, vm.CreateGuestMemfd(PageSize()));
  std::vector<unsigned long> requests = {KVM_SET_MEMORY_ATTRIBUTES, KVM_CREATE_GUEST_MEMFD,
                                         KVM_SET_USER_MEMORY_REGION2, KVM_CHECK_EXTENSION, KVM_RUN};
  if (!ProbedFeatures().Has("gmem.ioctl.SET_MEMORY_ATTRIBUTES2"))
    if (auto series = series::ActiveSelection().Value(kIoctl)) requests.push_back(*series);
  std::vector<uint64_t> arg(16, 0);  // large enough for any of them: a zeroed argument
  for (unsigned long request : requests)
    EXPECT_THAT(RawIoctl(gmem.fd(), request, arg.data(), "zeroed argument"), SyscallFailsWithErrno(ENOTTY));
}

// ---- The series' ioctl ----

// One KVM_SET_MEMORY_ATTRIBUTES2 call's outcome, with error_offset when the kernel wrote it.
struct Attributes2Outcome {
  SyscallResult result;
  std::optional<uint64_t> error_offset;
};

// The struct as the selected layout has it; reserved words are everything after error_offset.
struct Attributes2 {
  uint64_t offset = 0;
  uint64_t size = 0;
  uint64_t attributes = 0;
  uint64_t flags = 0;
  int reserved_word = -1;  // >= 0: which reserved word to set to 1
};

constexpr uint64_t kUnwritten = 0xdead000000000001ULL;  // unaligned: never a real error_offset

Attributes2Outcome SetAttributes2(const GuestMemfd& gmem, const Attributes2& a) {
  const series::Selection& selection = series::ActiveSelection();
  unsigned long request = static_cast<unsigned long>(*selection.Value(kIoctl));
  size_t words = *selection.Value(kStructSize) / 8, error_word = *selection.Value(kErrorOffsetField) / 8;
  std::vector<uint64_t> arg(words, 0);
  arg[0] = a.offset, arg[1] = a.size, arg[2] = a.attributes, arg[3] = a.flags;
  arg[error_word] = kUnwritten;
  std::string reserved;
  if (a.reserved_word >= 0) {
    arg.at(error_word + 1 + static_cast<size_t>(a.reserved_word)) = 1;
    reserved = fmt::format(", reserved[{}]=1", a.reserved_word);
  }
  Attributes2Outcome out;
  out.result = RawIoctl(gmem.fd(), request, arg.data(),
                        fmt::format("guest_memfd, {{offset={:#x}, size={:#x}, attributes={:#x}, flags={:#x}{}}}",
                                    a.offset, a.size, a.attributes, a.flags, reserved));
  if (arg[error_word] != kUnwritten) out.error_offset = arg[error_word];
  return out;
}

SyscallResult Convert(const GuestMemfd& gmem, uint64_t first_page, uint64_t pages, bool to_private) {
  return SetAttributes2(gmem, {first_page * PageSize(), pages * PageSize(), to_private ? kPrivate : 0}).result;
}

// What the host can do with each page of `map`: 'S' read and write work, 'P' both raise SIGBUS,
// '?' anything else. Writes put back the byte read, so contents are kept.
std::string HostView(const Mapping& map) {
  std::string view;
  for (size_t off = 0; off < map.length(); off += PageSize()) {
    auto* byte = map.bytes() + off;
    TouchOutcome read = Touch(byte, Access::kRead);
    TouchOutcome write = Touch(byte, Access::kWrite, read.value);
    view += !read.signal && !write.signal ? 'S' : read.signal == SIGBUS && write.signal == SIGBUS ? 'P' : '?';
  }
  return view;
}

// A software-protected VM with in-place conversion; skips naming the series feature first.
class InPlaceConversion : public VmTest {
 protected:
  InPlaceConversion() : VmTest(KVM_X86_SW_PROTECTED_VM) {}
  void SetUp() override {
    REQUIRE_FEATURE("gmem.ioctl.SET_MEMORY_ATTRIBUTES2");
    REQUIRE_UAPI(kStructSize);
    REQUIRE_UAPI(kErrorOffsetField);
    VmTest::SetUp();
  }
  // A guest_memfd of `pages` pages with MMAP (plus INIT_SHARED when `shared`), and its mapping.
  void CreateMapped(uint64_t pages, bool shared) {
    uint64_t flags = GUEST_MEMFD_FLAG_MMAP | (shared ? GUEST_MEMFD_FLAG_INIT_SHARED : 0);
    ASSERT_OK_AND_ASSIGN(gmem_, vm().CreateGuestMemfd(pages * PageSize(), flags));
    ASSERT_OK_AND_ASSIGN(map_, gmem_.Map(pages * PageSize()));
  }
  GuestMemfd gmem_;
  Mapping map_;
};

// KVM advertises guest_memfd attributes (PRIVATE) for VMs with private memory only; per-VM
// attributes are retired (KVM_CAP_MEMORY_ATTRIBUTES = 0) and INIT_SHARED becomes available.
TEST_F(InPlaceConversion, AdvertisedForPrivateMemoryVmsOnly) {
  REQUIRE_UAPI("KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES");
  long cap = static_cast<long>(*series::ActiveSelection().Value("KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES"));
  EXPECT_EQ(kvm().CheckExtension(cap), static_cast<long>(kPrivate));
  EXPECT_EQ(vm().CheckExtension(cap), static_cast<long>(kPrivate));
  ASSERT_OK_AND_ASSIGN(Vm plain, kvm().CreateVm(KVM_X86_DEFAULT_VM));
  EXPECT_EQ(plain.CheckExtension(cap), 0);
  EXPECT_EQ(vm().CheckExtension(KVM_CAP_MEMORY_ATTRIBUTES), 0);
  EXPECT_EQ(vm().CheckExtension(KVM_CAP_GUEST_MEMFD_FLAGS) & GUEST_MEMFD_FLAG_INIT_SHARED,
            static_cast<long>(GUEST_MEMFD_FLAG_INIT_SHARED));
}

// Converting a page to private takes it from the host (SIGBUS on read and write) and leaves every
// other page mapped; converting it back makes it mappable again. Each page in turn.
TEST_F(InPlaceConversion, PrivatePagesSigbusSharedPagesMap) {
  CreateMapped(4, true);
  ASSERT_EQ(HostView(map_), "SSSS");
  for (uint64_t page = 0; page < 4; ++page) {
    std::string expected = "SSSS";
    expected[page] = 'P';
    ASSERT_THAT(Convert(gmem_, page, 1, true), SyscallSucceeds());
    EXPECT_EQ(HostView(map_), expected) << "after converting page " << page << " to private";
    ASSERT_THAT(Convert(gmem_, page, 1, false), SyscallSucceeds());
    EXPECT_EQ(HostView(map_), "SSSS") << "after converting page " << page << " back to shared";
  }
}

// Without INIT_SHARED every page starts private; a page converted to shared maps on its own.
TEST_F(InPlaceConversion, WithoutInitSharedPagesStartPrivate) {
  CreateMapped(4, false);
  EXPECT_EQ(HostView(map_), "PPPP");
  ASSERT_THAT(Convert(gmem_, 2, 1, false), SyscallSucceeds());
  EXPECT_EQ(HostView(map_), "PPSP");
}

// Setting the state a range already has succeeds and changes nothing.
TEST_F(InPlaceConversion, RepeatingTheCurrentStateIsANoOp) {
  CreateMapped(4, true);
  EXPECT_THAT(Convert(gmem_, 0, 4, false), SyscallSucceeds());
  EXPECT_EQ(HostView(map_), "SSSS");
  ASSERT_THAT(Convert(gmem_, 1, 1, true), SyscallSucceeds());
  EXPECT_THAT(Convert(gmem_, 1, 1, true), SyscallSucceeds());
  EXPECT_EQ(HostView(map_), "SPSS");
}

// A software-protected VM's conversions keep contents both ways (KVM does not touch them).
TEST_F(InPlaceConversion, ContentsSurviveRoundTrip) {
  CreateMapped(2, true);
  ASSERT_TRUE(FillBytes(map_.bytes(), map_.length(), 0x42));
  ASSERT_THAT(Convert(gmem_, 0, 2, true), SyscallSucceeds());
  ASSERT_THAT(Convert(gmem_, 0, 2, false), SyscallSucceeds());
  EXPECT_TRUE(BytesAre(map_.bytes(), map_.length(), 0x42));
}

// A conversion made before any page exists applies once pages are allocated.
TEST_F(InPlaceConversion, ConversionBeforeAllocationApplies) {
  CreateMapped(2, true);
  ASSERT_THAT(Convert(gmem_, 1, 1, true), SyscallSucceeds());
  ASSERT_THAT(gmem_.RawFallocate(FALLOC_FL_KEEP_SIZE, 0, 2 * PageSize()), SyscallSucceeds());
  EXPECT_EQ(HostView(map_), "SP");
  ASSERT_THAT(Convert(gmem_, 1, 1, false), SyscallSucceeds());
  EXPECT_TRUE(BytesAre(map_.bytes() + PageSize(), PageSize(), 0));
}

// PUNCH_HOLE frees pages but keeps each page's state; the memory comes back zeroed.
TEST_F(InPlaceConversion, PunchHoleKeepsState) {
  CreateMapped(2, true);
  ASSERT_TRUE(FillBytes(map_.bytes(), map_.length(), 0x5c));
  ASSERT_THAT(Convert(gmem_, 1, 1, true), SyscallSucceeds());
  ASSERT_THAT(gmem_.RawPunchHole(0, 2 * PageSize()), SyscallSucceeds());
  EXPECT_EQ(HostView(map_), "SP");
  EXPECT_TRUE(BytesAre(map_.bytes(), PageSize(), 0));
  ASSERT_THAT(Convert(gmem_, 1, 1, false), SyscallSucceeds());
  EXPECT_TRUE(BytesAre(map_.bytes() + PageSize(), PageSize(), 0));
}

// Converting to private zaps the page from every process: a forked child that had it mapped
// gets SIGBUS on its next access.
TEST_F(InPlaceConversion, ConversionUnmapsOtherProcesses) {
  CreateMapped(1, true);
  int to_child[2], to_parent[2];
  ASSERT_EQ(pipe(to_child), 0);
  ASSERT_EQ(pipe(to_parent), 0);
  volatile uint8_t* byte = map_.bytes();
  pid_t child = fork();
  if (child == 0) {
    alarm(10);  // bounded: a lost parent must not leave the child waiting
    *byte = 1;  // mapped in the child's page tables now
    char c = 0;
    if (write(to_parent[1], &c, 1) != 1 || read(to_child[0], &c, 1) != 1) _exit(2);
    (void)*byte;  // must raise SIGBUS
    _exit(0);
  }
  char c;
  ASSERT_EQ(read(to_parent[0], &c, 1), 1);
  EXPECT_THAT(Convert(gmem_, 0, 1, true), SyscallSucceeds());
  ASSERT_EQ(write(to_child[1], &c, 1), 1);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGBUS)
      << "child status " << status << " (exit " << (WIFEXITED(status) ? WEXITSTATUS(status) : -1) << ")";
  for (int fd : {to_child[0], to_child[1], to_parent[0], to_parent[1]}) close(fd);
}

// EINVAL for non-zero flags or reserved words, attributes other than PRIVATE, and empty,
// unaligned, wrapping or out-of-file ranges.
TEST_F(InPlaceConversion, RejectsInvalidArguments) {
  const uint64_t page = PageSize(), size = 4 * page;
  ASSERT_OK_AND_ASSIGN(GuestMemfd gmem, vm().CreateGuestMemfd(size, GUEST_MEMFD_FLAG_MMAP));
  auto fails = [&](Attributes2 a) { EXPECT_THAT(SetAttributes2(gmem, a).result, SyscallFailsWithErrno(EINVAL)); };
  fails({0, page, kPrivate, 1});
  size_t reserved = (*series::ActiveSelection().Value(kStructSize) - *series::ActiveSelection().Value(kErrorOffsetField)) / 8 - 1;
  for (size_t i = 0; i < reserved; ++i) fails({0, page, kPrivate, 0, static_cast<int>(i)});
  for (int bit = 0; bit < 64; ++bit) {
    if ((1ULL << bit) != kPrivate) fails({0, page, 1ULL << bit});
  }
  fails({0, 0, kPrivate});
  fails({1, page, kPrivate});
  fails({0, page + 1, kPrivate});
  fails({size, page, kPrivate});
  fails({size - page, 2 * page, kPrivate});
  fails({~uint64_t{0} & ~(page - 1), 2 * page, kPrivate});
}

// Ranges that end exactly at the end of the file are accepted, from one page up to the whole file.
TEST_F(InPlaceConversion, AcceptsRangesEndingAtEndOfFile) {
  CreateMapped(4, true);
  EXPECT_THAT(Convert(gmem_, 3, 1, true), SyscallSucceeds());
  EXPECT_THAT(Convert(gmem_, 2, 2, true), SyscallSucceeds());
  EXPECT_THAT(Convert(gmem_, 0, 4, false), SyscallSucceeds());
  EXPECT_THAT(Convert(gmem_, 0, 4, true), SyscallSucceeds());
  EXPECT_EQ(HostView(map_), "PPPP");
}

// An argument the kernel cannot read is EFAULT (before any other check).
TEST_F(InPlaceConversion, RejectsUnreadableArgument) {
  ASSERT_OK_AND_ASSIGN(GuestMemfd gmem, vm().CreateGuestMemfd(PageSize(), GUEST_MEMFD_FLAG_MMAP));
  ASSERT_OK_AND_ASSIGN(Mapping none, Map(PageSize(), PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1));
  unsigned long request = static_cast<unsigned long>(*series::ActiveSelection().Value(kIoctl));
  EXPECT_THAT(RawIoctl(gmem.fd(), request, none.bytes(), "a PROT_NONE page"), SyscallFailsWithErrno(EFAULT));
}

// A VM without private memory has no guest_memfd attributes: EINVAL for its files.
TEST_F(InPlaceConversion, RejectsFileOfVmWithoutPrivateMemory) {
  ASSERT_OK_AND_ASSIGN(Vm plain, kvm().CreateVm(KVM_X86_DEFAULT_VM));
  ASSERT_OK_AND_ASSIGN(GuestMemfd gmem, plain.CreateGuestMemfd(PageSize(), GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED));
  EXPECT_THAT(SetAttributes2(gmem, {0, PageSize(), kPrivate}).result, SyscallFailsWithErrno(EINVAL));
}

// A long-term pin on a shared page blocks conversion to private: EAGAIN with that page's offset in
// error_offset and nothing converted; other pages convert; once unpinned the page converts too.
// The same for each way of pinning (io_uring fixed buffers; CONFIG_GUP_TEST's PIN_LONGTERM_TEST,
// which the series' own selftest uses).
class InPlaceConversionPinned : public InPlaceConversion,
                                public ::testing::WithParamInterface<LongTermPin::Method> {};

TEST_P(InPlaceConversionPinned, PinnedPageBlocksConversionToPrivate) {
  REQUIRE_FEATURE(PinFeature(GetParam()));
  CreateMapped(4, true);
  ASSERT_TRUE(FillBytes(map_.bytes(), map_.length(), 0x17));
  ASSERT_OK_AND_ASSIGN(LongTermPin pin, LongTermPin::Create(map_.bytes() + 2 * PageSize(), PageSize(), GetParam()));

  for (auto [first, pages] : {std::pair<uint64_t, uint64_t>{0, 4}, {2, 1}, {1, 2}}) {
    Attributes2Outcome all = SetAttributes2(gmem_, {first * PageSize(), pages * PageSize(), kPrivate});
    EXPECT_THAT(all.result, SyscallFailsWithErrno(EAGAIN));
    EXPECT_EQ(all.error_offset, std::optional<uint64_t>(2 * PageSize())) << all.result.Describe();
  }
  EXPECT_EQ(HostView(map_), "SSSS");
  EXPECT_THAT(Convert(gmem_, 0, 2, true), SyscallSucceeds());
  EXPECT_THAT(Convert(gmem_, 3, 1, true), SyscallSucceeds());
  ASSERT_OK(pin.Release());
  EXPECT_THAT(Convert(gmem_, 0, 4, true), SyscallSucceeds());
  EXPECT_EQ(HostView(map_), "PPPP");
}

INSTANTIATE_TEST_SUITE_P(Pins, InPlaceConversionPinned,
                         ::testing::Values(LongTermPin::Method::kIoUring, LongTermPin::Method::kGupTest),
                         [](const auto& info) { return std::string(PinFeature(info.param)); });

// The memfd counterpart of the case above, runnable on mainline: F_SEAL_WRITE waits for pinned
// pages and fails with EBUSY while one is held, and succeeds once it is released. It also shows
// that LongTermPin really pins.
TEST(LongTermPin, BlocksMemfdWriteSealUntilReleased) {
  REQUIRE_FEATURE("io_uring");
  const size_t size = 4 * PageSize();
  int fd = static_cast<int>(syscall(SYS_memfd_create, "gmemtest-pin", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  ASSERT_GE(fd, 0);
  FileDescriptor memfd(fd);
  ASSERT_EQ(ftruncate(fd, static_cast<off_t>(size)), 0);
  std::optional<LongTermPin> pin;
  {
    ASSERT_OK_AND_ASSIGN(Mapping map, Map(size, PROT_READ | PROT_WRITE, MAP_SHARED, fd));
    ASSERT_TRUE(FillBytes(map.bytes(), size, 1));
    ASSERT_OK_AND_ASSIGN(LongTermPin created, LongTermPin::Create(map.bytes() + PageSize(), PageSize()));
    pin.emplace(std::move(created));
  }  // unmapped: only the pin refers to the page now
  EXPECT_THAT(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE), SyscallFailsWithErrno(EBUSY));
  ASSERT_OK(pin->Release());
  EXPECT_THAT(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE), SyscallSucceeds());
}

// ---- Guest code on an in-place converted guest_memfd ----

class InPlaceGuest : public GuestAgentTest {
 protected:
  InPlaceGuest() : GuestAgentTest(KVM_X86_SW_PROTECTED_VM) {}
  void SetUp() override {
    REQUIRE_FEATURE("gmem.ioctl.SET_MEMORY_ATTRIBUTES2");
    REQUIRE_UAPI(kStructSize);
    REQUIRE_UAPI(kErrorOffsetField);
    GuestAgentTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    REQUIRE_GUEST_MEMFD_FAULTS();
  }
};

// What the host wrote while a page was shared, the guest reads once it is private; what the guest
// wrote while private, the host reads once it is shared again.
TEST_F(InPlaceGuest, DataCrossesConversionsBothWays) {
  const uint64_t size = 2 * PageSize(), gpa = kAgentDataGpa + 0x321;
  ASSERT_OK_AND_ASSIGN(GuestMemfd gmem, vm().CreateGuestMemfd(size, GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED));
  ASSERT_OK_AND_ASSIGN(Mapping host, gmem.Map(size));
  ASSERT_OK(BindGuestMemfd(gmem, size, host.start()));

  host.bytes()[0x321] = 0x42;
  ASSERT_THAT(Convert(gmem, 0, 1, true), SyscallSucceeds());
  EXPECT_TRUE(TouchRaises(host.bytes(), Access::kRead, SIGBUS));
  EXPECT_TRUE(GuestSaw(agent().Read(gpa), 0x42));
  EXPECT_TRUE(GuestSaw(agent().Write(gpa, 0x43), 0x43));
  ASSERT_THAT(Convert(gmem, 0, 1, false), SyscallSucceeds());
  EXPECT_EQ(host.bytes()[0x321], 0x43);
}

// With per-file attributes a GPA without a memslot is simply shared: the guest's access is
// emulated MMIO, never a private memory fault.
TEST_F(InPlaceGuest, GpaWithoutMemslotExitsAsMmio) {
  const uint64_t gpa = kAgentDataGpa + 3 * PageSize() + 0x10;
  GuestAccess access = agent().Read(gpa);
  EXPECT_TRUE(access.run.ok() && access.exit_reason == KVM_EXIT_MMIO && access.mmio_phys_addr == gpa)
      << access.Describe();
}

// The attributes are the file's whether or not the host may map it: for a guest_memfd without
// MMAP, private pages come from guest_memfd and shared ones from the memslot's userspace_addr, and
// a conversion switches which one the guest sees, keeping both contents (v8 per-gmem attributes
// with a separate shared backing, as VMMs without in-place sharing use it).
TEST_F(InPlaceGuest, FileWithoutMmapLeavesSharedPagesToUserspaceAddr) {
  const uint64_t size = PageSize(), gpa = kAgentDataGpa + 0x40;
  ASSERT_OK_AND_ASSIGN(Mapping host, MapAnonymous(size));
  ASSERT_TRUE(FillBytes(host.bytes(), size, 0x30));
  ASSERT_OK_AND_ASSIGN(GuestMemfd gmem, vm().CreateGuestMemfd(size, 0));
  ASSERT_OK(BindGuestMemfd(gmem, size, host.start()));

  EXPECT_TRUE(GuestSaw(agent().Read(gpa), 0x00));  // private: a fresh guest_memfd page
  ASSERT_TRUE(GuestSaw(agent().Write(gpa, 0x7e), 0x7e));
  EXPECT_EQ(host.bytes()[0x40], 0x30);
  ASSERT_THAT(Convert(gmem, 0, 1, false), SyscallSucceeds());
  EXPECT_TRUE(GuestSaw(agent().Read(gpa), 0x30));  // shared: userspace_addr
  ASSERT_TRUE(GuestSaw(agent().Write(gpa, 0x31), 0x31));
  EXPECT_EQ(host.bytes()[0x40], 0x31);
  ASSERT_THAT(Convert(gmem, 0, 1, true), SyscallSucceeds());
  EXPECT_TRUE(GuestSaw(agent().Read(gpa), 0x7e));  // the private contents were kept
}

// With per-file attributes, deleting the memslot of a private guest_memfd page takes the
// privateness with it: the GPA is then plain shared memory without a slot, and the guest's access
// is emulated MMIO (v8's updated private_mem_kvm_exits_test), not a private memory fault as with
// per-VM attributes.
TEST_F(InPlaceGuest, GpaOfDeletedMemslotExitsAsMmio) {
  const uint64_t size = 2 * PageSize(), gpa = kAgentDataGpa + PageSize() + 0x20;
  ASSERT_OK_AND_ASSIGN(GuestMemfd gmem, vm().CreateGuestMemfd(size, GUEST_MEMFD_FLAG_MMAP));
  ASSERT_OK_AND_ASSIGN(Mapping host, gmem.Map(size));
  ASSERT_OK(BindGuestMemfd(gmem, size, host.start()));
  ASSERT_TRUE(GuestSaw(agent().Write(gpa, 0x6b), 0x6b));  // private, served by guest_memfd

  ASSERT_THAT(DeleteMemslot(), SyscallSucceeds());
  GuestAccess access = agent().Read(gpa);
  EXPECT_TRUE(access.run.ok() && access.exit_reason == KVM_EXIT_MMIO && access.mmio_phys_addr == gpa)
      << access.Describe();
}

}  // namespace
}  // namespace gmem
