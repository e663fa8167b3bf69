// Elementwise helpers for the samplers.
#include "sampling/tensor_math.h"

#include <cstring>

namespace darkroom::sampling {

void check_f32_cpu(const Tensor& t, const char* where) {
  DR_CHECK(t.defined(), where, "tensor is undefined");
  DR_CHECK(t.dtype() == DType::F32, where, "sampling works on f32 tensors, got ",
           dtype_name(t.dtype()));
  DR_CHECK(t.device().type == DeviceType::Cpu, where, "sampling works on CPU tensors");
}

void check_same_shape(const Tensor& a, const Tensor& b, const char* where) {
  check_f32_cpu(a, where);
  check_f32_cpu(b, where);
  DR_CHECK(a.shape() == b.shape(), where, "shape mismatch: ", a.shape(), " vs ", b.shape());
}

Tensor to_d(const Tensor& x, float sigma, const Tensor& denoised) {
  return map2(x, denoised, [sigma](float xv, float dv) { return (xv - dv) / sigma; });
}

Tensor lincomb(float a, const Tensor& x, float b, const Tensor& y) {
  return map2(x, y, [a, b](float xv, float yv) { return a * xv + b * yv; });
}

Tensor add_scaled(const Tensor& x, float s, const Tensor& y) {
  return map2(x, y, [s](float xv, float yv) { return xv + s * yv; });
}

Tensor clone(const Tensor& x) {
  check_f32_cpu(x, "sampling");
  Tensor out = Tensor::empty(x.shape(), DType::F32);
  std::memcpy(out.raw(), x.raw(), x.nbytes());
  return out;
}

}  // namespace darkroom::sampling
