// Elementwise math and row reductions in f32 that g++ vectorises without -ffast-math,
// and f32 views of tensor data for kernels that compute in f32.
//
// The build is plain -O3 -march=native: std::exp / std::erf stay scalar library calls
// and a float sum stays a serial chain (reassociating it would change results). So the
// transcendentals here are our own polynomial approximations written as straight-line
// arithmetic (exp within 1e-7 relative, the GELUs within 5e-7 absolute: far inside our
// test tolerances), and reductions keep 16 independent partial sums (one AVX-512
// register) that are combined at the end.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "backend/cpu/vec.h"
#include "core/tensor.h"

namespace darkroom::cpu {

// e^x. Below -86.5 the result is 0 (the true value is under 3e-38); above 88 it
// saturates at e^88 ≈ 1.7e38 rather than overflowing, which keeps the 2^n scaling
// below in the normal range.
inline float exp_f32(float x) {
  const float xc = std::min(std::max(x, -86.5f), 88.0f);
  // n = round(x / ln 2) by the 1.5·2^23 trick: adding it pushes the fraction out of
  // the mantissa, and the low mantissa bits then hold n.
  const float magic = 12582912.0f;
  const float t = xc * 1.44269504f + magic;
  const int32_t n = std::bit_cast<int32_t>(t) - std::bit_cast<int32_t>(magic);
  const float fn = t - magic;
  // r = x - n·ln 2 in two parts (the high part has few bits, so fn·hi is exact).
  const float r = (xc - fn * 0.693359375f) - fn * -2.12194440e-4f;
  // e^r on |r| ≤ ln2/2 by its Taylor series to degree 7 (truncation < 6e-9).
  float p = 1.98412698e-4f;
  p = p * r + 1.38888889e-3f;
  p = p * r + 8.33333333e-3f;
  p = p * r + 4.16666667e-2f;
  p = p * r + 1.66666667e-1f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const float y = std::bit_cast<float>(std::bit_cast<int32_t>(p) + (n << 23));
  return x < -86.5f ? 0.0f : y;
}

inline float sigmoid_f32(float x) {
  return 1.0f / (1.0f + exp_f32(-x));
}
inline float silu_f32(float x) {
  return x / (1.0f + exp_f32(-x));
}
inline float quick_gelu_f32(float x) {
  return x / (1.0f + exp_f32(-1.702f * x));
}

// x·Φ(x) with Φ the standard normal CDF: Φ(x) = erfc(-x/√2)/2, and erfc(z) for z ≥ 0 from
// Abramowitz & Stegun 7.1.26 (|error| ≤ 1.5e-7). Using erfc for the tail, instead of
// 1 + erf, keeps the small negative-side values free of cancellation.
inline float gelu_erf_f32(float x) {
  const float z = std::fabs(x) * 0.70710678f;
  const float t = 1.0f / (1.0f + 0.3275911f * z);
  float p = 1.061405429f;
  p = p * t - 1.453152027f;
  p = p * t + 1.421413741f;
  p = p * t - 0.284496736f;
  p = p * t + 0.254829592f;
  const float half_erfc = 0.5f * p * t * exp_f32(-z * z);  // Φ(-|x|)
  const float cdf = x < 0.0f ? half_erfc : 1.0f - half_erfc;
  return x * cdf;
}

// 0.5·x·(1 + tanh(u)) with u = √(2/π)(x + 0.044715x³). Since 0.5(1 + tanh u) is
// sigmoid(2u), this is x·sigmoid(2u), which avoids tanh and its cancellation.
inline float gelu_tanh_f32(float x) {
  const float u2 = 1.59576912f * (x + 0.044715f * x * x * x);  // 2u
  return x / (1.0f + exp_f32(-u2));
}

// Row reductions with 16 partial sums (one AVX-512 register of f32 lanes).
inline constexpr int kLanes = 16;

inline float combine_lanes(const float* acc) {
  float s = 0.0f;
  for (int k = 0; k < kLanes; ++k) s += acc[k];
  return s;
}

// Σ x[i]
inline float sum_f32(const float* x, int64_t n) {
  float acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int k = 0; k < kLanes; ++k) acc[k] += x[i + k];
  for (int k = 0; i < n; ++i, ++k) acc[k] += x[i];
  return combine_lanes(acc);
}

// Σ (x[i] - shift)²
inline float sum_sq_dev_f32(const float* x, int64_t n, float shift) {
  float acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int k = 0; k < kLanes; ++k) {
      const float d = x[i + k] - shift;
      acc[k] += d * d;
    }
  for (int k = 0; i < n; ++i, ++k) {
    const float d = x[i] - shift;
    acc[k] += d * d;
  }
  return combine_lanes(acc);
}

// max x[i] (n ≥ 1). g++ will not vectorise a float max reduction on its own (it cannot
// prove the lane order irrelevant), so this one uses a GCC vector type.
inline float max_f32(const float* x, int64_t n) {
  typedef float F32x16 __attribute__((vector_size(kLanes * sizeof(float))));
  F32x16 acc;
  for (int k = 0; k < kLanes; ++k) acc[k] = x[0];
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    F32x16 v;
    std::memcpy(&v, x + i, sizeof v);
    acc = v > acc ? v : acc;
  }
  float m = acc[0];
  for (int k = 1; k < kLanes; ++k) m = std::max(m, acc[k]);
  for (; i < n; ++i) m = std::max(m, x[i]);
  return m;
}

// f32 access to a contiguous run of n elements of a tensor starting at element `at`:
// f32 data is used in place, other dtypes go through a caller-owned buffer of n floats.
inline const float* f32_in(const Tensor& t, int64_t at, int64_t n, float* buf) {
  const char* p = static_cast<const char*>(t.raw()) + at * int64_t(dtype_size(t.dtype()));
  if (t.dtype() == DType::F32) return reinterpret_cast<const float*>(p);
  load_f32(p, t.dtype(), buf, n);
  return buf;
}
// Where to write n results bound for `t` at element `at`; pair with f32_out_done.
inline float* f32_out(const Tensor& t, int64_t at, float* buf) {
  return t.dtype() == DType::F32 ? t.data<float>() + at : buf;
}
inline void f32_out_done(const Tensor& t, int64_t at, const float* buf, int64_t n) {
  if (t.dtype() == DType::F32) return;
  store_f32(buf, t.dtype(), static_cast<char*>(t.raw()) + at * int64_t(dtype_size(t.dtype())), n);
}

}  // namespace darkroom::cpu
