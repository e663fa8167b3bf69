// Add, Sub, Mul, Div with numpy broadcasting. a, b and out arrive with one rank; a size-1
// dimension of a or b broadcasts.
//
// The shapes are first collapsed: size-1 output dimensions are dropped and neighbouring
// dimensions where each operand either is present or broadcasts in both are merged.
// The common cases then become short: same shapes → [numel]; [2,4096,320] + [1,1,320]
// → [8192, 320] with b repeating along dim 0; [2,64,64,320] + [2,1,1,320] →
// [2, 4096, 320]. The innermost collapsed dimension is run as a contiguous vector loop
// (each operand stepping by 1, or held fixed when it broadcasts there), and the outer
// dimensions are walked by an odometer of element offsets.
#include <algorithm>
#include <vector>

#include "backend/cpu/kernels.h"
#include "backend/cpu/vec_math.h"
#include "core/thread_pool.h"

namespace darkroom::cpu {
namespace {

constexpr int64_t kTile = 4096;  // elements of the inner dimension per task

// The collapsed iteration space: out dims, and each operand's element stride per dim
// (0 where it broadcasts).
struct Layout {
  std::vector<int64_t> dims, a_stride, b_stride;
};

Layout collapse(const Tensor& a, const Tensor& b, const Tensor& out) {
  Layout l;
  std::vector<bool> a_bc, b_bc;
  for (int i = 0; i < out.ndim(); ++i) {
    if (out.dim(i) == 1) continue;
    const bool ab = a.dim(i) == 1, bb = b.dim(i) == 1;
    if (!l.dims.empty() && a_bc.back() == ab && b_bc.back() == bb) {
      l.dims.back() *= out.dim(i);
    } else {
      l.dims.push_back(out.dim(i));
      a_bc.push_back(ab);
      b_bc.push_back(bb);
    }
  }
  if (l.dims.empty()) {  // a single element
    l.dims.push_back(1);
    a_bc.push_back(false);
    b_bc.push_back(false);
  }
  // Row-major strides over each operand's own (non-broadcast) dims.
  const size_t r = l.dims.size();
  l.a_stride.assign(r, 0);
  l.b_stride.assign(r, 0);
  int64_t sa = 1, sb = 1;
  for (size_t i = r; i-- > 0;) {
    if (!a_bc[i]) l.a_stride[i] = sa, sa *= l.dims[i];
    if (!b_bc[i]) l.b_stride[i] = sb, sb *= l.dims[i];
  }
  return l;
}

template <BinaryKind K>
inline float op(float x, float y) {
  if constexpr (K == BinaryKind::Add) return x + y;
  if constexpr (K == BinaryKind::Sub) return x - y;
  if constexpr (K == BinaryKind::Mul) return x * y;
  if constexpr (K == BinaryKind::Div) return x / y;
}

// out[i] = a[i·sa] ∘ b[i·sb] with sa, sb ∈ {0, 1}; each case is its own loop so that the
// loop body is a plain vector operation.
template <BinaryKind K>
void apply(const float* a, bool a_steps, const float* b, bool b_steps, float* out, int64_t n) {
  if (a_steps && b_steps) {
    for (int64_t i = 0; i < n; ++i) out[i] = op<K>(a[i], b[i]);
  } else if (a_steps) {
    const float y = b[0];
    for (int64_t i = 0; i < n; ++i) out[i] = op<K>(a[i], y);
  } else if (b_steps) {
    const float x = a[0];
    for (int64_t i = 0; i < n; ++i) out[i] = op<K>(x, b[i]);
  } else {
    const float v = op<K>(a[0], b[0]);
    for (int64_t i = 0; i < n; ++i) out[i] = v;
  }
}

template <BinaryKind K>
void run(const BinaryArgs& args) {
  const Tensor &a = args.a, &b = args.b, &out = args.out;
  if (out.numel() == 0) return;
  const Layout l = collapse(a, b, out);
  const int outer = static_cast<int>(l.dims.size()) - 1;
  const int64_t inner = l.dims.back();
  const bool a_steps = l.a_stride.back() != 0, b_steps = l.b_stride.back() != 0;
  int64_t rows = 1;
  for (int i = 0; i < outer; ++i) rows *= l.dims[i];
  const int64_t tiles_per_row = (inner + kTile - 1) / kTile;
  const int64_t min_tasks = std::max<int64_t>(1, 16384 / std::min(inner, kTile));

  ThreadPool::global().parallel_for(
      rows * tiles_per_row,
      [&](int64_t t0, int64_t t1) {
        std::vector<float> a_buf(kTile), b_buf(kTile), out_buf(kTile);
        // Odometer over the outer dims, started at the first row of this chunk.
        int64_t rem = t0 / tiles_per_row;
        std::vector<int64_t> idx(static_cast<size_t>(outer));
        int64_t a_off = 0, b_off = 0;
        for (int i = outer - 1; i >= 0; --i) {
          idx[i] = rem % l.dims[i];
          rem /= l.dims[i];
          a_off += idx[i] * l.a_stride[i];
          b_off += idx[i] * l.b_stride[i];
        }
        for (int64_t t = t0; t < t1; ++t) {
          const int64_t tile = t % tiles_per_row;
          if (tile == 0 && t != t0) {  // next row
            for (int i = outer - 1; i >= 0; --i) {
              a_off += l.a_stride[i];
              b_off += l.b_stride[i];
              if (++idx[i] < l.dims[i]) break;
              a_off -= l.a_stride[i] * l.dims[i];
              b_off -= l.b_stride[i] * l.dims[i];
              idx[i] = 0;
            }
          }
          const int64_t at = tile * kTile, n = std::min(kTile, inner - at);
          const int64_t out_at = (t / tiles_per_row) * inner + at;
          const float* pa = f32_in(a, a_off + (a_steps ? at : 0), a_steps ? n : 1, a_buf.data());
          const float* pb = f32_in(b, b_off + (b_steps ? at : 0), b_steps ? n : 1, b_buf.data());
          float* dst = f32_out(out, out_at, out_buf.data());
          apply<K>(pa, a_steps, pb, b_steps, dst, n);
          f32_out_done(out, out_at, dst, n);
        }
      },
      min_tasks);
}

}  // namespace

void binary(const BinaryArgs& args) {
  switch (args.kind) {
    case BinaryKind::Add:
      return run<BinaryKind::Add>(args);
    case BinaryKind::Sub:
      return run<BinaryKind::Sub>(args);
    case BinaryKind::Mul:
      return run<BinaryKind::Mul>(args);
    case BinaryKind::Div:
      return run<BinaryKind::Div>(args);
  }
}

}  // namespace darkroom::cpu
