// The layers networks are assembled from, each loaded under its checkpoint name and
// applied with the ops of backend/ops.h. Shapes: tokens [N, T, C], images [N, H, W, C].
#pragma once

#include <string_view>

#include "backend/ops.h"
#include "models/weights.h"

namespace darkroom::layers {

// y [..., out] = x [..., in] · Wᵀ + b; weight "<name>.weight" [out, in], bias "<name>.bias".
struct Linear {
  Tensor weight, bias;
  static Linear load(const Weights& w, std::string_view name, int64_t in, int64_t out,
                     bool bias = true);
  Tensor operator()(const Tensor& x) const { return ops::linear(x, weight, bias); }
};

// NHWC convolution; weight "<name>.weight" [out, in, k, k].
struct Conv2d {
  Tensor weight, bias;
  int stride = 1, padding = 0;
  static Conv2d load(const Weights& w, std::string_view name, int64_t in, int64_t out, int k,
                     int stride = 1, int padding = -1 /* -1: k / 2 */);
  Tensor operator()(const Tensor& x) const {
    return ops::conv2d(x, weight, bias, {stride, padding});
  }
};

struct GroupNorm {
  Tensor weight, bias;
  int groups = 32;
  float eps = 1e-6f;
  static GroupNorm load(const Weights& w, std::string_view name, int64_t channels, int groups,
                        float eps);
  Tensor operator()(const Tensor& x, bool silu = false) const {
    return ops::group_norm(x, groups, weight, bias, eps, silu);
  }
};

struct LayerNorm {
  Tensor weight, bias;
  float eps = 1e-5f;
  static LayerNorm load(const Weights& w, std::string_view name, int64_t channels, float eps);
  Tensor operator()(const Tensor& x) const { return ops::layer_norm(x, weight, bias, eps); }
};

}  // namespace darkroom::layers
