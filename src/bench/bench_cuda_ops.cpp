// GPU op benchmark: each case runs a few warm-up calls, then `repeat` back-to-back
// calls between two Device::synchronize() (so the time is the stream's throughput,
// as CUDA events would measure it, without CUDA headers here).
#include "bench/bench_cuda_ops.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>

#include "backend/device.h"
#include "backend/ops.h"

namespace darkroom::bench {
namespace {

constexpr DeviceId kGpu{DeviceType::Cuda, 0};

struct CaseResult {
  std::string op, shape;
  double flops = 0, ms = 0;
};

// Values in [-scale/2, scale/2) from a xorshift, rounded to dt, on the GPU.
Tensor random_on_gpu(const Shape& s, DType dt, uint64_t seed, float scale = 1.0f) {
  std::vector<float> v(static_cast<size_t>(s.numel()));
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (float& f : v) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    f = scale * (static_cast<float>(x >> 40) / static_cast<float>(1 << 24) - 0.5f);
  }
  return ops::to_device(Tensor::from_floats(v, s, dt), kGpu);
}

// Milliseconds per call.
double time_ms(const std::function<void()>& fn, int repeat) {
  Device& dev = device_for(kGpu);
  for (int i = 0; i < 3; ++i) fn();
  dev.synchronize();
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < repeat; ++i) fn();
  dev.synchronize();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return 1e3 * s / repeat;
}

std::string dims(std::initializer_list<int64_t> d) {
  std::string s;
  for (int64_t v : d) {
    if (!s.empty()) s += 'x';
    s += std::to_string(v);
  }
  return s;
}

CaseResult bench_linear(DType dt, int64_t m, int64_t k, int64_t n, int repeat) {
  const Tensor x = random_on_gpu({m, k}, dt, 1), w = random_on_gpu({n, k}, dt, 2, 0.1f),
               b = random_on_gpu({n}, dt, 3);
  CaseResult r{"linear", dims({m, k}) + "*" + dims({n, k}) + "T", 2.0 * m * n * k, 0};
  r.ms = time_ms([&] { ops::linear(x, w, b); }, repeat);
  return r;
}

CaseResult bench_conv(DType dt, int64_t n, int64_t hw, int64_t c, int64_t o, int repeat) {
  const Tensor x = random_on_gpu({n, hw, hw, c}, dt, 4),
               w = random_on_gpu({o, c, 3, 3}, dt, 5, 0.1f), b = random_on_gpu({o}, dt, 6);
  CaseResult r{"conv2d_3x3", dims({n, hw, hw, c}) + "->" + std::to_string(o),
               2.0 * n * hw * hw * o * c * 9, 0};
  r.ms = time_ms([&] { ops::conv2d(x, w, b, {1, 1}); }, repeat);
  return r;
}

CaseResult bench_attention(DType dt, int64_t b, int heads, int64_t nq, int64_t nk, int64_t d,
                           int repeat) {
  const Tensor q = random_on_gpu({b, nq, heads * d}, dt, 7),
               k = random_on_gpu({b, nk, heads * d}, dt, 8),
               v = random_on_gpu({b, nk, heads * d}, dt, 9);
  CaseResult r{"attention", dims({b, heads, nq, nk, d}), 4.0 * b * heads * nq * nk * d, 0};
  r.ms = time_ms([&] { ops::attention(q, k, v, heads); }, repeat);
  return r;
}

}  // namespace

int run_cuda_ops(const std::vector<std::string>& args) {
  bool json = false;
  DType dt = DType::BF16;
  int repeat = 20;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--json") {
      json = true;
    } else if (args[i] == "--dtype" && i + 1 < args.size()) {
      dt = parse_dtype(args[++i]);
    } else if (args[i] == "--repeat" && i + 1 < args.size()) {
      repeat = std::max(1, std::stoi(args[++i]));
    } else {
      std::fprintf(stderr,
                   "usage: darkroom bench cuda-ops [--json] [--dtype bf16|f16|f32] [--repeat N]\n");
      return 2;
    }
  }
  init_cuda_backend();
  if (cuda_device_count() == 0) {
    std::fprintf(stderr, "darkroom bench cuda-ops: no CUDA device (%s)\n",
                 cuda_backend_compiled() ? "none found" : "this build has no CUDA backend");
    return 1;
  }

  std::vector<CaseResult> results;
  // Stable Diffusion shapes at 512×512 with CFG (batch 2): the feed-forward
  // projections, the resnet 3×3 convolutions, self-attention over 64×64 latents
  // (SD 1.5: 8 heads × 40; SDXL-like: 10 × 64) and cross-attention to 77 tokens.
  results.push_back(bench_linear(dt, 2 * 4096, 320, 1280, repeat));
  results.push_back(bench_linear(dt, 2 * 4096, 1280, 5120, repeat));
  results.push_back(bench_conv(dt, 2, 64, 320, 320, repeat));
  results.push_back(bench_conv(dt, 2, 128, 128, 128, repeat));
  results.push_back(bench_conv(dt, 2, 32, 640, 640, repeat));
  results.push_back(bench_attention(dt, 2, 8, 4096, 4096, 40, repeat));
  results.push_back(bench_attention(dt, 2, 10, 4096, 4096, 64, repeat));
  results.push_back(bench_attention(dt, 2, 8, 4096, 77, 40, repeat));

  const std::string device = device_for(kGpu).description();
  if (json) {
    std::printf("{\"impl\": \"darkroom\", \"device\": \"%s\", \"dtype\": \"%s\", \"results\": [\n",
                device.c_str(), std::string(dtype_name(dt)).c_str());
    for (size_t i = 0; i < results.size(); ++i) {
      const CaseResult& r = results[i];
      std::printf("  {\"op\": \"%s\", \"shape\": \"%s\", \"ms\": %.4f, \"tflops\": %.2f}%s\n",
                  r.op.c_str(), r.shape.c_str(), r.ms, r.flops / (r.ms * 1e9),
                  i + 1 < results.size() ? "," : "");
    }
    std::printf("]}\n");
  } else {
    std::printf("%s, %s, %d calls per case\n", device.c_str(), std::string(dtype_name(dt)).c_str(),
                repeat);
    std::printf("%-12s %-28s %10s %10s\n", "op", "shape", "ms", "TFLOP/s");
    for (const CaseResult& r : results)
      std::printf("%-12s %-28s %10.4f %10.2f\n", r.op.c_str(), r.shape.c_str(), r.ms,
                  r.flops / (r.ms * 1e9));
  }
  return 0;
}

}  // namespace darkroom::bench
