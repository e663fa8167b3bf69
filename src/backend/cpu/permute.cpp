// Permute of any dtype (moves raw elements of 1, 2, 4 or 8 bytes).
//
// The permutation is first simplified: size-1 axes are dropped, and input axes that stay
// neighbours in the output are merged. NCHW → NHWC ({0,2,3,1}) then becomes the batched
// transpose [N, C, HW] → [N, HW, C], and NHWC → NCHW the reverse. What remains is one of:
//  - the identity: one memcpy;
//  - the innermost input axis stays innermost: memcpy of contiguous runs;
//  - otherwise: for every index of the other axes, a 2-D transpose between the output's
//    innermost axis and the axis the input's innermost axis went to, done in square tiles
//    so that both the reads and the writes stay within a few cache lines.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "backend/cpu/kernels.h"
#include "core/thread_pool.h"

namespace darkroom::cpu {
namespace {

// A permutation after simplification: out axis i is input axis perm[i]; dims are the
// input's sizes.
struct Plan {
  std::vector<int64_t> dims;
  std::vector<int> perm;
};

Plan simplify(const std::vector<int64_t>& in_dims, const std::vector<int>& axes) {
  const int rank = static_cast<int>(in_dims.size());
  // Drop size-1 axes: renumber the survivors in input order.
  std::vector<int> renumber(static_cast<size_t>(rank), -1);
  std::vector<int64_t> dims;
  for (int a = 0; a < rank; ++a)
    if (in_dims[static_cast<size_t>(a)] != 1) {
      renumber[static_cast<size_t>(a)] = static_cast<int>(dims.size());
      dims.push_back(in_dims[static_cast<size_t>(a)]);
    }
  std::vector<int> perm;
  for (int a : axes)
    if (renumber[static_cast<size_t>(a)] >= 0) perm.push_back(renumber[static_cast<size_t>(a)]);

  // Group runs of output positions whose input axes are consecutive.
  struct Group {
    int first_axis;
    int64_t size;
  };
  std::vector<Group> groups;  // in output order
  for (size_t i = 0; i < perm.size(); ++i) {
    const int a = perm[i];
    if (i > 0 && perm[i - 1] + 1 == a)
      groups.back().size *= dims[static_cast<size_t>(a)];
    else
      groups.push_back({a, dims[static_cast<size_t>(a)]});
  }
  // The merged input axes are the groups in input order.
  std::vector<int> by_input(groups.size());
  for (size_t g = 0; g < groups.size(); ++g) by_input[g] = static_cast<int>(g);
  std::sort(by_input.begin(), by_input.end(),
            [&](int a, int b) { return groups[a].first_axis < groups[b].first_axis; });
  Plan p;
  p.dims.resize(groups.size());
  p.perm.resize(groups.size());
  for (size_t k = 0; k < by_input.size(); ++k) {
    const Group& g = groups[static_cast<size_t>(by_input[k])];
    p.dims[k] = g.size;
    p.perm[static_cast<size_t>(by_input[k])] = static_cast<int>(k);
  }
  return p;
}

// Transpose of one [rows ≤ kTile, cols] block: out[r·out_ld + c] = in[c·in_ld + r].
// Each kTile × kTile tile goes through a buffer in L1: it is read as kTile contiguous
// input runs and written as kTile contiguous output runs, so neither side walks memory
// with a large stride (which at power-of-two strides also thrashes cache sets).
constexpr int64_t kTile = 64;

template <class T>
void transpose_block(const T* in, int64_t in_ld, T* out, int64_t out_ld, int64_t rows,
                     int64_t cols) {
  alignas(64) T buf[kTile * kTile];  // buf[c·kTile + r]
  for (int64_t c0 = 0; c0 < cols; c0 += kTile) {
    const int64_t nc = std::min(kTile, cols - c0);
    if (rows == kTile && nc == kTile) {
      // Full tile: constant trip counts let g++ unroll and vectorise both halves.
      for (int64_t c = 0; c < kTile; ++c) {
        const T* s = in + (c0 + c) * in_ld;
        for (int64_t r = 0; r < kTile; ++r) buf[c * kTile + r] = s[r];
      }
      for (int64_t r = 0; r < kTile; ++r) {
        T* d = out + r * out_ld + c0;
        for (int64_t c = 0; c < kTile; ++c) d[c] = buf[c * kTile + r];
      }
    } else {
      for (int64_t c = 0; c < nc; ++c) {
        const T* s = in + (c0 + c) * in_ld;
        for (int64_t r = 0; r < rows; ++r) buf[c * kTile + r] = s[r];
      }
      for (int64_t r = 0; r < rows; ++r) {
        T* d = out + r * out_ld + c0;
        for (int64_t c = 0; c < nc; ++c) d[c] = buf[c * kTile + r];
      }
    }
  }
}

// Offsets of the element at multi-index `idx` over `count` axes.
struct Walker {
  std::vector<int64_t> sizes, in_strides, out_strides;
  void offsets(int64_t linear, int64_t& in_off, int64_t& out_off) const {
    in_off = out_off = 0;
    for (size_t k = sizes.size(); k-- > 0;) {
      const int64_t i = linear % sizes[k];
      linear /= sizes[k];
      in_off += i * in_strides[k];
      out_off += i * out_strides[k];
    }
  }
};

template <class T>
void permute_typed(const T* in, T* out, const Plan& p) {
  const int rank = static_cast<int>(p.dims.size());
  std::vector<int64_t> in_stride(static_cast<size_t>(rank)), out_dims(static_cast<size_t>(rank)),
      out_stride(static_cast<size_t>(rank));
  int64_t numel = 1;
  for (int a = rank - 1; a >= 0; --a) {
    in_stride[static_cast<size_t>(a)] = numel;
    numel *= p.dims[static_cast<size_t>(a)];
  }
  for (int i = 0; i < rank; ++i)
    out_dims[static_cast<size_t>(i)] = p.dims[static_cast<size_t>(p.perm[static_cast<size_t>(i)])];
  int64_t s = 1;
  for (int i = rank - 1; i >= 0; --i) {
    out_stride[static_cast<size_t>(i)] = s;
    s *= out_dims[static_cast<size_t>(i)];
  }
  ThreadPool& pool = ThreadPool::global();

  // The output's innermost axis is the input's innermost (rank ≤ 1 after merging means
  // the identity): copy contiguous runs.
  if (rank <= 1 || p.perm.back() == rank - 1) {
    const int64_t run = rank == 0 ? 1 : p.dims.back();
    Walker w;
    for (int i = 0; i + 1 < rank; ++i) {
      w.sizes.push_back(out_dims[static_cast<size_t>(i)]);
      w.in_strides.push_back(in_stride[static_cast<size_t>(p.perm[static_cast<size_t>(i)])]);
      w.out_strides.push_back(out_stride[static_cast<size_t>(i)]);
    }
    const int64_t runs = numel / run;
    const int64_t run_bytes = run * static_cast<int64_t>(sizeof(T));
    pool.parallel_for(
        runs,
        [&](int64_t begin, int64_t end) {
          for (int64_t r = begin; r < end; ++r) {
            int64_t io, oo;
            w.offsets(r, io, oo);
            std::memcpy(out + oo, in + io, static_cast<size_t>(run_bytes));
          }
        },
        std::max<int64_t>(1, (int64_t{256} << 10) / run_bytes));
    return;
  }

  // Transpose between out axis `j` (fed by the input's innermost axis, input stride 1)
  // and the output's innermost axis (fed by input axis q, output stride 1).
  const int q = p.perm.back();
  int j = 0;
  while (p.perm[static_cast<size_t>(j)] != rank - 1) ++j;
  const int64_t rows = out_dims[static_cast<size_t>(j)];  // along out axis j
  const int64_t cols = out_dims.back();                   // along the out innermost axis
  const int64_t in_ld = in_stride[static_cast<size_t>(q)];
  const int64_t out_ld = out_stride[static_cast<size_t>(j)];
  Walker w;
  for (int i = 0; i + 1 < rank; ++i) {
    if (i == j) continue;
    w.sizes.push_back(out_dims[static_cast<size_t>(i)]);
    w.in_strides.push_back(in_stride[static_cast<size_t>(p.perm[static_cast<size_t>(i)])]);
    w.out_strides.push_back(out_stride[static_cast<size_t>(i)]);
  }
  // Work items: (index of the other axes) × (a band of rows), so a single large 2-D
  // transpose still spreads over the pool.
  constexpr int64_t kBand = kTile;
  const int64_t bands = (rows + kBand - 1) / kBand;
  const int64_t blocks = numel / (rows * cols);
  pool.parallel_for(
      blocks * bands,
      [&](int64_t begin, int64_t end) {
        for (int64_t it = begin; it < end; ++it) {
          const int64_t blk = it / bands, band = it % bands;
          int64_t io, oo;
          w.offsets(blk, io, oo);
          const int64_t r0 = band * kBand;
          transpose_block(in + io + r0, in_ld, out + oo + r0 * out_ld, out_ld,
                          std::min(kBand, rows - r0), cols);
        }
      },
      std::max<int64_t>(1, (int64_t{1} << 15) / (kBand * cols)));
}

}  // namespace

void permute(const PermuteArgs& args) {
  const Tensor& x = args.x;
  if (x.numel() == 0) return;
  const Plan p = simplify(x.shape().dims(), args.axes);
  switch (dtype_size(x.dtype())) {
    case 1:
      permute_typed(x.data<uint8_t>(), args.out.data<uint8_t>(), p);
      break;
    case 2:
      permute_typed(x.data<uint16_t>(), args.out.data<uint16_t>(), p);
      break;
    case 4:
      permute_typed(x.data<uint32_t>(), args.out.data<uint32_t>(), p);
      break;
    case 8:
      permute_typed(x.data<uint64_t>(), args.out.data<uint64_t>(), p);
      break;
    default:
      DR_ASSERT(false, "element size ", dtype_size(x.dtype()));
  }
}

}  // namespace darkroom::cpu
