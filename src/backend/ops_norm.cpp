// group_norm, layer_norm, rms_norm, softmax: validation and dispatch.
#include "backend/op_checks.h"
#include "backend/ops.h"

namespace darkroom::ops {
using namespace darkroom::detail;

Tensor group_norm(const Tensor& x, int groups, const Tensor& weight, const Tensor& bias, float eps,
                  bool silu) {
  const char* op = "group_norm";
  check_compute(op, x, "x");
  DR_CHECK(x.ndim() >= 2, op, "x has shape ", x.shape(), "; expected [N, ..., C]");
  const int64_t c = x.dim(-1);
  DR_CHECK(groups >= 1 && c % groups == 0, op, c, " channels are not divisible into ", groups,
           " groups");
  check_vector(op, x, weight, c, "weight");
  check_vector(op, x, bias, c, "bias");
  const Tensor x3 = x.reshape({x.dim(0), -1, c});
  GroupNormArgs a{x3,     weight, bias, Tensor::empty(x3.shape(), x.dtype(), x.device()),
                  groups, eps,    silu};
  ops_of(x).group_norm(a);
  return a.out.reshape(x.shape());
}

Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps) {
  const char* op = "layer_norm";
  check_compute(op, x, "x");
  DR_CHECK(x.ndim() >= 1, op, "x must have at least one dimension");
  const int64_t c = x.dim(-1);
  check_vector(op, x, weight, c, "weight");
  check_vector(op, x, bias, c, "bias");
  const Tensor x2 = x.reshape({-1, c});
  LayerNormArgs a{x2, weight, bias, Tensor::empty(x2.shape(), x.dtype(), x.device()), eps};
  ops_of(x).layer_norm(a);
  return a.out.reshape(x.shape());
}

Tensor rms_norm(const Tensor& x, const Tensor& weight, float eps) {
  const char* op = "rms_norm";
  check_compute(op, x, "x");
  DR_CHECK(x.ndim() >= 1, op, "x must have at least one dimension");
  const int64_t c = x.dim(-1);
  check_vector(op, x, weight, c, "weight");
  const Tensor x2 = x.reshape({-1, c});
  RmsNormArgs a{x2, weight, Tensor::empty(x2.shape(), x.dtype(), x.device()), eps};
  ops_of(x).rms_norm(a);
  return a.out.reshape(x.shape());
}

Tensor softmax(const Tensor& x) {
  const char* op = "softmax";
  check_compute(op, x, "x");
  DR_CHECK(x.ndim() >= 1 && x.dim(-1) >= 1, op, "x has shape ", x.shape(),
           "; the last dimension must be non-empty");
  const Tensor x2 = x.reshape({-1, x.dim(-1)});
  SoftmaxArgs a{x2, Tensor::empty(x2.shape(), x.dtype(), x.device())};
  ops_of(x).softmax(a);
  return a.out.reshape(x.shape());
}

}  // namespace darkroom::ops
