#pragma once

// The demand-paging guest: a VM whose vCPUs run a few bytes of 32-bit protected-mode code (flat
// segments, no paging) that write one byte to every page of their own region of guest memory
// and then HLT. Real mode reaches only 1 MiB; flat protected mode reaches 4 GiB with no page
// tables to set up.

#include <cstdint>
#include <vector>

#include "fixtures/kvm.h"

namespace gmembench {

inline constexpr uint64_t kPagingCodeGpa = 0x1000;
inline constexpr uint64_t kPagingCodeSlotSize = 0x10000;
inline constexpr uint64_t kPagingDataGpa = 1ULL << 30;
// The last byte a 32-bit guest can address, less the code below kPagingDataGpa.
inline constexpr uint64_t kPagingMaxData = (4ULL << 30) - kPagingDataGpa;

// for (ebx = region; ecx--; ebx += edx) *(uint8_t*)ebx = 1; then hlt forever.
inline constexpr uint8_t kTouchLoop[] = {
    0xc6, 0x03, 0x01,  // mov byte [ebx], 1
    0x01, 0xd3,        // add ebx, edx
    0x49,              // dec ecx
    0x75, 0xf8,        // jnz -8 (the mov)
    0xf4,              // hlt
    0xeb, 0xfd,        // jmp -3 (the hlt)
};

// Puts `vcpu` in flat 32-bit protected mode at kPagingCodeGpa, set to touch `pages` pages of
// `stride` bytes from `gpa`.
gmem::Status SetTouchLoopEntry(const gmem::Vcpu& vcpu, uint64_t gpa, uint64_t pages, uint64_t stride);

// Runs `vcpu` until it halts. Any other exit is an error naming the exit.
gmem::Status RunUntilHalt(const gmem::Vcpu& vcpu);

}  // namespace gmembench
