// PLACEHOLDER until the kernel lands (replaced in this session).
#include "backend/cpu/kernels.h"

namespace darkroom::cpu {
void binary(const BinaryArgs&) { fail("binary", "cpu kernel not written yet"); }
}  // namespace darkroom::cpu
