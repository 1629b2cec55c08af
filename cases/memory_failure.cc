// Memory failure on guest_memfd memory: MADV_HWPOISON on a host mapping of a guest_memfd
// (MMAP|INIT_SHARED), then what the host, the guest and a punch-hole over the page each get.
// Needs CONFIG_MEMORY_FAILURE and CAP_SYS_ADMIN (probe feature mm.madv_hwpoison). A poisoned page
// stays poisoned and the kernel may signal the process that poisoned it, so every case runs its
// body in a child process that reports what it saw.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <string>

#include <fmt/format.h>

#include "fixtures/errno_name.h"
#include "fixtures/fault.h"
#include "fixtures/guest_payloads.h"
#include "fixtures/mapping.h"
#include "fixtures/require.h"
#include "fixtures/shared_gmem.h"
#include "fixtures/syscall_matchers.h"
#include "fixtures/uapi/mm_mainline.h"
#include "fixtures/vm_fixture.h"

namespace gmem {
namespace {

uint64_t PageSize() { return static_cast<uint64_t>(getpagesize()); }

// What a child found wrong, one line per broken statement; empty when all held.
class Findings {
 public:
  void Check(bool held, const std::string& what) {
    if (!held) text_ += what + "\n";
  }
  const std::string& text() const { return text_; }

 private:
  std::string text_;
};

// Runs `body` in a child process; returns its findings, or how the child ended abnormally.
std::string InChild(const std::function<void(Findings&)>& body) {
  int fds[2];
  if (pipe(fds) != 0) return fmt::format("pipe: {}", ErrnoName(errno));
  pid_t child = fork();
  if (child < 0) return fmt::format("fork: {}", ErrnoName(errno));
  if (child == 0) {
    close(fds[0]);
    Findings findings;
    body(findings);
    const std::string& text = findings.text();
    size_t done = 0;
    while (done < text.size()) {
      ssize_t n = write(fds[1], text.data() + done, text.size() - done);
      if (n <= 0) break;
      done += static_cast<size_t>(n);
    }
    _exit(0);
  }
  close(fds[1]);
  std::string out;
  char buf[512];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(child, &status, 0);
  if (WIFSIGNALED(status))
    out += fmt::format("the child was killed by signal {} ({})\n", WTERMSIG(status), strsignal(WTERMSIG(status)));
  else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    out += fmt::format("the child exited with status {}\n", WEXITSTATUS(status));
  return out;
}

// SIGBUS delivered to this thread while a handler is installed (MADV_HWPOISON may signal the
// caller on return from the call).
volatile sig_atomic_t g_sigbus_code = 0;
void RecordSigbus(int, siginfo_t* info, void*) { g_sigbus_code = info->si_code; }

// madvise(MADV_HWPOISON) of one page, with a SIGBUS arriving during the call recorded, not fatal.
struct PoisonOutcome {
  SyscallResult call;
  int sigbus_code = 0;  // si_code of a SIGBUS the call raised; 0 when none
};
PoisonOutcome Poison(uint8_t* page) {
  struct sigaction record {}, old {};
  record.sa_sigaction = RecordSigbus;
  record.sa_flags = SA_SIGINFO;
  sigaction(SIGBUS, &record, &old);
  g_sigbus_code = 0;
  PoisonOutcome out{RawMadvise(page, PageSize(), MADV_HWPOISON), 0};
  out.sigbus_code = g_sigbus_code;
  sigaction(SIGBUS, &old, nullptr);
  return out;
}

std::string Describe(const PoisonOutcome& p) {
  return p.call.Describe() + (p.sigbus_code ? fmt::format(" and SIGBUS si_code {}", p.sigbus_code) : "");
}

// guest_memfd leaves the poisoned folio in the file for KVM to refuse (its error handler delays
// the action), so memory_failure() reports it unrecovered: the call fails with EBUSY and the
// caller, which maps the page, gets SIGBUS with BUS_MCEERR_AR. (Seen on 7.2.13 and 7.3.4.)
void CheckPoisonAnswer(Findings& f, const PoisonOutcome& p) {
  f.Check(!p.call.ok() && p.call.err == EBUSY && p.sigbus_code == BUS_MCEERR_AR,
          Describe(p) + ": expected -1 EBUSY and SIGBUS with BUS_MCEERR_AR (4)");
}

// A guest_memfd of two pages with MMAP|INIT_SHARED, each page written by the host; page 1 is the
// one the cases poison.
class GmemMemoryFailure : public SharedGmemTest {
 protected:
  void SetUp() override {
    SharedGmemTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    REQUIRE_FEATURE("mm.madv_hwpoison");
    SET_UP_SHARED_GMEM(2 * page_size());
    std::memset(map().bytes(), 0x31, page_size());
    std::memset(map().bytes() + page_size(), 0x32, page_size());
  }
  uint8_t* Page(size_t i) { return map().bytes() + i * page_size(); }
};

// The call fails with EBUSY and signals the caller (BUS_MCEERR_AR); afterwards the host gets
// SIGBUS on that page only: the other page keeps its contents.
TEST_F(GmemMemoryFailure, PoisonedPageSigbusesTheHost) {
  std::string findings = InChild([&](Findings& f) {
    CheckPoisonAnswer(f, Poison(Page(1)));
    TouchOutcome read = Touch(Page(1), Access::kRead);
    f.Check(read.signal == SIGBUS, fmt::format("reading the poisoned page: signal {}, expected SIGBUS", read.signal));
    TouchOutcome other = Touch(Page(0), Access::kRead);
    f.Check(other.signal == 0 && other.value == 0x31,
            fmt::format("reading the other page: signal {}, value {:#x}; expected 0x31", other.signal, other.value));
  });
  EXPECT_EQ(findings, "");
}

// Punching a hole over the poisoned page succeeds, yet the mapping that saw the poison keeps
// raising SIGBUS at that address (seen on 7.2.13 and 7.3.4).
TEST_F(GmemMemoryFailure, PunchHoleReplacesThePoisonedPage) {
  std::string findings = InChild([&](Findings& f) {
    CheckPoisonAnswer(f, Poison(Page(1)));
    SyscallResult punched = gmem().RawPunchHole(static_cast<off_t>(page_size()), static_cast<off_t>(page_size()));
    f.Check(punched.ok(), punched.Describe() + ": expected success");
    TouchOutcome read = Touch(Page(1), Access::kRead);
    f.Check(read.signal == SIGBUS,
            fmt::format("reading the punched page through the poisoned mapping: signal {}, value {:#x}; "
                        "expected SIGBUS", read.signal, read.value));
  });
  EXPECT_EQ(findings, "");
}

// A guest access to the poisoned page cannot be served: KVM_RUN fails with EHWPOISON and a
// KVM_EXIT_MEMORY_FAULT for that page (no PRIVATE flag on a default VM); the other page still
// reads. The slot's userspace_addr is other memory, so only guest_memfd could have served it.
TEST(GmemMemoryFailureGuest, GuestAccessExitsWithHwpoison) {
  REQUIRE_FEATURE("mm.madv_hwpoison");
  REQUIRE_FEATURE("gmem.flag.MMAP");
  REQUIRE_FEATURE("gmem.flag.INIT_SHARED");
  REQUIRE_FEATURE(GmemBindFeature(KVM_X86_DEFAULT_VM));
  REQUIRE_FEATURE("vcpu.runs_guest_code");
  REQUIRE_GUEST_MEMFD_FAULTS();
  const uint64_t page = PageSize();
  std::string findings = InChild([&](Findings& f) {
    auto kvm = Kvm::Open();
    if (!kvm.ok()) return f.Check(false, kvm.error().message());
    auto agent = GuestAgent::Create(kvm.value(), KVM_X86_DEFAULT_VM);
    if (!agent.ok()) return f.Check(false, agent.error().message());
    auto gmem = agent.value().vm().CreateGuestMemfd(2 * page, kHostSharedGmemFlags);
    if (!gmem.ok()) return f.Check(false, gmem.error().message());
    auto host = gmem.value().Map(2 * page);
    auto decoy = MapAnonymous(2 * page);
    if (!host.ok() || !decoy.ok()) return f.Check(false, (host.ok() ? decoy.error() : host.error()).message());
    std::memset(host.value().bytes(), 0x41, 2 * page);
    auto slot = Memslot::Create(agent.value().vm(),
                                GmemRegion(kAgentDataSlot, kAgentDataGpa, 2 * page, gmem.value(), 0, decoy.value().start()));
    if (!slot.ok()) return f.Check(false, slot.error().message());

    CheckPoisonAnswer(f, Poison(host.value().bytes() + page));
    GuestAccess other = agent.value().Read(kAgentDataGpa + 0x10);
    f.Check(other.Completed() && other.value == 0x41, "guest read of the other page: " + other.Describe());
    GuestAccess bad = agent.value().Read(kAgentDataGpa + page + 0x10);
    f.Check(!bad.run.ok() && bad.run.err == EHWPOISON && bad.exit_reason == KVM_EXIT_MEMORY_FAULT &&
                bad.fault.gpa == kAgentDataGpa + page && bad.fault.size == page && bad.fault.flags == 0,
            "guest read of the poisoned page: " + bad.Describe() +
                "; expected -1 EHWPOISON with KVM_EXIT_MEMORY_FAULT for that page, flags 0");
  });
  EXPECT_EQ(findings, "");
}

}  // namespace
}  // namespace gmem
