// PLACEHOLDER until the kernel lands (replaced in this session).
#include "backend/cpu/kernels.h"

namespace darkroom::cpu {
void permute(const PermuteArgs&) { fail("permute", "cpu kernel not written yet"); }
}  // namespace darkroom::cpu
