// Activations, GEGLU and broadcasting binary ops: validation and dispatch.
#include <algorithm>

#include "backend/op_checks.h"
#include "backend/ops.h"

namespace darkroom::ops {
using namespace darkroom::detail;
namespace {

Tensor unary(const Tensor& x, UnaryKind kind, const char* op, float negative_slope = 0.0f) {
  check_compute(op, x, "x");
  UnaryArgs a{x, Tensor::empty(x.shape(), x.dtype(), x.device()), kind, negative_slope};
  ops_of(x).unary(a);
  return a.out;
}

Tensor binary(const Tensor& a, const Tensor& b, BinaryKind kind, const char* op) {
  check_compute(op, a, "a");
  check_like(op, a, b, "b");
  const int rank = std::max(a.ndim(), b.ndim());
  std::vector<int64_t> da(rank, 1), db(rank, 1), dout(rank, 1);
  for (int i = 0; i < a.ndim(); ++i) da[rank - a.ndim() + i] = a.dim(i);
  for (int i = 0; i < b.ndim(); ++i) db[rank - b.ndim() + i] = b.dim(i);
  for (int i = 0; i < rank; ++i) {
    DR_CHECK(da[i] == db[i] || da[i] == 1 || db[i] == 1, op, "shapes ", a.shape(), " and ",
             b.shape(), " do not broadcast");
    dout[i] = da[i] == 1 ? db[i] : da[i];
  }
  BinaryArgs args{a.reshape(Shape(da)), b.reshape(Shape(db)),
                  Tensor::empty(Shape(dout), a.dtype(), a.device()), kind};
  ops_of(a).binary(args);
  return args.out;
}

}  // namespace

Tensor silu(const Tensor& x) {
  return unary(x, UnaryKind::Silu, "silu");
}
Tensor gelu(const Tensor& x, bool tanh_approximation) {
  return unary(x, tanh_approximation ? UnaryKind::GeluTanh : UnaryKind::Gelu, "gelu");
}
Tensor quick_gelu(const Tensor& x) {
  return unary(x, UnaryKind::QuickGelu, "quick_gelu");
}
Tensor leaky_relu(const Tensor& x, float negative_slope) {
  return unary(x, UnaryKind::LeakyRelu, "leaky_relu", negative_slope);
}

Tensor geglu(const Tensor& x) {
  const char* op = "geglu";
  check_compute(op, x, "x");
  DR_CHECK(x.ndim() >= 1 && x.dim(-1) % 2 == 0, op, "x has shape ", x.shape(),
           "; the last dimension must be even");
  Shape out_shape = x.shape();
  out_shape[-1] /= 2;
  GegluArgs a{x.reshape({-1, x.dim(-1)}), Tensor::empty(out_shape, x.dtype(), x.device())};
  a.out = a.out.reshape({-1, out_shape[-1]});
  ops_of(x).geglu(a);
  return a.out.reshape(out_shape);
}

Tensor add(const Tensor& a, const Tensor& b) {
  return binary(a, b, BinaryKind::Add, "add");
}
Tensor sub(const Tensor& a, const Tensor& b) {
  return binary(a, b, BinaryKind::Sub, "sub");
}
Tensor mul(const Tensor& a, const Tensor& b) {
  return binary(a, b, BinaryKind::Mul, "mul");
}
Tensor div(const Tensor& a, const Tensor& b) {
  return binary(a, b, BinaryKind::Div, "div");
}

}  // namespace darkroom::ops
