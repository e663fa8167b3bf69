#include <cstdio>

#include "bench/bench_cuda_ops.h"
#include "bench/bench_lora.h"
#include "bench/bench_ops.h"
#include "bench/bench_pipeline.h"
#include "bench/bench_unet.h"
#include "cli/commands.h"

namespace darkroom::cli {

int run_bench(const std::vector<std::string>& args) {
  if (args.empty() || args[0] == "--help") {
    std::puts(
        "usage: darkroom bench ops [--json] [--dtype f32|bf16] [--repeat N]\n"
        "       darkroom bench cuda-ops [--json]\n"
        "       darkroom bench unet [--model sd15|sdxl] [--device cpu|cuda[:N] | --cuda-device N]\n"
        "                           [--dtype D] [--size 512|1024] [--iters N] [--graph on|off] "
        "[--json]\n"
        "       darkroom bench sd15|sdxl [--dtype f32|bf16|both] [--size N] [--steps N]\n"
        "                           [--threads N] [--json]\n"
        "       darkroom bench lora [--dtype f32|bf16] [--dir DIR] [--rank N] [--repeat N] "
        "[--json]");
    return args.empty() ? 2 : 0;
  }
  if (args[0] == "ops") return bench::run_ops({args.begin() + 1, args.end()});
  if (args[0] == "lora") return bench::run_lora_bench({args.begin() + 1, args.end()});
  if (args[0] == "unet") return bench::run_unet({args.begin() + 1, args.end()});
  if (args[0] == "sd15" || args[0] == "sdxl")
    return bench::run_pipeline_bench(args[0], {args.begin() + 1, args.end()});
  if (args[0] == "cuda-ops") return bench::run_cuda_ops({args.begin() + 1, args.end()});
  std::fprintf(
      stderr,
      "darkroom bench: unknown suite '%s' (available: ops, cuda-ops, unet, sd15, sdxl, lora)\n",
      args[0].c_str());
  return 2;
}

}  // namespace darkroom::cli
