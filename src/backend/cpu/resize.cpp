// PLACEHOLDER until the kernel lands (replaced in this session).
#include "backend/cpu/kernels.h"

namespace darkroom::cpu {
void resize(const ResizeArgs&) { fail("resize", "cpu kernel not written yet"); }
}  // namespace darkroom::cpu
