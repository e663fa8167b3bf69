// The ops that models are built from. Each function validates its inputs (throwing
// darkroom::Error "[op] what was wrong"), allocates the output on the inputs' device
// and dispatches to that device's kernel. Shapes follow op_args.h.
#pragma once

#include <vector>

#include "backend/op_args.h"
#include "core/tensor.h"

namespace darkroom::ops {

// x [..., K] · weight[N, K]ᵀ + bias[N] → [..., N]
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = {});
// [B?, M, K] · [B?, K, N] → [B, M, N]; a 2-D operand broadcasts over the batch.
Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a = false, bool trans_b = false);

struct Conv2dParams {
  int stride = 1;
  int padding = 0;
};
// x [N, H, W, C], weight [O, C, kh, kw], bias [O] → [N, Ho, Wo, O]
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = {},
              Conv2dParams params = {});

// x [N, ..., C] (channels last); weight/bias [C] may be undefined.
Tensor group_norm(const Tensor& x, int groups, const Tensor& weight, const Tensor& bias,
                  float eps = 1e-5f, bool silu = false);
Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps = 1e-5f);
Tensor rms_norm(const Tensor& x, const Tensor& weight, float eps = 1e-6f);

// q [B, Nq, H·D], k [B, Nk, H·D], v [B, Nk, H·Dv] → [B, Nq, H·Dv].
// mask: undefined or f32, broadcastable to [B, Nq, Nk] (rank 2 or 3), added to scores.
// scale ≤ 0 means 1/sqrt(D).
Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, int heads,
                 const Tensor& mask = {}, float scale = 0.0f);

Tensor softmax(const Tensor& x);  // over the last dimension
Tensor silu(const Tensor& x);
Tensor gelu(const Tensor& x, bool tanh_approximation = false);
Tensor quick_gelu(const Tensor& x);
// torch.nn.functional.leaky_relu: x for x >= 0, x · negative_slope below.
Tensor leaky_relu(const Tensor& x, float negative_slope = 0.01f);
Tensor geglu(const Tensor& x);  // [..., 2C] → [..., C]

// Elementwise with numpy broadcasting.
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);

Tensor concat(const std::vector<Tensor>& inputs, int axis);
Tensor upsample_nearest2x(const Tensor& x);  // [N, H, W, C] → [N, 2H, 2W, C]
Tensor resize(const Tensor& x, int64_t out_h, int64_t out_w, ResizeMode mode);

// t [B] f32 → [B, dim] in `dtype`.
Tensor timestep_embedding(const Tensor& t, int dim, bool flip_sin_to_cos = true,
                          float downscale_freq_shift = 0.0f, float max_period = 10000.0f,
                          DType dtype = DType::F32);
// ids [...] (i32/i64) with table [V, C] → [..., C]
Tensor embedding(const Tensor& ids, const Tensor& table);
Tensor permute(const Tensor& x, const std::vector<int>& axes);
Tensor slice(const Tensor& x, int axis, int64_t start, int64_t end, int64_t step = 1);
Tensor cast(const Tensor& x, DType dtype);
// A copy of x on `device` (x itself when already there).
Tensor to_device(const Tensor& x, DeviceId device);

}  // namespace darkroom::ops
