// The float math of torch's vectorised Box–Muller (normal_fill's 16-value step).
//
// Avx2: avx_mathfun.h's log256_ps and sincos256_ps (Cephes polynomials by J. Pommier and
// G. Garberoglio) evaluated lane by lane. GCC, which builds the PyPI wheels, fuses each
// multiply whose only use is an add or subtract into an FMA; the std::fma calls below
// sit exactly where those contractions land, and every other operation is rounded on
// its own (this library is built with -ffp-contract=off so the compiler adds none).
// Products that are exact (by 0.5, or small integers by the short DP1/DP2/q2
// constants) are left unfused since fusing them cannot change the result.
//
// Scalar: torch's DEFAULT kernel, libm logf/cosf/sinf.
#include <bit>
#include <cmath>
#include <cstdint>
#include <numbers>

#include "sampling/torch_rng.h"

namespace darkroom::sampling {
namespace {

// Constants are written as in avx_mathfun.h: decimal literals rounded to float.
constexpr float f(double v) {
  return static_cast<float>(v);
}

// log256_ps for x > 0 (torch only passes 1 - u ∈ (0, 1]).
float cephes_log(float x) {
  x = std::fmax(x, std::bit_cast<float>(0x00800000u));  // smallest normal
  const uint32_t bits = std::bit_cast<uint32_t>(x);
  const int32_t exponent = static_cast<int32_t>(bits >> 23) - 0x7f;
  // Mantissa scaled into [0.5, 1).
  x = std::bit_cast<float>((bits & ~0x7f800000u) | std::bit_cast<uint32_t>(0.5f));
  float e = static_cast<float>(exponent) + 1.0f;
  const bool below = x < f(0.707106781186547524);  // x < sqrt(1/2): use 2x - 1, e - 1
  const float tmp = below ? x : 0.0f;
  x = x - 1.0f;
  e = e - (below ? 1.0f : 0.0f);
  x = x + tmp;
  const float z = x * x;
  float y = f(7.0376836292E-2);
  y = std::fma(y, x, f(-1.1514610310E-1));
  y = std::fma(y, x, f(1.1676998740E-1));
  y = std::fma(y, x, f(-1.2420140846E-1));
  y = std::fma(y, x, f(1.4249322787E-1));
  y = std::fma(y, x, f(-1.6668057665E-1));
  y = std::fma(y, x, f(2.0000714765E-1));
  y = std::fma(y, x, f(-2.4999993993E-1));
  y = std::fma(y, x, f(3.3333331174E-1));
  y = y * x;
  y = std::fma(y, z, e * f(-2.12194440e-4));  // y·z + e·q1: the y·z product is fused
  y = y - z * 0.5f;
  x = x + y;
  x = x + e * 0.693359375f;
  return x;
}

// sincos256_ps for one lane.
void cephes_sincos(float xin, float* sin_out, float* cos_out) {
  uint32_t sign_sin = std::bit_cast<uint32_t>(xin) & 0x80000000u;
  float x = std::fabs(xin);
  int32_t j = static_cast<int32_t>(x * f(1.27323954473516));  // x · 4/π, truncated
  j = (j + 1) & ~1;
  const float y = static_cast<float>(j);
  const uint32_t swap_sin = static_cast<uint32_t>(j & 4) << 29;
  const bool sin_poly = (j & 2) == 0;  // lanes where sin uses the sine polynomial
  // Extended-precision reduction x - y·π/4 in three parts.
  x = std::fma(y, -0.78515625f, x);
  x = std::fma(y, f(-2.4187564849853515625e-4), x);
  x = std::fma(y, f(-3.77489497744594108e-8), x);
  const uint32_t sign_cos = static_cast<uint32_t>(~(j - 2) & 4) << 29;
  sign_sin ^= swap_sin;
  const float z = x * x;
  // Cosine polynomial on [0, π/4].
  float yc = f(2.443315711809948E-005);
  yc = std::fma(yc, z, f(-1.388731625493765E-003));
  yc = std::fma(yc, z, f(4.166664568298827E-002));
  yc = yc * z;
  yc = std::fma(yc, z, -(z * 0.5f));
  yc = yc + 1.0f;
  // Sine polynomial on [0, π/4].
  float ys = f(-1.9515295891E-4);
  ys = std::fma(ys, z, f(8.3321608736E-3));
  ys = std::fma(ys, z, f(-1.6666654611E-1));
  ys = ys * z;
  ys = std::fma(ys, x, x);
  const float s_from_sin = sin_poly ? ys : 0.0f;
  const float s_from_cos = sin_poly ? 0.0f : yc;
  ys = ys - s_from_sin;
  yc = yc - s_from_cos;
  const float s = s_from_cos + s_from_sin;
  const float c = yc + ys;
  *sin_out = std::bit_cast<float>(std::bit_cast<uint32_t>(s) ^ sign_sin);
  *cos_out = std::bit_cast<float>(std::bit_cast<uint32_t>(c) ^ sign_cos);
}

}  // namespace

void box_muller_16(float* data, BoxMuller kind) {
  // mean 0, std 1 as torch.randn passes them; fma(v, 1, 0) also maps -0 to +0 as torch.
  constexpr float mean = 0.0f, std_dev = 1.0f;
  for (int j = 0; j < 8; ++j) {
    const float u1 = 1.0f - data[j];  // [0, 1) -> (0, 1] for the log
    const float u2 = data[j + 8];
    float radius, s, c;
    if (kind == BoxMuller::Avx2) {
      radius = std::sqrt(-2.0f * cephes_log(u1));
      cephes_sincos(f(2.0 * std::numbers::pi) * u2, &s, &c);
    } else {
      radius = std::sqrt(-2.0f * std::log(u1));
      // 2.0f · π<double> · u2 is evaluated in double, then stored as float.
      const float theta = static_cast<float>(2.0 * std::numbers::pi * static_cast<double>(u2));
      s = std::sin(theta);
      c = std::cos(theta);
    }
    data[j] = std::fma(radius * c, std_dev, mean);
    data[j + 8] = std::fma(radius * s, std_dev, mean);
  }
}

}  // namespace darkroom::sampling
