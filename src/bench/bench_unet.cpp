// Builds the full-size SD 1.5 or SDXL UNet (UNetConfig::sd15() / sdxl(), every tensor
// of the real checkpoint) with seeded random weights (the cost of a network does not
// depend on its weight values), then times forward passes of a batch of 2 latents
// (cond + uncond) at the chosen size. One such pass is one sampler step with CFG, so
// steps/s is the it/s ComfyUI reports for batch 1. On CUDA the step runs through
// UNetRunner: captured into a CUDA graph and replayed (--graph on, the default) or
// eagerly (--graph off).
#include "bench/bench_unet.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>

#include "backend/device.h"
#include "backend/device_graph.h"
#include "backend/ops.h"
#include "bench/bench_util.h"
#include "cli/device_choice.h"
#include "models/unet.h"
#include "models/unet_runner.h"
#include "pipeline/demo_weights.h"

namespace darkroom::bench {
int run_unet(const std::vector<std::string>& args) {
  DeviceId device = kCpu;
  DType dtype = cpu_device().compute_dtype();
  bool dtype_given = false, json = false, graph = true;
  int size = 0, iters = 5;
  std::string model = "sd15";
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
    } else if (args[i] == "--cuda-device") {
      // CUDA device N, or the CPU (with a line saying why) when there is none.
      device = cli::choose_device(cli::parse_cuda_device("bench unet", value()));
    } else if (args[i] == "--dtype") {
      dtype = parse_dtype(value());
      dtype_given = true;
    } else if (args[i] == "--size") {
      size = std::stoi(value());
    } else if (args[i] == "--iters") {
      iters = std::max(1, std::stoi(value()));
    } else if (args[i] == "--json") {
      json = true;
    } else if (args[i] == "--model") {
      model = value();
      DR_CHECK(model == "sd15" || model == "sdxl", "bench unet", "unknown --model '", model,
               "' (sd15, sdxl)");
    } else if (args[i] == "--graph") {
      const std::string& g = value();
      DR_CHECK(g == "on" || g == "off", "bench unet", "--graph takes on or off, got '", g, "'");
      graph = g == "on";
    } else {
      fail(
          "bench unet", "unknown option '", args[i],
          "' (--model sd15|sdxl, --device cpu|cuda[:N], --cuda-device N, --dtype, --size, --iters, "
          "--graph on|off, --json)");
    }
  }
  Device& dev = device_for(device);
  if (!dtype_given) dtype = dev.compute_dtype();
  const bool sdxl = model == "sdxl";
  if (size == 0) size = sdxl ? 1024 : 512;
  DR_CHECK(size % 64 == 0 && size >= 64, "bench unet", "--size must be a multiple of 64");

  // Weights: every tensor of the real UNet (SD 1.5: 686, SDXL: 1680), random, made in
  // host memory in the compute dtype (f16 for f32 runs, as a file would hold them) and
  // placed by Weights like a real checkpoint's.
  const double t_load = now_s();
  const UNetConfig arch = sdxl ? UNetConfig::sdxl() : UNetConfig::sd15();
  const DType host_dtype = dtype == DType::F32 ? DType::F16 : dtype;
  std::map<std::string, Tensor> tensors;
  for (const auto& [name, shape] : arch.tensor_shapes())
    tensors.emplace(name, pipeline::demo_tensor(name, shape, 1, host_dtype));
  const Weights w = Weights::from_tensors(std::move(tensors), "", device, dtype);
  const UNet unet = UNet::load(w, UNetConfig::detect(w));
  tensors.clear();
  dev.synchronize();
  const double load_s = now_s() - t_load;

  // x [2, lat, lat, 4], context [2, 77, ctx], y [2, adm] (SDXL), timesteps [2].
  const int64_t lat = size / 8, ctx_dim = arch.context_dim, adm = arch.adm_in_channels;
  auto pattern = [](int64_t n, size_t mult) {
    std::vector<float> v(static_cast<size_t>(n));
    for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>((i * mult) % 200) / 100 - 1;
    return v;
  };
  const Tensor x = ops::to_device(
      Tensor::from_floats(pattern(2 * lat * lat * 4, 7919), {2, lat, lat, 4}), device);
  const Tensor ctx = ops::to_device(
      Tensor::from_floats(pattern(2 * 77 * ctx_dim, 104729), {2, 77, ctx_dim}), device);
  const Tensor y = adm > 0
                       ? ops::to_device(Tensor::from_floats(pattern(2 * adm, 7), {2, adm}), device)
                       : Tensor();
  const std::vector<float> ts{500.0f, 500.0f};
  const Tensor t = ops::to_device(Tensor::from_floats(ts, {2}), device);

  UNetRunner runner(unet, graph);
  // Warm-up: plans, algorithm search, caches, and (graph on) the capture.
  Tensor eps = runner.forward(x, t, ctx, y);
  eps = runner.forward(x, t, ctx, y);
  dev.synchronize();
  const bool replayed = runner.last_replayed();
  const double t0 = now_s();
  for (int i = 0; i < iters; ++i) eps = runner.forward(x, t, ctx, y);
  dev.synchronize();
  const double step_s = (now_s() - t0) / iters;
  const DeviceMemoryStats mem = device_memory_stats(device);
  const char* label = sdxl ? "SDXL" : "SD 1.5";

  const std::vector<float> out = ops::to_device(eps, kCpu).to_floats();
  bool finite = true;
  for (float v : out) finite = finite && std::isfinite(v);
  if (json) {
    std::printf(
        "{\"model\":\"%s_unet\",\"impl\":\"darkroom\",\"device\":\"%s\",\"dtype\":\"%s\","
        "\"size\":%d,\"batch\":2,\"graph\":\"%s\",\"graph_replayed\":%s,\"step_ms\":%.3f,"
        "\"it_per_s\":%.3f,\"load_s\":%.2f,\"peak_tensor_bytes\":%zu,\"peak_graph_bytes\":%zu,"
        "\"device_used_bytes\":%zu,\"finite\":%s}\n",
        model.c_str(), device.str().c_str(), std::string(dtype_name(dtype)).c_str(), size,
        graph ? "on" : "off", replayed ? "true" : "false", step_s * 1e3, 1.0 / step_s, load_s,
        mem.tensors_peak, mem.graphs_peak, mem.device_used, finite ? "true" : "false");
  } else {
    std::printf(
        "%s\n%s UNet, %dx%d, batch 2 (CFG), %s, %s: %.1f ms/step = %.2f it/s "
        "(mean of %d; load %.1f s; output %s)\n",
        dev.description().c_str(), label, size, size, std::string(dtype_name(dtype)).c_str(),
        replayed ? "CUDA graph" : "eager", step_s * 1e3, 1.0 / step_s, iters, load_s,
        finite ? "finite" : "NOT FINITE");
    if (device.type == DeviceType::Cuda)
      std::printf("peak memory: tensors %.2f GiB, graphs %.2f GiB; device in use %.2f GiB\n",
                  mem.tensors_peak / 1073741824.0, mem.graphs_peak / 1073741824.0,
                  mem.device_used / 1073741824.0);
  }
  return finite ? 0 : 1;
}

}  // namespace darkroom::bench
