// Argument structs of the backend kernels, one per op in op_list.h. The public
// functions in ops.h validate shapes and dtypes, allocate `out` and fill these; a
// kernel may assume everything stated here. All tensors are contiguous and on the
// same device; unless noted, inputs and `out` share one compute dtype (f32/f16/bf16).
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace darkroom {

// out[M, N] = x[M, K] · weight[N, K]ᵀ (+ bias[N]). `bias` may be undefined.
struct LinearArgs {
  Tensor x, weight, bias, out;
};

// out[B, M, N] = op(a) · op(b) with a [Ba, M, K] ([Ba, K, M] if trans_a) and
// b [Bb, K, N] ([Bb, N, K] if trans_b); Ba and Bb equal B or are 1 (broadcast).
struct MatmulArgs {
  Tensor a, b, out;
  bool trans_a = false, trans_b = false;
};

// x [N, H, W, C] (NHWC), weight [O, C, kh, kw] (PyTorch OIHW, as stored in files),
// bias [O] or undefined, out [N, Ho, Wo, O].
struct Conv2dArgs {
  Tensor x, weight, bias, out;
  int stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;
};

// x [N, S, C] (S = all spatial positions), groups divides C; weight/bias [C] (either
// may be undefined); statistics per (n, group) over S × C/groups in f32.
struct GroupNormArgs {
  Tensor x, weight, bias, out;
  int groups = 32;
  float eps = 1e-5f;
  bool silu = false;  // apply SiLU after the affine transform
};

// x [M, C]; normalises each row; weight/bias [C] or undefined.
struct LayerNormArgs {
  Tensor x, weight, bias, out;
  float eps = 1e-5f;
};

// x [M, C]; out = x / sqrt(mean(x²) + eps) · weight; weight [C] or undefined.
struct RmsNormArgs {
  Tensor x, weight, out;
  float eps = 1e-6f;
};

// Multi-head scaled-dot-product attention in token-major layout:
// q [B, Nq, H·D], k [B, Nk, H·D], v [B, Nk, H·Dv], out [B, Nq, H·Dv].
// mask: undefined or f32 [Bm, Nq or 1, Nk] added to the scores, Bm ∈ {1, B}.
struct AttentionArgs {
  Tensor q, k, v, mask, out;
  int heads = 1;
  float scale = 1.0f;
};

// Softmax over the last dimension: x [M, C].
struct SoftmaxArgs {
  Tensor x, out;
};

enum class UnaryKind { Silu, Gelu, GeluTanh, QuickGelu, LeakyRelu };

struct UnaryArgs {
  Tensor x, out;
  UnaryKind kind = UnaryKind::Silu;
  float negative_slope = 0.0f;  // LeakyRelu: out = x < 0 ? x · negative_slope : x
};

// x [M, 2C] → out [M, C] = x[:, :C] · gelu(x[:, C:]) (diffusers' GEGLU, erf GELU).
struct GegluArgs {
  Tensor x, out;
};

enum class BinaryKind { Add, Sub, Mul, Div };

// Numpy broadcasting: a and b are given already expanded to out's rank; a dimension of
// size 1 broadcasts.
struct BinaryArgs {
  Tensor a, b, out;
  BinaryKind kind = BinaryKind::Add;
};

// Concatenation along `axis`; every input has out's shape except along axis.
struct ConcatArgs {
  std::vector<Tensor> inputs;
  Tensor out;
  int axis = 0;
};

// x [N, H, W, C] → out [N, 2H, 2W, C], nearest neighbour.
struct UpsampleNearest2xArgs {
  Tensor x, out;
};

enum class ResizeMode { Bilinear, Bicubic };

// x [N, H, W, C] → out [N, Ho, Wo, C]; PyTorch interpolate semantics with
// align_corners=False (half-pixel centres), bicubic with A = -0.75 and clamped taps.
struct ResizeArgs {
  Tensor x, out;
  ResizeMode mode = ResizeMode::Bilinear;
};

// t [B] f32 → out [B, dim] (out's dtype may be any compute dtype):
// freqs[i] = exp(-ln(max_period) · i / (half - downscale_freq_shift)), i < half = dim/2;
// out = [cos(t·f), sin(t·f)] if flip_sin_to_cos else [sin, cos]; zero-padded if dim odd.
struct TimestepEmbeddingArgs {
  Tensor t, out;
  bool flip_sin_to_cos = true;
  float downscale_freq_shift = 0.0f;
  float max_period = 10000.0f;
};

// ids [M] (i32 or i64) → out [M, C] = table[ids] with table [V, C].
struct EmbeddingArgs {
  Tensor ids, table, out;
};

// out = x with axes reordered: out.dim(i) = x.dim(axes[i]). Any dtype.
struct PermuteArgs {
  Tensor x, out;
  std::vector<int> axes;
};

// out = x[..., start:start+len*step:step, ...] along `axis` (step ≥ 1). Any dtype.
struct SliceArgs {
  Tensor x, out;
  int axis = 0;
  int64_t start = 0, step = 1;
};

// out = x converted to out's dtype. x may be any float dtype (f8 included); out is a
// compute dtype.
struct CastArgs {
  Tensor x, out;
};

}  // namespace darkroom
