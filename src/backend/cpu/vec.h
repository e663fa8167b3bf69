// Row conversions between storage dtypes and f32 for our own kernels: a kernel loads a
// row (or a slice of one) into an f32 buffer, computes in f32, and stores it back in the
// output dtype. Loops are written so g++ vectorises them (AVX-512 here); f16 goes through
// F16C explicitly, since g++ 12 leaves the _Float16 loops scalar (one vcvtph2ps per value:
// a third of a checkpoint load's time went there).
#pragma once

#if defined(__F16C__)
#include <immintrin.h>
#endif

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
      int64_t i = 0;
#if defined(__F16C__)
      for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i,
                         _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i))));
#endif
      for (; i < n; ++i) dst[i] = static_cast<float>(s[i]);
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
      int64_t i = 0;
#if defined(__F16C__)
      // Round to nearest even, as the conversion below (and torch's .half()).
      for (; i + 8 <= n; i += 8)
        _mm_storeu_si128(reinterpret_cast<__m128i*>(d + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + i),
                                         _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
#endif
      for (; i < n; ++i) d[i] = static_cast<_Float16>(src[i]);
      return;
    }
    default:
      DR_ASSERT(false, "store_f32 to ", dtype_name(t));
  }
}

}  // namespace darkroom::cpu
