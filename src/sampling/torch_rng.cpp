// TorchGenerator: the engine, the two randn paths and the scalar Box–Muller cache.
// See torch_rng.h for the algorithm; the float math of the vectorised path is in
// torch_rng_math.cpp.
#include "sampling/torch_rng.h"

#include <cmath>
#include <numbers>

namespace darkroom::sampling {

void Mt19937::seed_with(uint32_t seed) {
  state_[0] = seed;
  for (uint32_t i = 1; i < state_.size(); ++i) {
    state_[i] = 1812433253u * (state_[i - 1] ^ (state_[i - 1] >> 30)) + i;
  }
  next_ = static_cast<int>(state_.size());
}

void Mt19937::twist() {
  constexpr int n = 624, m = 397;
  for (int i = 0; i < n; ++i) {
    uint32_t y = (state_[i] & 0x80000000u) | (state_[(i + 1) % n] & 0x7fffffffu);
    uint32_t v = state_[(i + m) % n] ^ (y >> 1);
    state_[i] = (y & 1u) ? v ^ 0x9908b0dfu : v;
  }
  next_ = 0;
}

uint32_t Mt19937::operator()() {
  if (next_ >= static_cast<int>(state_.size())) twist();
  uint32_t y = state_[next_++];
  y ^= y >> 11;
  y ^= (y << 7) & 0x9d2c5680u;
  y ^= (y << 15) & 0xefc60000u;
  y ^= y >> 18;
  return y;
}

TorchGenerator::TorchGenerator(uint64_t seed, BoxMuller box_muller) : box_muller_(box_muller) {
  manual_seed(seed);
}

void TorchGenerator::manual_seed(uint64_t seed) {
  // torch keeps the 64-bit seed but the engine only sees its low 32 bits.
  engine_.seed_with(static_cast<uint32_t>(seed & 0xffffffffu));
  next_double_normal_.reset();
}

uint64_t TorchGenerator::random64() {
  uint64_t hi = engine_();
  uint64_t lo = engine_();
  return (hi << 32) | lo;
}

// at::normal_distribution<double>(0, 1) with the generator's one-value cache.
double TorchGenerator::scalar_normal() {
  if (next_double_normal_) {
    double v = *next_double_normal_;
    next_double_normal_.reset();
    return v;
  }
  constexpr double k53 = 1.0 / 9007199254740992.0;  // 2^-53
  constexpr uint64_t mask53 = (uint64_t{1} << 53) - 1;
  const double u1 = static_cast<double>(random64() & mask53) * k53;
  const double u2 = static_cast<double>(random64() & mask53) * k53;
  const double r = std::sqrt(-2.0 * std::log1p(-u2));
  const double theta = 2.0 * std::numbers::pi * u1;
  next_double_normal_ = r * std::sin(theta);
  return r * std::cos(theta);
}

void TorchGenerator::normal_fill(std::span<float> out) {
  const size_t n = out.size();
  constexpr float k24 = 1.0f / 16777216.0f;  // 2^-24
  auto uniform = [&] { return static_cast<float>(engine_() & 0xffffffu) * k24; };
  for (float& v : out) v = uniform();
  for (size_t i = 0; i + 16 <= n; i += 16) box_muller_16(out.data() + i, box_muller_);
  if (n % 16 != 0) {
    float* tail = out.data() + n - 16;  // overlaps the last whole chunk
    for (int i = 0; i < 16; ++i) tail[i] = uniform();
    box_muller_16(tail, box_muller_);
  }
}

void TorchGenerator::randn(std::span<float> out) {
  if (out.size() >= 16) {
    normal_fill(out);
    return;
  }
  // mean 0, std 1: torch computes v·1 + 0 in double, then rounds to float.
  for (float& v : out) v = static_cast<float>(scalar_normal() * 1.0 + 0.0);
}

Tensor TorchGenerator::randn(const Shape& shape) {
  Tensor t = Tensor::empty(shape, DType::F32);
  randn(std::span<float>(t.data<float>(), static_cast<size_t>(t.numel())));
  return t;
}

}  // namespace darkroom::sampling
