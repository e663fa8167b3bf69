// `darkroom make-demo-model --out FILE`: an SD 1.5-architecture checkpoint with seeded
// random weights (see pipeline/demo_weights.h), for trying the pipeline without a
// download. Its images are noise.
#include <chrono>
#include <cstdio>
#include <string>

#include "cli/commands.h"
#include "core/error.h"
#include "pipeline/demo_weights.h"
#include "pipeline/reference_tensors.h"

namespace darkroom::cli {

int run_make_demo_model(const std::vector<std::string>& args) {
  std::string out;
  uint64_t seed = 0;
  DType dtype = DType::F16;
  for (size_t i = 0; i < args.size(); ++i) {
    auto value = [&]() -> const std::string& {
      if (i + 1 >= args.size()) fail("make-demo-model", args[i], " needs a value");
      return args[++i];
    };
    if (args[i] == "--out") {
      out = value();
    } else if (args[i] == "--seed") {
      const std::string& v = value();
      try {
        seed = std::stoull(v);
      } catch (...) {
        fail("make-demo-model", "--seed '", v, "' is not a non-negative integer");
      }
    } else if (args[i] == "--dtype") {
      dtype = parse_dtype(value());
      DR_CHECK(dtype == DType::F16 || dtype == DType::BF16 || dtype == DType::F32,
               "make-demo-model", "--dtype must be f16, bf16 or f32");
    } else if (args[i] == "--help" || args[i] == "-h") {
      std::puts(
          "usage: darkroom make-demo-model --out FILE [--seed N] [--dtype f16|bf16|f32]\n"
          "  writes an SD 1.5-architecture single-file checkpoint with random weights\n"
          "  (~2 GB in f16); images generated with it are noise");
      return 0;
    } else {
      fail("make-demo-model", "unknown option '", args[i], "' (see --help)");
    }
  }
  DR_CHECK(!out.empty(), "make-demo-model", "--out FILE is required");
  const auto start = std::chrono::steady_clock::now();
  const auto list = pipeline::parse_tensor_list(pipeline::sd15_ldm_tensor_tsv());
  pipeline::write_demo_checkpoint(out, list, seed, dtype,
                                  {{"darkroom.demo.seed", std::to_string(seed)}});
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("%s (%zu tensors, %.1f s)\n", out.c_str(), list.size(), secs);
  return 0;
}

}  // namespace darkroom::cli
