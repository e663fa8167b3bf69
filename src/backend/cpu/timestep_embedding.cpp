// PLACEHOLDER until the kernel lands (replaced in this session).
#include "backend/cpu/kernels.h"

namespace darkroom::cpu {
void timestep_embedding(const TimestepEmbeddingArgs&) { fail("timestep_embedding", "cpu kernel not written yet"); }
}  // namespace darkroom::cpu
