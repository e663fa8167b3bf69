// PLACEHOLDER until the kernel lands (replaced in this session).
#include "backend/cpu/kernels.h"

namespace darkroom::cpu {
void attention(const AttentionArgs&) { fail("attention", "cpu kernel not written yet"); }
}  // namespace darkroom::cpu
