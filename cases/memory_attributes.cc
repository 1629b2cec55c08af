// KVM_CAP_MEMORY_ATTRIBUTES per VM type. KVM_SET_MEMORY_ATTRIBUTES' argument checks and the
// default VM's answers are in conversion_vm_attributes.cc (DefaultVmAttributes, VmAttributes).

#include <gtest/gtest.h>

#include <string>

#include "fixtures/kvm.h"
#include "fixtures/require.h"

namespace gmem {
namespace {

// "vm_type.SW_PROTECTED" for KVM_X86_SW_PROTECTED_VM: the probe's name for the type.
std::string VmTypeFeature(unsigned long type) {
  std::string name = VmTypeName(type);  // KVM_X86_<X>_VM
  return "vm_type." + name.substr(8, name.size() - 11);
}

// The VM types whose memory can be private (kvm->arch.has_private_mem on x86).
bool HasPrivateMemory(unsigned long type) {
  return type == KVM_X86_SW_PROTECTED_VM || type == KVM_X86_SNP_VM || type == KVM_X86_TDX_VM;
}

class MemoryAttributesCap : public ::testing::TestWithParam<unsigned long> {};

// A VM advertises PRIVATE exactly when its type has private memory, never more than /dev/kvm does.
TEST_P(MemoryAttributesCap, AdvertisedExactlyWithPrivateMemory) {
  REQUIRE_FEATURE("kvm");
  REQUIRE_FEATURE(VmTypeFeature(GetParam()));
  ASSERT_OK_AND_ASSIGN(Kvm kvm, Kvm::Open());
  ASSERT_OK_AND_ASSIGN(Vm vm, kvm.CreateVm(GetParam()));
  long system = kvm.CheckExtension(KVM_CAP_MEMORY_ATTRIBUTES);
  long per_vm = vm.CheckExtension(KVM_CAP_MEMORY_ATTRIBUTES);
  EXPECT_EQ(per_vm & ~system, 0) << "VM-scope " << per_vm << " beyond system-scope " << system;
  if (!HasPrivateMemory(GetParam())) {
    EXPECT_EQ(per_vm, 0) << VmTypeName(GetParam()) << " has no private memory";
  } else if (ProbedFeatures().Has("gmem.ioctl.SET_MEMORY_ATTRIBUTES2")) {
    GTEST_SKIP() << "in-place conversion (gmem.ioctl.SET_MEMORY_ATTRIBUTES2) may retire per-VM "
                    "attributes; its family covers the answer";
  } else {
    EXPECT_EQ(per_vm, static_cast<long>(KVM_MEMORY_ATTRIBUTE_PRIVATE)) << VmTypeName(GetParam());
  }
}

INSTANTIATE_TEST_SUITE_P(, MemoryAttributesCap,
                         ::testing::Values(KVM_X86_DEFAULT_VM, KVM_X86_SW_PROTECTED_VM, KVM_X86_SEV_VM,
                                           KVM_X86_SEV_ES_VM, KVM_X86_SNP_VM, KVM_X86_TDX_VM),
                         [](const ::testing::TestParamInfo<unsigned long>& info) {
                           return VmTypeFeature(info.param).substr(8);
                         });

}  // namespace
}  // namespace gmem
