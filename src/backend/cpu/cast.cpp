// Casts to a compute dtype (f32, f16, bf16) from any float dtype. Elements go through
// f32 in blocks: decode to an f32 buffer, encode to the output. FP8 decodes through a
// 256-entry table; f64 narrows to f32 first (as PyTorch's double → bf16/f16 does, via
// float). f32 → bf16 rounds to nearest even and keeps NaNs NaN, which vec.h's
// store_f32 does not promise, since checkpoint weights are arbitrary bits.
#include <algorithm>
#include <array>
#include <cstdint>

#include "backend/cpu/kernels.h"
#include "backend/cpu/vec.h"
#include "core/half.h"
#include "core/thread_pool.h"

namespace darkroom::cpu {
namespace {

constexpr int64_t kBlock = 4096;  // elements per f32 staging block (16 KiB)

using F8Table = std::array<float, 256>;

const F8Table& f8_table(DType t) {
  static const F8Table e4m3 = [] {
    F8Table tab;
    for (int c = 0; c < 256; ++c) tab[c] = f8e4m3_to_f32(static_cast<uint8_t>(c));
    return tab;
  }();
  static const F8Table e5m2 = [] {
    F8Table tab;
    for (int c = 0; c < 256; ++c) tab[c] = f8e5m2_to_f32(static_cast<uint8_t>(c));
    return tab;
  }();
  return t == DType::F8E4M3 ? e4m3 : e5m2;
}

// n elements of `src` (dtype `t`, any float dtype) into dst as f32.
void decode(const void* src, DType t, float* dst, int64_t n) {
  switch (t) {
    case DType::F8E4M3:
    case DType::F8E5M2: {
      const F8Table& tab = f8_table(t);
      const uint8_t* s = static_cast<const uint8_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = tab[s[i]];
      return;
    }
    case DType::F64: {
      const double* s = static_cast<const double*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<float>(s[i]);
      return;
    }
    default:
      load_f32(src, t, dst, n);
  }
}

// f32 → bf16, round to nearest even; a NaN becomes a quiet NaN with the same sign
// (rounding its bits could carry into the exponent and make it infinite).
void encode_bf16(const float* src, uint16_t* dst, int64_t n) {
  const uint32_t* s = reinterpret_cast<const uint32_t*>(src);
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t u = s[i];
    const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    const uint32_t quiet = (u >> 16) | 0x40u;
    dst[i] = static_cast<uint16_t>((u & 0x7fffffffu) > 0x7f800000u ? quiet : rounded);
  }
}

void encode(const float* src, DType t, void* dst, int64_t n) {
  if (t == DType::BF16)
    encode_bf16(src, static_cast<uint16_t*>(dst), n);
  else
    store_f32(src, t, dst, n);  // f32 copy or the hardware f16 conversion
}

}  // namespace

void cast(const CastArgs& args) {
  const Tensor& x = args.x;
  const Tensor& out = args.out;
  const int64_t n = x.numel();
  if (n == 0) return;
  const DType from = x.dtype(), to = out.dtype();
  const size_t in_elem = dtype_size(from), out_elem = dtype_size(to);
  const char* src = static_cast<const char*>(x.raw());
  char* dst = static_cast<char*>(out.raw());
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  ThreadPool::global().parallel_for(
      blocks,
      [&](int64_t begin, int64_t end) {
        float buf[kBlock];
        for (int64_t b = begin; b < end; ++b) {
          const int64_t i0 = b * kBlock;
          const int64_t len = std::min(kBlock, n - i0);
          if (from == DType::F32) {
            encode(reinterpret_cast<const float*>(src) + i0, to, dst + i0 * out_elem, len);
          } else if (to == DType::F32) {
            decode(src + i0 * in_elem, from, reinterpret_cast<float*>(dst) + i0, len);
          } else {
            decode(src + i0 * in_elem, from, buf, len);
            encode(buf, to, dst + i0 * out_elem, len);
          }
        }
      },
      16);  // ≥ 64 Ki elements per chunk: smaller casts are not worth a hand-off
}

}  // namespace darkroom::cpu
