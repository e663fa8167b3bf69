// Element types. Compute happens in F32, F16 and BF16; F8E4M3 and F8E5M2 are storage
// formats that weights are cast from at load; the integer types and F64 exist so a
// checkpoint's every tensor can be described (token ids, schedule buffers).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace darkroom {

enum class DType : uint8_t { F32, F16, BF16, F8E4M3, F8E5M2, F64, I64, I32, I16, I8, U8, Bool };

constexpr size_t dtype_size(DType t) {
  switch (t) {
    case DType::F64:
    case DType::I64:
      return 8;
    case DType::F32:
    case DType::I32:
      return 4;
    case DType::F16:
    case DType::BF16:
    case DType::I16:
      return 2;
    case DType::F8E4M3:
    case DType::F8E5M2:
    case DType::I8:
    case DType::U8:
    case DType::Bool:
      return 1;
  }
  return 0;
}

constexpr bool is_float(DType t) {
  return t == DType::F32 || t == DType::F16 || t == DType::BF16 || t == DType::F64 ||
         t == DType::F8E4M3 || t == DType::F8E5M2;
}

// The dtypes ops compute in.
constexpr bool is_compute_dtype(DType t) {
  return t == DType::F32 || t == DType::F16 || t == DType::BF16;
}

// "f32", "bf16", ... (lower case, as on the command line).
std::string_view dtype_name(DType t);
// Parses dtype_name()'s spelling; throws darkroom::Error on anything else.
DType parse_dtype(std::string_view name);

}  // namespace darkroom
