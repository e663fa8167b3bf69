#include "core/dtype.h"

#include "core/error.h"

namespace darkroom {

std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::F32:
      return "f32";
    case DType::F16:
      return "f16";
    case DType::BF16:
      return "bf16";
    case DType::F8E4M3:
      return "f8e4m3";
    case DType::F8E5M2:
      return "f8e5m2";
    case DType::F64:
      return "f64";
    case DType::I64:
      return "i64";
    case DType::I32:
      return "i32";
    case DType::I16:
      return "i16";
    case DType::I8:
      return "i8";
    case DType::U8:
      return "u8";
    case DType::Bool:
      return "bool";
  }
  return "?";
}

DType parse_dtype(std::string_view name) {
  for (int i = 0; i <= static_cast<int>(DType::Bool); ++i) {
    auto t = static_cast<DType>(i);
    if (dtype_name(t) == name) return t;
  }
  fail("dtype", "unknown dtype '", name, "' (use f32, f16, bf16, f8e4m3, ...)");
}

}  // namespace darkroom
