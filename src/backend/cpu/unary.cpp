// PLACEHOLDER until the kernel lands (replaced in this session).
#include "backend/cpu/kernels.h"

namespace darkroom::cpu {
void unary(const UnaryArgs&) { fail("unary", "cpu kernel not written yet"); }
}  // namespace darkroom::cpu
