// PLACEHOLDER until the kernel lands (replaced in this session).
#include "backend/cpu/kernels.h"

namespace darkroom::cpu {
void cast(const CastArgs&) { fail("cast", "cpu kernel not written yet"); }
}  // namespace darkroom::cpu
