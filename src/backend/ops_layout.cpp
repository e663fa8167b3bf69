// concat, upsample, resize, timestep embedding, embedding, permute, slice, cast and
// device copies: validation and dispatch.
#include <algorithm>

#include "backend/op_checks.h"
#include "backend/ops.h"

namespace darkroom::ops {
using namespace darkroom::detail;
namespace {
int normalise_axis(const char* op, int axis, int rank) {
  const int a = axis < 0 ? axis + rank : axis;
  DR_CHECK(a >= 0 && a < rank, op, "axis ", axis, " is out of range for rank ", rank);
  return a;
}
}  // namespace

Tensor concat(const std::vector<Tensor>& inputs, int axis) {
  const char* op = "concat";
  DR_CHECK(!inputs.empty(), op, "needs at least one input");
  const Tensor& first = inputs[0];
  check_compute(op, first, "input 0");
  const int ax = normalise_axis(op, axis, first.ndim());
  Shape out_shape = first.shape();
  out_shape[ax] = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& t = inputs[i];
    check_like(op, first, t, "an input");
    DR_CHECK(t.ndim() == first.ndim(), op, "input ", i, " has shape ", t.shape(),
             " but input 0 has ", first.shape());
    for (int d = 0; d < t.ndim(); ++d)
      DR_CHECK(d == ax || t.dim(d) == first.dim(d), op, "input ", i, " has shape ", t.shape(),
               ", which differs from ", first.shape(), " outside axis ", ax);
    out_shape[ax] += t.dim(ax);
  }
  ConcatArgs a{inputs, Tensor::empty(out_shape, first.dtype(), first.device()), ax};
  ops_of(first).concat(a);
  return a.out;
}

Tensor upsample_nearest2x(const Tensor& x) {
  const char* op = "upsample_nearest2x";
  check_compute(op, x, "x");
  check_rank(op, x, 4, 4, "x (NHWC)");
  UpsampleNearest2xArgs a{
      x, Tensor::empty({x.dim(0), 2 * x.dim(1), 2 * x.dim(2), x.dim(3)}, x.dtype(), x.device())};
  ops_of(x).upsample_nearest2x(a);
  return a.out;
}

Tensor resize(const Tensor& x, int64_t out_h, int64_t out_w, ResizeMode mode) {
  const char* op = "resize";
  check_compute(op, x, "x");
  check_rank(op, x, 4, 4, "x (NHWC)");
  DR_CHECK(out_h >= 1 && out_w >= 1, op, "output size ", out_h, "x", out_w, " is empty");
  DR_CHECK(x.dim(1) >= 1 && x.dim(2) >= 1, op, "input ", x.shape(), " is empty");
  ResizeArgs a{x, Tensor::empty({x.dim(0), out_h, out_w, x.dim(3)}, x.dtype(), x.device()), mode};
  ops_of(x).resize(a);
  return a.out;
}

Tensor timestep_embedding(const Tensor& t, int dim, bool flip_sin_to_cos,
                          float downscale_freq_shift, float max_period, DType dtype) {
  const char* op = "timestep_embedding";
  check_defined(op, t, "t");
  DR_CHECK(t.dtype() == DType::F32 && t.ndim() == 1, op, "t must be f32 [B], got ",
           dtype_name(t.dtype()), " ", t.shape());
  DR_CHECK(dim >= 2, op, "dim must be at least 2, got ", dim);
  DR_CHECK(is_compute_dtype(dtype), op, "output dtype ", dtype_name(dtype),
           " is not a compute dtype");
  DR_CHECK(dim / 2 - downscale_freq_shift != 0.0f, op, "dim/2 - downscale_freq_shift is zero");
  TimestepEmbeddingArgs a{t, Tensor::empty({t.dim(0), dim}, dtype, t.device()), flip_sin_to_cos,
                          downscale_freq_shift, max_period};
  ops_of(t).timestep_embedding(a);
  return a.out;
}

Tensor embedding(const Tensor& ids, const Tensor& table) {
  const char* op = "embedding";
  check_defined(op, ids, "ids");
  check_compute(op, table, "table");
  DR_CHECK(ids.dtype() == DType::I32 || ids.dtype() == DType::I64, op,
           "ids must be i32 or i64, got ", dtype_name(ids.dtype()));
  DR_CHECK(ids.device() == table.device(), op, "ids and table are on different devices");
  check_rank(op, table, 2, 2, "table");
  std::vector<int64_t> dims = ids.shape().dims();
  dims.push_back(table.dim(1));
  EmbeddingArgs a{ids.reshape({-1}), table,
                  Tensor::empty({ids.numel(), table.dim(1)}, table.dtype(), table.device())};
  ops_of(table).embedding(a);
  return a.out.reshape(Shape(dims));
}

Tensor permute(const Tensor& x, const std::vector<int>& axes) {
  const char* op = "permute";
  check_defined(op, x, "x");
  DR_CHECK(static_cast<int>(axes.size()) == x.ndim(), op, axes.size(), " axes given for rank ",
           x.ndim());
  std::vector<int> norm(axes.size());
  std::vector<bool> seen(axes.size(), false);
  std::vector<int64_t> dims(axes.size());
  for (size_t i = 0; i < axes.size(); ++i) {
    norm[i] = normalise_axis(op, axes[i], x.ndim());
    DR_CHECK(!seen[norm[i]], op, "axis ", axes[i], " appears twice");
    seen[norm[i]] = true;
    dims[i] = x.dim(norm[i]);
  }
  PermuteArgs a{x, Tensor::empty(Shape(dims), x.dtype(), x.device()), norm};
  ops_of(x).permute(a);
  return a.out;
}

Tensor slice(const Tensor& x, int axis, int64_t start, int64_t end, int64_t step) {
  const char* op = "slice";
  check_defined(op, x, "x");
  const int ax = normalise_axis(op, axis, x.ndim());
  const int64_t n = x.dim(ax);
  DR_CHECK(step >= 1, op, "step must be at least 1, got ", step);
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<int64_t>(start, 0, n);
  end = std::clamp<int64_t>(end, start, n);
  Shape out_shape = x.shape();
  out_shape[ax] = (end - start + step - 1) / step;
  SliceArgs a{x, Tensor::empty(out_shape, x.dtype(), x.device()), ax, start, step};
  ops_of(x).slice(a);
  return a.out;
}

Tensor cast(const Tensor& x, DType dtype) {
  const char* op = "cast";
  check_defined(op, x, "x");
  DR_CHECK(is_float(x.dtype()), op, "cannot cast ", dtype_name(x.dtype()), " to a float type");
  DR_CHECK(is_compute_dtype(dtype), op, "target ", dtype_name(dtype),
           " is not a compute dtype (f32, f16, bf16)");
  if (x.dtype() == dtype) return x;
  CastArgs a{x, Tensor::empty(x.shape(), dtype, x.device())};
  ops_of(x).cast(a);
  return a.out;
}

Tensor to_device(const Tensor& x, DeviceId device) {
  check_defined("to_device", x, "x");
  if (x.device() == device) return x;
  Tensor out = Tensor::empty(x.shape(), x.dtype(), device);
  Device& d = device.type == DeviceType::Cpu ? device_for(x.device()) : device_for(device);
  d.copy(x, out);
  return out;
}

}  // namespace darkroom::ops
