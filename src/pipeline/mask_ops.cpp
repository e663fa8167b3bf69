#include "pipeline/mask_ops.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace darkroom::pipeline {

Tensor resize_masks_bilinear(const Tensor& masks, int64_t h, int64_t w) {
  DR_CHECK(masks.ndim() == 3, "mask", "expected a mask [M, H, W], got ", masks.shape().str());
  const int64_t m = masks.dim(0), ih = masks.dim(1), iw = masks.dim(2);
  const std::vector<float> in = masks.to_floats();
  if (ih == h && iw == w) return Tensor::from_floats(in, {m, h, w});
  std::vector<float> out(static_cast<size_t>(m * h * w));
  // area_pixel_compute_source_index with align_corners = False, as ATen's CPU kernel:
  // src = scale·(dst + 0.5) - 0.5 clamped at 0, scale = in / out in float.
  const float sy = static_cast<float>(ih) / static_cast<float>(h);
  const float sx = static_cast<float>(iw) / static_cast<float>(w);
  for (int64_t y = 0; y < h; ++y) {
    const float fy = std::max(sy * (static_cast<float>(y) + 0.5f) - 0.5f, 0.0f);
    const int64_t y0 = static_cast<int64_t>(fy);
    const int64_t y1 = y0 + (y0 < ih - 1 ? 1 : 0);
    const float ly1 = fy - static_cast<float>(y0), ly0 = 1.0f - ly1;
    for (int64_t x = 0; x < w; ++x) {
      const float fx = std::max(sx * (static_cast<float>(x) + 0.5f) - 0.5f, 0.0f);
      const int64_t x0 = static_cast<int64_t>(fx);
      const int64_t x1 = x0 + (x0 < iw - 1 ? 1 : 0);
      const float lx1 = fx - static_cast<float>(x0), lx0 = 1.0f - lx1;
      for (int64_t i = 0; i < m; ++i) {
        const float* p = in.data() + i * ih * iw;
        out[static_cast<size_t>((i * h + y) * w + x)] =
            ly0 * (lx0 * p[y0 * iw + x0] + lx1 * p[y0 * iw + x1]) +
            ly1 * (lx0 * p[y1 * iw + x0] + lx1 * p[y1 * iw + x1]);
      }
    }
  }
  return Tensor::from_floats(out, {m, h, w});
}

Tensor prepare_noise_mask(const Tensor& mask, int64_t n, int64_t h, int64_t w, int64_t c) {
  Tensor m3 = mask;
  if (mask.ndim() == 2) m3 = mask.reshape({1, mask.dim(0), mask.dim(1)});
  if (mask.ndim() == 4)
    m3 = mask.reshape({-1, mask.dim(mask.ndim() - 2), mask.dim(mask.ndim() - 1)});
  const Tensor r = resize_masks_bilinear(m3, h, w);
  const std::vector<float> v = r.to_floats();
  const int64_t mcount = r.dim(0);
  std::vector<float> out(static_cast<size_t>(n * h * w * c));
  for (int64_t i = 0; i < n; ++i) {
    const float* src = v.data() + (i % mcount) * h * w;
    for (int64_t p = 0; p < h * w; ++p)
      for (int64_t k = 0; k < c; ++k) out[static_cast<size_t>((i * h * w + p) * c + k)] = src[p];
  }
  return Tensor::from_floats(out, {n, h, w, c});
}

}  // namespace darkroom::pipeline
