// Row conversions between storage dtypes and f32 for our own kernels: a kernel loads a
// row (or a slice of one) into an f32 buffer, computes in f32, and stores it back in the
// output dtype. Loops are written so g++ vectorises them (AVX-512 here).
#pragma once

#include <cstdint>

#include "core/dtype.h"
#include "core/error.h"
#include "core/half.h"

namespace darkroom::cpu {

inline void load_f32(const void* src, DType t, float* dst, int64_t n) {
  switch (t) {
    case DType::F32: {
      const float* s = static_cast<const float*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = s[i];
      return;
    }
    case DType::BF16: {
      const uint16_t* s = static_cast<const uint16_t*>(src);
      uint32_t* d = reinterpret_cast<uint32_t*>(dst);
      for (int64_t i = 0; i < n; ++i) d[i] = static_cast<uint32_t>(s[i]) << 16;
      return;
    }
    case DType::F16: {
      const _Float16* s = static_cast<const _Float16*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<float>(s[i]);
      return;
    }
    default: {
      for (int64_t i = 0; i < n; ++i)
        dst[i] = t == DType::F8E4M3 ? f8e4m3_to_f32(static_cast<const uint8_t*>(src)[i])
                                    : f8e5m2_to_f32(static_cast<const uint8_t*>(src)[i]);
    }
  }
}

inline void store_f32(const float* src, DType t, void* dst, int64_t n) {
  switch (t) {
    case DType::F32: {
      float* d = static_cast<float*>(dst);
      for (int64_t i = 0; i < n; ++i) d[i] = src[i];
      return;
    }
    case DType::BF16: {
      // Round to nearest even; a NaN stays a (quiet) NaN instead of carrying into the
      // exponent. Branch-free, so the loop vectorises.
      const uint32_t* s = reinterpret_cast<const uint32_t*>(src);
      uint16_t* d = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) {
        const uint32_t u = s[i];
        const uint32_t rounded = u + 0x7fffu + ((u >> 16) & 1u);
        const bool nan = (u & 0x7fffffffu) > 0x7f800000u;
        d[i] = static_cast<uint16_t>((nan ? (u | 0x00400000u) : rounded) >> 16);
      }
      return;
    }
    case DType::F16: {
      _Float16* d = static_cast<_Float16*>(dst);
      for (int64_t i = 0; i < n; ++i) d[i] = static_cast<_Float16>(src[i]);
      return;
    }
    default:
      DR_ASSERT(false, "store_f32 to ", dtype_name(t));
  }
}

}  // namespace darkroom::cpu
