#include "bench/paging_guest.h"

#include <sys/ioctl.h>

#include <fmt/format.h>

#include <cerrno>

#include "fixtures/errno_name.h"
#include "fixtures/guest.h"

namespace gmembench {

gmem::Status SetTouchLoopEntry(const gmem::Vcpu& vcpu, uint64_t gpa, uint64_t pages, uint64_t stride) {
  kvm_sregs sregs{};
  gmem::SyscallResult r = gmem::RawIoctl(vcpu.fd(), KVM_GET_SREGS, &sregs, "&sregs");
  if (!r.ok()) return gmem::Error::FromSyscall(r);
  kvm_segment code{};
  code.base = 0;
  code.limit = 0xffffffff;
  code.selector = 0x8;
  code.type = 0xb;  // execute/read, accessed
  code.present = 1;
  code.db = 1;      // 32-bit
  code.s = 1;
  code.g = 1;
  sregs.cs = code;
  kvm_segment data = code;
  data.selector = 0x10;
  data.type = 0x3;  // read/write, accessed
  for (kvm_segment* seg : {&sregs.ds, &sregs.es, &sregs.fs, &sregs.gs, &sregs.ss}) *seg = data;
  sregs.cr0 = 0x11;  // PE | ET; caches enabled (the reset value has CD|NW set)
  sregs.cr4 = 0;
  sregs.efer = 0;
  r = gmem::RawIoctl(vcpu.fd(), KVM_SET_SREGS, &sregs, "flat 32-bit protected mode");
  if (!r.ok()) return gmem::Error::FromSyscall(r);
  kvm_regs regs{};
  regs.rip = kPagingCodeGpa;
  regs.rflags = 0x2;
  regs.rbx = gpa;
  regs.rcx = pages;
  regs.rdx = stride;
  r = gmem::RawIoctl(vcpu.fd(), KVM_SET_REGS, &regs,
                     fmt::format("rip={:#x}, rbx={:#x}, rcx={}, rdx={:#x}", kPagingCodeGpa, gpa, pages, stride));
  if (!r.ok()) return gmem::Error::FromSyscall(r);
  return gmem::Ok{};
}

gmem::Status RunUntilHalt(const gmem::Vcpu& vcpu) {
  while (true) {
    // KVM_RUN directly: this runs on the measured path.
    if (ioctl(vcpu.fd(), KVM_RUN, 0) < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return gmem::Error(fmt::format("KVM_RUN(vcpu fd {})", vcpu.fd()), errno,
                         fmt::format("exit reason {}", gmem::ExitReasonName(vcpu.run()->exit_reason)));
    }
    uint32_t reason = vcpu.run()->exit_reason;
    if (reason == KVM_EXIT_HLT) return gmem::Ok{};
    if (reason == KVM_EXIT_INTR) continue;
    kvm_regs regs{};
    ioctl(vcpu.fd(), KVM_GET_REGS, &regs);
    return gmem::Error(fmt::format("KVM_RUN(vcpu fd {})", vcpu.fd()), 0,
                       fmt::format("unexpected {} at rip {:#x} (rbx {:#x}, rcx {})", gmem::ExitReasonName(reason),
                                   static_cast<uint64_t>(regs.rip), static_cast<uint64_t>(regs.rbx),
                                   static_cast<uint64_t>(regs.rcx)));
  }
}

}  // namespace gmembench
