// NUMA memory policy on a guest_memfd mapping: what mbind() sets and get_mempolicy() reports
// through the mapping, and which node guest_memfd pages land on. Raw syscalls, no libnuma.

#include <gtest/gtest.h>
#include <linux/falloc.h>
#include <linux/mempolicy.h>
#include <sys/syscall.h>

#include <fmt/format.h>

#include <algorithm>
#include <string>
#include <vector>

#include "fixtures/fault.h"
#include "fixtures/kernel_changes.h"
#include "fixtures/kvm.h"
#include "fixtures/require.h"
#include "fixtures/syscall_matchers.h"
#include "fixtures/vm_fixture.h"

namespace gmem {
namespace {

// A node mask as the syscalls take it. The kernel reads maxnode - 1 bits.
struct NodeMask {
  static constexpr unsigned long kMaxNode = 16 * 64 + 1;
  unsigned long bits[16] = {};

  static NodeMask Of(int node) {
    NodeMask mask;
    mask.bits[node / 64] |= 1UL << (node % 64);
    return mask;
  }
  std::string ToString() const {
    std::string out;
    for (int node = 0; node < 16 * 64; ++node)
      if (bits[node / 64] & (1UL << (node % 64))) out += fmt::format("{}{}", out.empty() ? "" : ",", node);
    return "{" + out + "}";
  }
};

std::string ModeName(int mode) {
  switch (mode) {
    case MPOL_DEFAULT: return "MPOL_DEFAULT";
    case MPOL_PREFERRED: return "MPOL_PREFERRED";
    case MPOL_BIND: return "MPOL_BIND";
    case MPOL_INTERLEAVE: return "MPOL_INTERLEAVE";
    default: return fmt::format("mode {}", mode);
  }
}

// "MPOL_BIND {0}": what a policy looks like in expectations and failure messages.
std::string Policy(int mode, const NodeMask& nodes) { return ModeName(mode) + " " + nodes.ToString(); }

SyscallResult RawMbind(void* addr, size_t length, int mode, const NodeMask* nodes) {
  long ret = RawSyscall(SYS_mbind, reinterpret_cast<long>(addr), static_cast<long>(length), mode,
                        reinterpret_cast<long>(nodes ? nodes->bits : nullptr),
                        nodes ? static_cast<long>(NodeMask::kMaxNode) : 0, 0);
  int err = errno;
  return SyscallResult::Capture(ret, err, fmt::format("mbind({}, {:#x}, {}, {}, {}, 0)", addr, length,
                                                      ModeName(mode), nodes ? nodes->ToString() : "NULL",
                                                      nodes ? NodeMask::kMaxNode : 0));
}

// get_mempolicy(MPOL_F_ADDR) at `addr`, as "MODE {nodes}".
Result<std::string> PolicyAt(void* addr) {
  int mode = -1;
  NodeMask nodes;
  long ret = RawSyscall(SYS_get_mempolicy, reinterpret_cast<long>(&mode), reinterpret_cast<long>(nodes.bits),
                        static_cast<long>(NodeMask::kMaxNode), reinterpret_cast<long>(addr), MPOL_F_ADDR);
  if (ret != 0) return Error(fmt::format("get_mempolicy(MPOL_F_ADDR at {})", addr), errno);
  return Policy(mode, nodes);
}

// The node holding the page at `addr`, as move_pages() (query only) reports it.
Result<int> NodeOfPage(void* addr) {
  void* pages[1] = {addr};
  int status = -1;
  long ret = RawSyscall(SYS_move_pages, 0, 1, reinterpret_cast<long>(pages), 0, reinterpret_cast<long>(&status), 0);
  if (ret != 0) return Error(fmt::format("move_pages(0, 1, [{}], NULL)", addr), errno);
  if (status < 0) return Error(fmt::format("move_pages(0, 1, [{}], NULL): status", addr), -status);
  return status;
}

// The node get_mempolicy(MPOL_F_NODE | MPOL_F_ADDR) reports for the page at `addr`.
Result<int> NodeByGetMempolicy(void* addr) {
  int node = -1;
  long ret = RawSyscall(SYS_get_mempolicy, reinterpret_cast<long>(&node), 0, 0, reinterpret_cast<long>(addr),
                        MPOL_F_NODE | MPOL_F_ADDR);
  if (ret != 0) return Error(fmt::format("get_mempolicy(MPOL_F_NODE|MPOL_F_ADDR at {})", addr), errno);
  return node;
}

// Nodes with memory, from "0-1,3"-style /sys/devices/system/node/has_memory.
std::vector<int> NodesWithMemory() {
  std::vector<int> nodes;
  auto text = sys().ReadFile("/sys/devices/system/node/has_memory");
  if (!text) return nodes;
  for (size_t pos = 0; pos < text->size();) {
    size_t end = text->find_first_of(",\n", pos);
    std::string part = text->substr(pos, end - pos);
    if (!part.empty()) {
      size_t dash = part.find('-');
      int first = std::stoi(part.substr(0, dash));
      int last = dash == std::string::npos ? first : std::stoi(part.substr(dash + 1));
      for (int node = first; node <= last; ++node) nodes.push_back(node);
    }
    if (end == std::string::npos) break;
    pos = end + 1;
  }
  return nodes;
}

// A mappable, shared guest_memfd of four pages, mapped once.
class GmemNumaPolicy : public VmTest {
 protected:
  void SetUp() override {
    VmTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    REQUIRE_FEATURE("numa");
    REQUIRE_FEATURE("gmem");
    REQUIRE_FEATURE("gmem.flag.MMAP");
    REQUIRE_FEATURE("gmem.flag.INIT_SHARED");
    nodes_ = NodesWithMemory();
    ASSERT_FALSE(nodes_.empty()) << "/sys/devices/system/node/has_memory lists no node";
    ASSERT_LT(nodes_.back(), 16 * 64);
    ASSERT_OK_AND_ASSIGN(gmem_, vm().CreateGuestMemfd(4 * page_size(), GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED));
    ASSERT_OK_AND_ASSIGN(mapping_, gmem_.Map(4 * page_size()));
  }

  uint8_t* page(int i) const { return mapping_.bytes() + i * page_size(); }

  std::vector<int> nodes_;
  GuestMemfd gmem_;
  Mapping mapping_;
};

// MPOL_BIND, MPOL_PREFERRED and MPOL_INTERLEAVE set through the mapping read back unchanged.
TEST_F(GmemNumaPolicy, PolicyRoundTrips) {
  NodeMask first = NodeMask::Of(nodes_.front());
  for (int mode : {MPOL_BIND, MPOL_PREFERRED, MPOL_INTERLEAVE}) {
    ASSERT_THAT(RawMbind(mapping_.addr(), mapping_.length(), mode, &first), SyscallSucceeds());
    for (int i : {0, 3}) {
      ASSERT_OK_AND_ASSIGN(std::string policy, PolicyAt(page(i)));
      EXPECT_EQ(policy, Policy(mode, first)) << "get_mempolicy at page " << i << " after mbind " << ModeName(mode);
    }
  }
}

// MPOL_DEFAULT removes the policy again.
TEST_F(GmemNumaPolicy, DefaultClearsThePolicy) {
  NodeMask first = NodeMask::Of(nodes_.front());
  ASSERT_THAT(RawMbind(mapping_.addr(), mapping_.length(), MPOL_BIND, &first), SyscallSucceeds());
  ASSERT_THAT(RawMbind(mapping_.addr(), mapping_.length(), MPOL_DEFAULT, nullptr), SyscallSucceeds());
  ASSERT_OK_AND_ASSIGN(std::string policy, PolicyAt(page(0)));
  EXPECT_EQ(policy, Policy(MPOL_DEFAULT, NodeMask{}));
}

// A policy covers the pages mbind() was given and no others.
TEST_F(GmemNumaPolicy, PolicyCoversOnlyItsRange) {
  NodeMask first = NodeMask::Of(nodes_.front());
  ASSERT_THAT(RawMbind(page(1), page_size(), MPOL_BIND, &first), SyscallSucceeds());
  std::vector<std::string> want = {Policy(MPOL_DEFAULT, {}), Policy(MPOL_BIND, first), Policy(MPOL_DEFAULT, {})};
  for (int i = 0; i < 3; ++i) {
    ASSERT_OK_AND_ASSIGN(std::string policy, PolicyAt(page(i)));
    EXPECT_EQ(policy, want[i]) << "page " << i;
  }
}

// An unknown mode is refused.
TEST_F(GmemNumaPolicy, RejectsUnknownMode) {
  NodeMask first = NodeMask::Of(nodes_.front());
  EXPECT_THAT(RawMbind(mapping_.addr(), page_size(), 999, &first), SyscallFailsWithErrno(EINVAL));
}

// A faulted-in page's node is reported alike by move_pages() and get_mempolicy(MPOL_F_NODE).
TEST_F(GmemNumaPolicy, FaultedPageReportsItsNode) {
  ASSERT_TRUE(TouchSucceeds(page(0), Access::kWrite));
  ASSERT_OK_AND_ASSIGN(int node, NodeOfPage(page(0)));
  ASSERT_OK_AND_ASSIGN(int reported, NodeByGetMempolicy(page(0)));
  EXPECT_EQ(reported, node);
  EXPECT_NE(std::find(nodes_.begin(), nodes_.end(), node), nodes_.end()) << "node " << node << " has no memory";
}

// A policy set through one mapping is (from 6.19) the file's, seen through another mapping.
TEST_F(GmemNumaPolicy, PolicyIsSharedBetweenMappings) {
  ChangeVerdict change = ForRunningKernel("gmem_numa_shared_policy");
  SCOPED_TRACE(change.explanation());
  ASSERT_TRUE(change.known());
  ASSERT_OK_AND_ASSIGN(Mapping other, gmem_.Map(4 * page_size()));
  NodeMask first = NodeMask::Of(nodes_.front());
  ASSERT_THAT(RawMbind(mapping_.addr(), mapping_.length(), MPOL_BIND, &first), SyscallSucceeds());
  ASSERT_OK_AND_ASSIGN(std::string policy, PolicyAt(other.addr()));
  EXPECT_EQ(policy, change.Pick(Policy(MPOL_DEFAULT, {}), Policy(MPOL_BIND, first)));
}

// ---- two or more nodes (e.g. a guest booted with numa=fake=2) ----

class GmemNumaPlacement : public GmemNumaPolicy {
 protected:
  void SetUp() override {
    GmemNumaPolicy::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    REQUIRE_FEATURE("numa.multi_node");
    ChangeVerdict change = ForRunningKernel("gmem_numa_shared_policy");
    if (!change.gives_new())
      GTEST_SKIP() << "guest_memfd allocations ignore mbind() on this kernel: " << change.explanation();
  }

  // Writes every page, then returns the node each one landed on.
  std::vector<int> TouchAndLocate() {
    std::vector<int> where;
    for (int i = 0; i < 4; ++i) {
      EXPECT_TRUE(TouchSucceeds(page(i), Access::kWrite));
      auto node = NodeOfPage(page(i));
      EXPECT_TRUE(node.ok()) << node.error().message();
      where.push_back(node.ok() ? node.value() : -1);
    }
    return where;
  }
};

// Pages allocated after mbind() land on the bound node, range by range.
TEST_F(GmemNumaPlacement, PagesLandOnTheBoundNode) {
  int a = nodes_.front(), b = nodes_.back();
  NodeMask on_a = NodeMask::Of(a), on_b = NodeMask::Of(b);
  ASSERT_THAT(RawMbind(page(0), 2 * page_size(), MPOL_BIND, &on_b), SyscallSucceeds());
  ASSERT_THAT(RawMbind(page(2), 2 * page_size(), MPOL_BIND, &on_a), SyscallSucceeds());
  EXPECT_EQ(TouchAndLocate(), (std::vector<int>{b, b, a, a}));
}

// A new policy does not move pages already allocated; pages allocated again follow it.
TEST_F(GmemNumaPlacement, NewPolicyAppliesToNewAllocationsOnly) {
  int a = nodes_.front(), b = nodes_.back();
  NodeMask on_a = NodeMask::Of(a), on_b = NodeMask::Of(b);
  ASSERT_THAT(RawMbind(mapping_.addr(), mapping_.length(), MPOL_BIND, &on_b), SyscallSucceeds());
  ASSERT_EQ(TouchAndLocate(), (std::vector<int>{b, b, b, b}));
  ASSERT_THAT(RawMbind(mapping_.addr(), mapping_.length(), MPOL_BIND, &on_a), SyscallSucceeds());
  EXPECT_EQ(TouchAndLocate(), (std::vector<int>{b, b, b, b}));
  ASSERT_THAT(gmem_.RawPunchHole(0, static_cast<off_t>(mapping_.length())), SyscallSucceeds());
  EXPECT_EQ(TouchAndLocate(), (std::vector<int>{a, a, a, a}));
}

}  // namespace
}  // namespace gmem
