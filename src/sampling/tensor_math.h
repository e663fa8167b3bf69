// Small elementwise helpers over CPU f32 tensors for the samplers. Latents are small
// (SD1.5 at 512²: 4·64·64 = 16K values), so plain loops that g++ vectorises are enough.
// Arithmetic is in f32, one rounding per operation as torch does on f32 tensors.
#pragma once

#include <cstdint>

#include "core/error.h"
#include "core/tensor.h"

namespace darkroom::sampling {

void check_f32_cpu(const Tensor& t, const char* where);
void check_same_shape(const Tensor& a, const Tensor& b, const char* where);

// out[i] = f(a[i])
template <class F>
Tensor map1(const Tensor& a, F f) {
  Tensor out = Tensor::empty(a.shape(), DType::F32);
  const float* pa = a.data<float>();
  float* po = out.data<float>();
  const int64_t n = a.numel();
  for (int64_t i = 0; i < n; ++i) po[i] = f(pa[i]);
  return out;
}

// out[i] = f(a[i], b[i])
template <class F>
Tensor map2(const Tensor& a, const Tensor& b, F f) {
  check_same_shape(a, b, "sampling");
  Tensor out = Tensor::empty(a.shape(), DType::F32);
  const float* pa = a.data<float>();
  const float* pb = b.data<float>();
  float* po = out.data<float>();
  const int64_t n = a.numel();
  for (int64_t i = 0; i < n; ++i) po[i] = f(pa[i], pb[i]);
  return out;
}

// out[i] = f(a[i], b[i], c[i])
template <class F>
Tensor map3(const Tensor& a, const Tensor& b, const Tensor& c, F f) {
  check_same_shape(a, b, "sampling");
  check_same_shape(a, c, "sampling");
  Tensor out = Tensor::empty(a.shape(), DType::F32);
  const float* pa = a.data<float>();
  const float* pb = b.data<float>();
  const float* pc = c.data<float>();
  float* po = out.data<float>();
  const int64_t n = a.numel();
  for (int64_t i = 0; i < n; ++i) po[i] = f(pa[i], pb[i], pc[i]);
  return out;
}

// (x - denoised) / σ: the Karras ODE derivative.
Tensor to_d(const Tensor& x, float sigma, const Tensor& denoised);
// a·x + b·y
Tensor lincomb(float a, const Tensor& x, float b, const Tensor& y);
// x + s·y
Tensor add_scaled(const Tensor& x, float s, const Tensor& y);
// A deep copy.
Tensor clone(const Tensor& x);

}  // namespace darkroom::sampling
