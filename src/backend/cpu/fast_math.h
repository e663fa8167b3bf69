// Vectorisable f32 transcendental functions for our kernels. std::exp is a scalar
// libm call (~10 ns); these are branch-free so g++ vectorises loops over them with
// AVX-512, 16 lanes at a time.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace darkroom::cpu {

// e^x with relative error below 2e-7 for x in [-87.3, 88.7]; 0 below that (so -inf,
// as from an attention mask, gives exactly 0), +inf above.
// Method: x = n·ln2 + r with |r| ≤ ln2/2 (ln2 split in two for exactness), e^r by a
// degree-6 polynomial (Cephes' expf coefficients), 2^n by building the exponent bits.
// Reductions use `omp simd` (built with -fopenmp-simd; no OpenMP runtime) so that g++
// may reorder the float sums into vector lanes.
inline float fast_exp(float x) {
  // Ternaries, not std::fmin/fmax: their NaN rules keep g++ from emitting vmaxps.
  const float lo = x < -87.3f ? -87.3f : x;
  const float xc = lo > 88.7f ? 88.7f : lo;
  const float n = std::floor(xc * 1.44269504088896341f + 0.5f);
  const float r = xc - n * 0.693359375f + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float er = p * r * r + r + 1.0f;
  // memcpy rather than std::bit_cast: g++ 12 vectorises the former, not the latter.
  const int32_t bits = static_cast<int32_t>(n + 127.0f) << 23;
  float two_n;
  std::memcpy(&two_n, &bits, sizeof two_n);
  const float y = er * two_n;
  return x < -87.3f ? 0.0f : (x > 88.7f ? INFINITY : y);
}

// row[j] = e^(row[j] − shift) for j < n; returns the sum of the new values.
inline float exp_shifted_sum(float* __restrict row, int64_t n, float shift) {
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int64_t j = 0; j < n; ++j) {
    row[j] = fast_exp(row[j] - shift);
    sum += row[j];
  }
  return sum;
}

inline float row_max(const float* row, int64_t n, float init) {
  float m = init;
#pragma omp simd reduction(max : m)
  for (int64_t j = 0; j < n; ++j) m = row[j] > m ? row[j] : m;
  return m;
}

}  // namespace darkroom::cpu
