// Shared helpers for the op tests: seeded random inputs, double-precision reference
// data, and a comparison with tolerances per dtype.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "backend/ops.h"
#include "core/tensor.h"

namespace darkroom::test {

// Uniform values in [lo, hi), rounded to `dtype`.
inline Tensor random_tensor(const Shape& shape, DType dtype, uint64_t seed, float lo = -1.0f,
                            float hi = 1.0f) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(static_cast<size_t>(shape.numel()));
  for (float& x : v) x = dist(rng);
  return Tensor::from_floats(v, shape, dtype);
}

// The tensor's values exactly as stored (after rounding to its dtype), as doubles:
// references computed from these measure only the kernel's own error.
inline std::vector<double> to_doubles(const Tensor& t) {
  std::vector<float> f = t.to_floats();
  return std::vector<double>(f.begin(), f.end());
}

// The largest |got − ref| over all elements (both read as f32 on the CPU); +inf when the
// shapes differ (a failed expectation too) or any difference is NaN, so that a NaN output
// can never pass a tolerance check.
inline double max_abs_diff(const Tensor& got, const Tensor& ref) {
  EXPECT_EQ(got.shape(), ref.shape());
  if (got.shape() != ref.shape()) return INFINITY;
  const std::vector<float> g = ops::to_device(got, kCpu).to_floats();
  const std::vector<float> r = ops::to_device(ref, kCpu).to_floats();
  double worst = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    const double d = std::fabs(static_cast<double>(g[i]) - r[i]);
    if (std::isnan(d)) return INFINITY;
    worst = std::max(worst, d);
  }
  return worst;
}

struct Tolerance {
  double atol;
  double rtol;
};

// Defaults: f32 kernels accumulate in f32 (error ~1e-6 relative for our sizes, so 1e-4
// leaves room for long reductions); bf16 outputs carry 8 mantissa bits, so one rounding
// of the result alone is up to 2^-9 ≈ 0.2% relative, and intermediate bf16 steps add a
// few of those; f16 has 11 bits.
inline Tolerance default_tolerance(DType t) {
  switch (t) {
    case DType::BF16:
      return {2e-2, 2e-2};
    case DType::F16:
      return {2e-3, 2e-3};
    default:
      return {1e-4, 1e-4};
  }
}

// Every element within atol + rtol·|ref|; reports the worst one.
inline void expect_close(const Tensor& got, const std::vector<double>& ref, Tolerance tol,
                         const std::string& what = "") {
  ASSERT_EQ(static_cast<size_t>(got.numel()), ref.size()) << what;
  std::vector<float> g = got.to_floats();
  double worst = 0;
  size_t worst_i = 0;
  size_t bad = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    double err = std::fabs(g[i] - ref[i]);
    double allowed = tol.atol + tol.rtol * std::fabs(ref[i]);
    if (!(err <= allowed)) ++bad;  // NaN counts as bad
    double excess = std::isnan(err) ? INFINITY : err - allowed;
    if (bad && excess > worst) {
      worst = excess;
      worst_i = i;
    }
  }
  EXPECT_EQ(bad, 0u) << what << ": " << bad << " of " << ref.size()
                     << " elements out of tolerance; worst at " << worst_i << ": got " << g[worst_i]
                     << ", expected " << ref[worst_i] << " (atol " << tol.atol << ", rtol "
                     << tol.rtol << ")";
}

// Runs fn, which must throw darkroom::Error whose message starts with `prefix`
// (usually the op in brackets, e.g. "[concat]").
template <class Fn>
void expect_error(Fn&& fn, const std::string& prefix) {
  try {
    fn();
    ADD_FAILURE() << "expected a darkroom::Error starting with " << prefix;
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind(prefix, 0), 0u) << e.what();
  }
}

// "what (bf16)": names a case and its dtype in failure messages.
inline std::string label(const std::string& what, DType t) {
  return what + " (" + std::string(dtype_name(t)) + ")";
}

inline void expect_close(const Tensor& got, const std::vector<double>& ref,
                         const std::string& what = "") {
  expect_close(got, ref, default_tolerance(got.dtype()), what);
}

// [N, C, H, W] values -> [N, H, W, C] order, written out by hand.
inline std::vector<float> nchw_values_to_nhwc(const std::vector<float>& v, int64_t n, int64_t c,
                                              int64_t h, int64_t w) {
  std::vector<float> out(v.size());
  for (int64_t b = 0; b < n; ++b)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < w; ++x)
          out[((b * h + y) * w + x) * c + ch] = v[((b * c + ch) * h + y) * w + x];
  return out;
}

// The same for a diffusers tensor of shape [N, C, H, W].
inline std::vector<float> nchw_to_nhwc(const std::vector<float>& v, const Shape& nchw) {
  return nchw_values_to_nhwc(v, nchw[0], nchw[1], nchw[2], nchw[3]);
}

// A diffusers tensor [N, C, H, W] as darkroom's [N, H, W, C], f32.
inline Tensor nhwc(const Tensor& nchw) {
  const Shape& s = nchw.shape();
  return Tensor::from_floats(nchw_to_nhwc(nchw.to_floats(), s), {s[0], s[2], s[3], s[1]});
}

// `t`'s values as an f32 tensor of its shape.
inline Tensor f32(const Tensor& t) {
  return Tensor::from_floats(t.to_floats(), t.shape());
}

// Largest and root-mean-square absolute difference of got from ref (NaN counts as ∞).
struct ErrorStats {
  double max_abs = 0, rms = 0;
};
inline ErrorStats error_stats(const std::vector<float>& got, const std::vector<float>& ref) {
  EXPECT_EQ(got.size(), ref.size());
  ErrorStats e;
  double sum_sq = 0;
  for (size_t i = 0; i < ref.size() && i < got.size(); ++i) {
    const double d = std::fabs(static_cast<double>(got[i]) - ref[i]);
    e.max_abs = std::isnan(d) ? INFINITY : std::max(e.max_abs, d);
    sum_sq += d * d;
  }
  e.rms = std::sqrt(sum_sq / static_cast<double>(ref.size()));
  return e;
}

}  // namespace darkroom::test
