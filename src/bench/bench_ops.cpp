#include "bench/bench_ops.h"

#include "core/error.h"

namespace darkroom::bench {
int run_ops(const std::vector<std::string>&) { fail("bench", "PLACEHOLDER"); }
}  // namespace darkroom::bench
