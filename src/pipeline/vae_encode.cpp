#include "pipeline/vae_encode.h"

#include "backend/ops.h"
#include "core/error.h"

namespace darkroom::pipeline {

Tensor vae_encode(const VaeHandle& vae, const Tensor& pixels, const char* op,
                  const std::function<void()>& before_each) {
  DR_CHECK(vae.vae->config().has_encoder, op, "this VAE file has no encoder");
  DR_CHECK(pixels.ndim() == 4 && pixels.dim(3) >= 3, op, "expected an image [N, H, W, C], got ",
           pixels.shape().str());
  const int64_t r = vae.scale();
  const int64_t n = pixels.dim(0), H = pixels.dim(1), W = pixels.dim(2), C = pixels.dim(3);
  const int64_t h = H / r * r, w = W / r * r;
  DR_CHECK(h > 0 && w > 0, op, "the image (", W, "x", H, ") is smaller than ", r, " pixels");
  const int64_t oy = (H % r) / 2, ox = (W % r) / 2;
  const std::vector<float> src = pixels.to_floats();
  std::vector<float> out;
  for (int64_t i = 0; i < n; ++i) {
    if (before_each) before_each();
    std::vector<float> img(static_cast<size_t>(h * w * 3));
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x)
        for (int64_t k = 0; k < 3; ++k)
          img[static_cast<size_t>((y * w + x) * 3 + k)] =
              src[static_cast<size_t>(((i * H + y + oy) * W + x + ox) * C + k)] * 2.0f - 1.0f;
    // [1, h/r, w/r, z], back on the CPU when the VAE runs on a CUDA device
    const Tensor mean =
        ops::to_device(vae.vae->encode(Tensor::from_floats(img, {1, h, w, 3})).mean, kCpu);
    const std::vector<float> m = mean.to_floats();
    out.insert(out.end(), m.begin(), m.end());
  }
  return Tensor::from_floats(out, {n, h / r, w / r, vae.vae->config().z_channels});
}

}  // namespace darkroom::pipeline
