#include "pipeline/demo_weights.h"

#include <cmath>
#include <map>
#include <string_view>

#include "backend/cpu/vec.h"
#include "core/thread_pool.h"
#include "io/safetensors_writer.h"

namespace darkroom::pipeline {
namespace {

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t fnv1a(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ULL;
  return h;
}

bool ends_with(std::string_view s, std::string_view p) {
  return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
}

constexpr int64_t kBlock = 1 << 14;  // values per independently seeded block

}  // namespace

Tensor demo_tensor(const std::string& name, const Shape& shape, uint64_t seed, DType dtype) {
  const int64_t n = shape.numel();
  Tensor out = Tensor::empty(shape, dtype);
  const bool is_weight = ends_with(name, ".weight");
  float constant = 0.0f;  // biases
  if (is_weight && shape.ndim() == 1) constant = 1.0f;
  const bool random = is_weight && shape.ndim() >= 2;
  const double fan_in = random ? static_cast<double>(n / std::max<int64_t>(shape[0], 1)) : 1.0;
  // Irwin–Hall of 4 uniforms in [0, 1): mean 2, variance 4/12.
  const float scale = static_cast<float>(std::sqrt(3.0) / std::sqrt(std::max(fan_in, 1.0)));
  const uint64_t base = seed ^ fnv1a(name);
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  ThreadPool::global().parallel_for(blocks, [&](int64_t b0, int64_t b1) {
    std::vector<float> buf(kBlock);
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t begin = b * kBlock, len = std::min(kBlock, n - begin);
      if (random) {
        uint64_t state = base + static_cast<uint64_t>(b) * 0x632be59bd9b4e019ULL;
        for (int64_t i = 0; i < len; ++i) {
          const uint64_t r = splitmix64(state);
          // Four 16-bit uniforms from one 64-bit draw.
          const float s = static_cast<float>((r & 0xffff) + ((r >> 16) & 0xffff) +
                                             ((r >> 32) & 0xffff) + (r >> 48)) *
                          (1.0f / 65536.0f);
          buf[static_cast<size_t>(i)] = (s - 2.0f) * scale;
        }
      } else {
        std::fill(buf.begin(), buf.begin() + len, constant);
      }
      cpu::store_f32(buf.data(), dtype, static_cast<char*>(out.raw()) + begin * dtype_size(dtype),
                     len);
    }
  });
  return out;
}

void write_demo_checkpoint(const std::string& path,
                           const std::vector<std::pair<std::string, Shape>>& list, uint64_t seed,
                           DType dtype,
                           const std::vector<std::pair<std::string, std::string>>& metadata) {
  std::vector<std::pair<std::string, Tensor>> tensors;
  tensors.reserve(list.size());
  for (const auto& [name, shape] : list)
    tensors.emplace_back(name, demo_tensor(name, shape, seed, dtype));
  std::map<std::string, std::string> meta(metadata.begin(), metadata.end());
  meta["darkroom.demo"] = "random weights — images are noise";
  write_safetensors(path, tensors, meta);
}

}  // namespace darkroom::pipeline
