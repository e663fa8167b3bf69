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

float f8e5m2_to_f32(uint8_t v) {
  // E5M2 is the top byte of an IEEE half.
  return to_f32(f16{static_cast<uint16_t>(v << 8)});
}

}  // namespace darkroom
