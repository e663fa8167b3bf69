// Validation helpers shared by the ops_*.cpp files.
#pragma once

#include <initializer_list>
#include <string_view>

#include "backend/device.h"
#include "core/tensor.h"

namespace darkroom::detail {

inline void check_defined(const char* op, const Tensor& t, const char* what) {
  DR_CHECK(t.defined(), op, what, " is missing");
}

inline void check_compute(const char* op, const Tensor& t, const char* what) {
  check_defined(op, t, what);
  DR_CHECK(is_compute_dtype(t.dtype()), op, what, " has dtype ", dtype_name(t.dtype()),
           "; ops compute in f32, f16 or bf16");
}

// `t` must be on `ref`'s device and have its dtype.
inline void check_like(const char* op, const Tensor& ref, const Tensor& t, const char* what) {
  check_defined(op, t, what);
  DR_CHECK(t.device() == ref.device(), op, what, " is on ", t.device(), " but the input is on ",
           ref.device());
  DR_CHECK(t.dtype() == ref.dtype(), op, what, " has dtype ", dtype_name(t.dtype()),
           " but the input is ", dtype_name(ref.dtype()));
}

inline void check_vector(const char* op, const Tensor& ref, const Tensor& t, int64_t c,
                         const char* what) {
  if (!t.defined()) return;
  check_like(op, ref, t, what);
  DR_CHECK(t.ndim() == 1 && t.dim(0) == c, op, what, " has shape ", t.shape(), ", expected [", c,
           "]");
}

inline void check_rank(const char* op, const Tensor& t, int lo, int hi, const char* what) {
  DR_CHECK(t.ndim() >= lo && t.ndim() <= hi, op, what, " has shape ", t.shape(), "; expected rank ",
           lo == hi ? std::to_string(lo) : std::to_string(lo) + " to " + std::to_string(hi));
}

inline const OpTable& ops_of(const Tensor& t) {
  return device_for(t.device()).ops();
}

}  // namespace darkroom::detail
