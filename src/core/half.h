// Scalar conversions between f32 and the 16- and 8-bit float formats. Kernels use
// these for tails and references; hot loops convert whole vectors (see
// backend/cpu/vec.h).
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>

namespace darkroom {

struct bf16 {
  uint16_t bits;
};
struct f16 {
  uint16_t bits;
};

inline float bits_to_f32(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline uint32_t f32_to_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

inline float to_f32(bf16 v) {
  return bits_to_f32(static_cast<uint32_t>(v.bits) << 16);
}

// Round to nearest even; NaN stays NaN (quiet).
inline bf16 to_bf16(float f) {
  uint32_t u = f32_to_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return bf16{static_cast<uint16_t>((u >> 16) | 0x40)};
  u += 0x7fffu + ((u >> 16) & 1u);
  return bf16{static_cast<uint16_t>(u >> 16)};
}

#if defined(__FLT16_MAX__)
// The compiler's _Float16 (g++ ≥ 12 on x86) converts with F16C instructions.
inline float to_f32(f16 v) {
  return static_cast<float>(std::bit_cast<_Float16>(v.bits));
}
inline f16 to_f16(float f) {
  return f16{std::bit_cast<uint16_t>(static_cast<_Float16>(f))};
}
#else
// Compilers without _Float16 (clang 14 on x86): the IEEE conversions done on bits.
float f16_bits_to_f32(uint16_t h);
uint16_t f32_to_f16_bits(float f);  // round to nearest even
inline float to_f32(f16 v) {
  return f16_bits_to_f32(v.bits);
}
inline f16 to_f16(float f) {
  return f16{f32_to_f16_bits(f)};
}
#endif

// FP8 E4M3 (OCP "fn" variant: no infinities, 0x7f/0xff are NaN, max 448).
float f8e4m3_to_f32(uint8_t v);
uint8_t f32_to_f8e4m3(float f);  // round to nearest even, saturates to ±448
// FP8 E5M2 (IEEE-like: infinities and NaNs).
float f8e5m2_to_f32(uint8_t v);

}  // namespace darkroom
