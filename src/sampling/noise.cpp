// Latent noise in torch's order, and the transposes between NCHW and NHWC.
#include "sampling/noise.h"

#include <algorithm>
#include <memory>

#include "core/error.h"
#include "sampling/tensor_math.h"

namespace darkroom::sampling {

Tensor nchw_to_nhwc(const Tensor& x) {
  check_f32_cpu(x, "nchw_to_nhwc");
  DR_CHECK(x.ndim() == 4, "nchw_to_nhwc", "expected a 4-D tensor, got ", x.shape());
  const int64_t n = x.dim(0), c = x.dim(1), h = x.dim(2), w = x.dim(3);
  Tensor out = Tensor::empty({n, h, w, c}, DType::F32);
  const float* src = x.data<float>();
  float* dst = out.data<float>();
  for (int64_t b = 0; b < n; ++b)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t p = 0; p < h * w; ++p)
        dst[(b * h * w + p) * c + ch] = src[(b * c + ch) * h * w + p];
  return out;
}

Tensor nhwc_to_nchw(const Tensor& x) {
  check_f32_cpu(x, "nhwc_to_nchw");
  DR_CHECK(x.ndim() == 4, "nhwc_to_nchw", "expected a 4-D tensor, got ", x.shape());
  const int64_t n = x.dim(0), h = x.dim(1), w = x.dim(2), c = x.dim(3);
  Tensor out = Tensor::empty({n, c, h, w}, DType::F32);
  const float* src = x.data<float>();
  float* dst = out.data<float>();
  for (int64_t b = 0; b < n; ++b)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t p = 0; p < h * w; ++p)
        dst[(b * c + ch) * h * w + p] = src[(b * h * w + p) * c + ch];
  return out;
}

Tensor prepare_noise_nchw(std::span<const int64_t> nchw, uint64_t seed,
                          std::span<const int64_t> batch_index, BoxMuller box_muller) {
  DR_CHECK(nchw.size() == 4, "prepare_noise", "expected NCHW dims, got ", nchw.size(), " dims");
  for (int64_t d : nchw) DR_CHECK(d > 0, "prepare_noise", "latent dims must be positive");
  TorchGenerator gen(seed, box_muller);
  const Shape shape{nchw[0], nchw[1], nchw[2], nchw[3]};
  if (batch_index.empty()) return gen.randn(shape);

  for (int64_t i : batch_index) DR_CHECK(i >= 0, "prepare_noise", "negative batch_index ", i);
  const int64_t per_item = nchw[1] * nchw[2] * nchw[3];
  const int64_t last = *std::max_element(batch_index.begin(), batch_index.end());
  // Draw 0..last in order; only the listed ones are kept.
  std::vector<std::vector<float>> drawn(static_cast<size_t>(last + 1));
  for (int64_t i = 0; i <= last; ++i) {
    std::vector<float> item(static_cast<size_t>(per_item));
    gen.randn(item);
    if (std::find(batch_index.begin(), batch_index.end(), i) != batch_index.end())
      drawn[static_cast<size_t>(i)] = std::move(item);
  }
  const auto count = static_cast<int64_t>(batch_index.size());
  Tensor out = Tensor::empty({count, nchw[1], nchw[2], nchw[3]}, DType::F32);
  for (int64_t k = 0; k < count; ++k) {
    const auto& item = drawn[static_cast<size_t>(batch_index[static_cast<size_t>(k)])];
    std::copy(item.begin(), item.end(), out.data<float>() + k * per_item);
  }
  return out;
}

Tensor prepare_noise(std::span<const int64_t> nchw, uint64_t seed,
                     std::span<const int64_t> batch_index, BoxMuller box_muller) {
  return nchw_to_nhwc(prepare_noise_nchw(nchw, seed, batch_index, box_muller));
}

NoiseSampler torch_noise_sampler(const Shape& x_shape, uint64_t seed, BoxMuller box_muller) {
  // ComfyUI adds 1 to the seed for CPU latents so that this stream differs from the
  // initial noise's.
  auto gen = std::make_shared<TorchGenerator>(seed + 1, box_muller);
  if (x_shape.ndim() == 4) {
    const Shape nchw{x_shape[0], x_shape[3], x_shape[1], x_shape[2]};
    return [gen, nchw](float, float) { return nchw_to_nhwc(gen->randn(nchw)); };
  }
  return [gen, x_shape](float, float) { return gen->randn(x_shape); };
}

}  // namespace darkroom::sampling
