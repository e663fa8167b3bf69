// Builds the SD 1.5 UNet from the reference tensor list with seeded random weights (the
// cost of a network does not depend on its weight values), then times forward passes
// of a batch of 2 latents (cond + uncond) at the chosen size. One such pass is one
// sampler step with CFG, so steps/s is the it/s ComfyUI reports for batch 1.
#include "bench/bench_unet.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>

#include "backend/device.h"
#include "backend/ops.h"
#include "models/unet.h"
#include "pipeline/demo_weights.h"
#include "pipeline/sd15_tensor_list.h"

namespace darkroom::bench {
namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

int run_unet(const std::vector<std::string>& args) {
  DeviceId device = kCpu;
  DType dtype = cpu_device().compute_dtype();
  bool dtype_given = false, json = false;
  int size = 512, iters = 5;
  for (size_t i = 0; i < args.size(); ++i) {
    auto value = [&]() -> const std::string& {
      if (i + 1 >= args.size()) fail("bench unet", args[i], " needs a value");
      return args[++i];
    };
    if (args[i] == "--device") {
      const std::string& d = value();
      if (d == "cpu") {
        device = kCpu;
      } else if (d.rfind("cuda", 0) == 0) {
        device = {DeviceType::Cuda, d.size() > 5 ? std::stoi(d.substr(5)) : 0};
      } else {
        fail("bench unet", "unknown device '", d, "' (cpu, cuda, cuda:N)");
      }
    } else if (args[i] == "--dtype") {
      dtype = parse_dtype(value());
      dtype_given = true;
    } else if (args[i] == "--size") {
      size = std::stoi(value());
    } else if (args[i] == "--iters") {
      iters = std::max(1, std::stoi(value()));
    } else if (args[i] == "--json") {
      json = true;
    } else {
      fail("bench unet", "unknown option '", args[i],
           "' (--device cpu|cuda[:N], --dtype, --size, --iters, --json)");
    }
  }
  Device& dev = device_for(device);
  if (!dtype_given) dtype = dev.compute_dtype();
  DR_CHECK(size % 64 == 0 && size >= 64, "bench unet", "--size must be a multiple of 64");

  // Weights: the SD 1.5 UNet's 686 tensors, random, f16 in host memory (as a file would
  // hold them), cast and placed by Weights like a real checkpoint's.
  const double t_load = now_s();
  std::map<std::string, Tensor> tensors;
  const std::string prefix = "model.diffusion_model.";
  for (const auto& [name, shape] : pipeline::parse_tensor_list(pipeline::sd15_ldm_tensor_tsv()))
    if (name.rfind(prefix, 0) == 0)
      tensors.emplace(name, pipeline::demo_tensor(name, shape, 1, DType::F16));
  const Weights w = Weights::from_tensors(std::move(tensors), prefix, device, dtype);
  const UNet unet = UNet::load(w, UNetConfig::detect(w));
  dev.synchronize();
  const double load_s = now_s() - t_load;

  const int64_t lat = size / 8;
  std::vector<float> xs(static_cast<size_t>(2 * lat * lat * 4)), cs(2 * 77 * 768);
  for (size_t i = 0; i < xs.size(); ++i) xs[i] = static_cast<float>((i * 7919) % 200) / 100 - 1;
  for (size_t i = 0; i < cs.size(); ++i) cs[i] = static_cast<float>((i * 104729) % 200) / 100 - 1;
  const Tensor x = ops::to_device(Tensor::from_floats(xs, {2, lat, lat, 4}), device);
  const Tensor ctx = ops::to_device(Tensor::from_floats(cs, {2, 77, 768}), device);
  const std::vector<float> ts{500.0f, 500.0f};
  const Tensor t = ops::to_device(Tensor::from_floats(ts, {2}), device);

  Tensor eps = unet.forward(x, t, ctx);  // warm-up: plans, algorithm search, caches
  dev.synchronize();
  const double t0 = now_s();
  for (int i = 0; i < iters; ++i) eps = unet.forward(x, t, ctx);
  dev.synchronize();
  const double step_s = (now_s() - t0) / iters;

  const std::vector<float> out = ops::to_device(eps, kCpu).to_floats();
  bool finite = true;
  for (float v : out) finite = finite && std::isfinite(v);
  if (json) {
    std::printf(
        "{\"model\":\"sd15_unet\",\"device\":\"%s\",\"dtype\":\"%s\",\"size\":%d,\"batch\":2,"
        "\"step_ms\":%.3f,\"it_per_s\":%.3f,\"load_s\":%.2f,\"finite\":%s}\n",
        device.str().c_str(), std::string(dtype_name(dtype)).c_str(), size, step_s * 1e3,
        1.0 / step_s, load_s, finite ? "true" : "false");
  } else {
    std::printf("%s\nSD 1.5 UNet, %dx%d, batch 2 (CFG), %s: %.1f ms/step = %.2f it/s "
                "(mean of %d; load %.1f s; output %s)\n",
                dev.description().c_str(), size, size, std::string(dtype_name(dtype)).c_str(),
                step_s * 1e3, 1.0 / step_s, iters, load_s, finite ? "finite" : "NOT FINITE");
  }
  return finite ? 0 : 1;
}

}  // namespace darkroom::bench
