// PLACEHOLDER until the kernel lands (replaced in this session).
#include "backend/cpu/kernels.h"

namespace darkroom::cpu {
void geglu(const GegluArgs&) { fail("geglu", "cpu kernel not written yet"); }
}  // namespace darkroom::cpu
