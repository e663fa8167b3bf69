// PLACEHOLDER until the kernel lands (replaced in this session).
#include "backend/cpu/kernels.h"

namespace darkroom::cpu {
void slice(const SliceArgs&) { fail("slice", "cpu kernel not written yet"); }
}  // namespace darkroom::cpu
