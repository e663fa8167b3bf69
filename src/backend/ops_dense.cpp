// linear, matmul, conv2d, attention: validation and dispatch.
#include <cmath>

#include "backend/op_checks.h"
#include "backend/ops.h"

namespace darkroom::ops {
using namespace darkroom::detail;

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  const char* op = "linear";
  check_compute(op, x, "x");
  check_like(op, x, weight, "weight");
  DR_CHECK(x.ndim() >= 1, op, "x must have at least one dimension");
  DR_CHECK(weight.ndim() == 2, op, "weight has shape ", weight.shape(), ", expected [out, in]");
  const int64_t k = x.dim(-1), n = weight.dim(0);
  DR_CHECK(weight.dim(1) == k, op, "x has ", k, " features but weight ", weight.shape(),
           " expects ", weight.dim(1));
  check_vector(op, x, bias, n, "bias");
  Shape out_shape = x.shape();
  out_shape[-1] = n;
  LinearArgs a{x.reshape({-1, k}), weight, bias, Tensor::empty(out_shape, x.dtype(), x.device())};
  a.out = a.out.reshape({-1, n});
  ops_of(x).linear(a);
  return a.out.reshape(out_shape);
}

Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) {
  const char* op = "matmul";
  check_compute(op, a, "a");
  check_like(op, a, b, "b");
  check_rank(op, a, 2, 3, "a");
  check_rank(op, b, 2, 3, "b");
  Tensor a3 = a.ndim() == 2 ? a.reshape({1, a.dim(0), a.dim(1)}) : a;
  Tensor b3 = b.ndim() == 2 ? b.reshape({1, b.dim(0), b.dim(1)}) : b;
  const int64_t m = trans_a ? a3.dim(2) : a3.dim(1);
  const int64_t ka = trans_a ? a3.dim(1) : a3.dim(2);
  const int64_t kb = trans_b ? b3.dim(2) : b3.dim(1);
  const int64_t n = trans_b ? b3.dim(1) : b3.dim(2);
  DR_CHECK(ka == kb, op, "inner dimensions differ: a ", a.shape(), (trans_a ? "ᵀ" : ""), " vs b ",
           b.shape(), (trans_b ? "ᵀ" : ""));
  const int64_t ba = a3.dim(0), bb = b3.dim(0);
  DR_CHECK(ba == bb || ba == 1 || bb == 1, op, "batch sizes ", ba, " and ", bb,
           " do not broadcast");
  const int64_t batch = std::max(ba, bb);
  MatmulArgs args{a3, b3, Tensor::empty({batch, m, n}, a.dtype(), a.device()), trans_a, trans_b};
  ops_of(a).matmul(args);
  if (a.ndim() == 2 && b.ndim() == 2) return args.out.reshape({m, n});
  return args.out;
}

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, Conv2dParams p) {
  const char* op = "conv2d";
  check_compute(op, x, "x");
  check_like(op, x, weight, "weight");
  check_rank(op, x, 4, 4, "x (NHWC)");
  check_rank(op, weight, 4, 4, "weight (OIHW)");
  DR_CHECK(weight.dim(1) == x.dim(3), op, "x has ", x.dim(3), " channels but weight ",
           weight.shape(), " expects ", weight.dim(1));
  DR_CHECK(p.stride >= 1 && p.padding >= 0, op, "stride ", p.stride, " and padding ", p.padding,
           " are invalid");
  const int64_t kh = weight.dim(2), kw = weight.dim(3);
  const int64_t ho = (x.dim(1) + 2 * p.padding - kh) / p.stride + 1;
  const int64_t wo = (x.dim(2) + 2 * p.padding - kw) / p.stride + 1;
  DR_CHECK(x.dim(1) + 2 * p.padding >= kh && x.dim(2) + 2 * p.padding >= kw, op, "input ",
           x.shape(), " is smaller than the kernel ", weight.shape());
  check_vector(op, x, bias, weight.dim(0), "bias");
  Conv2dArgs a{x,         weight,
               bias,      Tensor::empty({x.dim(0), ho, wo, weight.dim(0)}, x.dtype(), x.device()),
               p.stride,  p.stride,
               p.padding, p.padding};
  ops_of(x).conv2d(a);
  return a.out;
}

Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, int heads, const Tensor& mask,
                 float scale) {
  const char* op = "attention";
  check_compute(op, q, "q");
  check_like(op, q, k, "k");
  check_like(op, q, v, "v");
  check_rank(op, q, 3, 3, "q");
  check_rank(op, k, 3, 3, "k");
  check_rank(op, v, 3, 3, "v");
  DR_CHECK(heads >= 1, op, "heads must be at least 1, got ", heads);
  DR_CHECK(q.dim(0) == k.dim(0) && q.dim(0) == v.dim(0), op, "batch sizes differ: q ", q.shape(),
           ", k ", k.shape(), ", v ", v.shape());
  DR_CHECK(k.dim(1) == v.dim(1), op, "k ", k.shape(), " and v ", v.shape(),
           " have different token counts");
  DR_CHECK(q.dim(2) == k.dim(2), op, "q ", q.shape(), " and k ", k.shape(),
           " have different widths");
  DR_CHECK(q.dim(2) % heads == 0 && v.dim(2) % heads == 0, op, "widths ", q.dim(2), " and ",
           v.dim(2), " are not divisible by ", heads, " heads");
  DR_CHECK(k.dim(1) >= 1, op, "k has no tokens");
  const int64_t b = q.dim(0), nq = q.dim(1), nk = k.dim(1);
  Tensor m;
  if (mask.defined()) {
    DR_CHECK(mask.device() == q.device() && mask.dtype() == DType::F32, op, "mask must be f32 on ",
             q.device());
    check_rank(op, mask, 2, 3, "mask");
    m = mask.ndim() == 2 ? mask.reshape({1, mask.dim(0), mask.dim(1)}) : mask;
    DR_CHECK(
        (m.dim(0) == 1 || m.dim(0) == b) && (m.dim(1) == 1 || m.dim(1) == nq) && m.dim(2) == nk, op,
        "mask ", mask.shape(), " does not broadcast to [", b, ", ", nq, ", ", nk, "]");
  }
  const float s = scale > 0 ? scale : 1.0f / std::sqrt(static_cast<float>(q.dim(2) / heads));
  AttentionArgs a{q, k, v, m, Tensor::empty({b, nq, v.dim(2)}, q.dtype(), q.device()), heads, s};
  ops_of(q).attention(a);
  return a.out;
}

}  // namespace darkroom::ops
