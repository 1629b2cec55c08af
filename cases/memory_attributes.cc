// KVM_CAP_MEMORY_ATTRIBUTES per VM type. KVM_SET_MEMORY_ATTRIBUTES' argument checks and the
// default VM's answers are in conversion_vm_attributes.cc (DefaultVmAttributes, VmAttributes).

#include <gtest/gtest.h>

#include "fixtures/kvm.h"
#include "fixtures/require.h"
#include "fixtures/vm_fixture.h"

namespace gmem {
namespace {

// The VM types whose memory can be private (kvm->arch.has_private_mem on x86).
bool HasPrivateMemory(unsigned long type) {
  return type == KVM_X86_SW_PROTECTED_VM || type == KVM_X86_SNP_VM || type == KVM_X86_TDX_VM;
}

// A VM of the parameter's type (skipped, with the probe's reason, where the type is missing).
class MemoryAttributesCap : public VmTest, public ::testing::WithParamInterface<unsigned long> {
 protected:
  MemoryAttributesCap() : VmTest(GetParam()) {}
};

// A VM advertises PRIVATE exactly when its type has private memory, never more than /dev/kvm does.
TEST_P(MemoryAttributesCap, AdvertisedExactlyWithPrivateMemory) {
  long system = kvm().CheckExtension(KVM_CAP_MEMORY_ATTRIBUTES);
  long per_vm = vm().CheckExtension(KVM_CAP_MEMORY_ATTRIBUTES);
  SCOPED_TRACE("KVM_CHECK_EXTENSION(KVM_CAP_MEMORY_ATTRIBUTES) on a " + VmTypeName(GetParam()) +
               " (per_vm) and on /dev/kvm (system)");
  EXPECT_EQ(per_vm & ~system, 0);
  if (!HasPrivateMemory(GetParam())) {
    EXPECT_EQ(per_vm, 0) << "the VM type has no private memory";
  } else if (ProbedFeatures().Has("gmem.ioctl.SET_MEMORY_ATTRIBUTES2")) {
    GTEST_SKIP() << "in-place conversion (gmem.ioctl.SET_MEMORY_ATTRIBUTES2) may retire per-VM "
                    "attributes; its family covers the answer";
  } else {
    EXPECT_EQ(per_vm, static_cast<long>(KVM_MEMORY_ATTRIBUTE_PRIVATE)) << "the VM type has private memory";
  }
}

// KVM_CAP_MEMORY_FAULT_INFO is a yes/no capability: where present it reads 1, on /dev/kvm and on
// every VM type alike.
TEST_P(MemoryAttributesCap, MemoryFaultInfoReadsOne) {
  REQUIRE_FEATURE("kvm.cap.MEMORY_FAULT_INFO");
  EXPECT_EQ(kvm().CheckExtension(KVM_CAP_MEMORY_FAULT_INFO), 1) << "KVM_CHECK_EXTENSION(KVM_CAP_MEMORY_FAULT_INFO) on /dev/kvm";
  EXPECT_EQ(vm().CheckExtension(KVM_CAP_MEMORY_FAULT_INFO), 1)
      << "KVM_CHECK_EXTENSION(KVM_CAP_MEMORY_FAULT_INFO) on a " << VmTypeName(GetParam());
}

INSTANTIATE_TEST_SUITE_P(, MemoryAttributesCap,
                         ::testing::Values(KVM_X86_DEFAULT_VM, KVM_X86_SW_PROTECTED_VM, KVM_X86_SEV_VM,
                                           KVM_X86_SEV_ES_VM, KVM_X86_SNP_VM, KVM_X86_TDX_VM),
                         [](const ::testing::TestParamInfo<unsigned long>& info) {
                           return VmTypeName(info.param);
                         });

}  // namespace
}  // namespace gmem
