#include <cstdio>

#include "bench/bench_cuda_ops.h"
#include "bench/bench_ops.h"
#include "bench/bench_unet.h"
#include "cli/commands.h"

namespace darkroom::cli {

int run_bench(const std::vector<std::string>& args) {
  if (args.empty() || args[0] == "--help") {
    std::puts(
        "usage: darkroom bench ops [--json] [--dtype f32|bf16] [--repeat N]\n"
        "       darkroom bench cuda-ops [--json]\n"
        "       darkroom bench unet [--device cpu|cuda] [--dtype D] [--size 512] [--iters N] [--json]");
    return args.empty() ? 2 : 0;
  }
  if (args[0] == "ops") return bench::run_ops({args.begin() + 1, args.end()});
  if (args[0] == "unet") return bench::run_unet({args.begin() + 1, args.end()});
  if (args[0] == "cuda-ops") return bench::run_cuda_ops({args.begin() + 1, args.end()});
  std::fprintf(stderr, "darkroom bench: unknown suite '%s' (available: ops, cuda-ops, unet)\n",
               args[0].c_str());
  return 2;
}

}  // namespace darkroom::cli
