#include "core/half.h"

#include <cmath>

namespace darkroom {

float f8e4m3_to_f32(uint8_t v) {
  const bool neg = v & 0x80;
  const int exp = (v >> 3) & 0xf;
  const int man = v & 0x7;
  float out;
  if (exp == 0xf && man == 0x7) {
    out = NAN;
  } else if (exp == 0) {
    out = std::ldexp(static_cast<float>(man), -9);  // subnormal: man/8 * 2^-6
  } else {
    out = std::ldexp(1.0f + man / 8.0f, exp - 7);
  }
  return neg ? -out : out;
}

uint8_t f32_to_f8e4m3(float f) {
  if (std::isnan(f)) return 0x7f;
  const uint8_t sign = std::signbit(f) ? 0x80 : 0;
  float a = std::fabs(f);
  if (a >= 448.0f) return sign | 0x7e;
  // Find the nearest representable value by searching the 127 non-negative codes; this
  // is only used at load time, where clarity beats speed.
  uint8_t best = 0;
  float best_err = a;
  for (uint8_t c = 1; c <= 0x7e; ++c) {
    float err = std::fabs(f8e4m3_to_f32(c) - a);
    if (err < best_err || (err == best_err && (c & 1) == 0)) {
      best = c;
      best_err = err;
    }
  }
  return sign | best;
}

#if !defined(__FLT16_MAX__)
float f16_bits_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const int exp = (h >> 10) & 0x1f;
  const uint32_t man = h & 0x3ff;
  if (exp == 0x1f) return bits_to_f32(sign | 0x7f800000u | (man << 13));
  if (exp == 0) {
    const float v = std::ldexp(static_cast<float>(man), -24);
    return sign ? -v : v;
  }
  return bits_to_f32(sign | (static_cast<uint32_t>(exp - 15 + 127) << 23) | (man << 13));
}

uint16_t f32_to_f16_bits(float f) {
  const uint32_t u = f32_to_bits(f);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000);
  const float a = std::fabs(f);
  if (std::isnan(f)) return sign | 0x7e00;
  if (a >= 65520.0f) return sign | 0x7c00;            // rounds to infinity
  if (a < std::ldexp(1.0f, -14)) {                    // subnormal: multiples of 2^-24
    const float q = std::nearbyint(a * 16777216.0f);  // default rounding: nearest even
    return sign | static_cast<uint16_t>(q);
  }
  int exp;
  const float m = std::frexp(a, &exp);  // a = m·2^exp, m in [0.5, 1)
  float mant = std::nearbyint((m * 2.0f - 1.0f) * 1024.0f);
  int e = exp - 1 + 15;
  if (mant >= 1024.0f) {
    mant = 0;
    ++e;
  }
  return sign | static_cast<uint16_t>(e << 10) | static_cast<uint16_t>(mant);
}
#endif

float f8e5m2_to_f32(uint8_t v) {
  // E5M2 is the top byte of an IEEE half.
  return to_f32(f16{static_cast<uint16_t>(v << 8)});
}

}  // namespace darkroom
