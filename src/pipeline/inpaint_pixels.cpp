#include "pipeline/inpaint_pixels.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "pipeline/mask_ops.h"

namespace darkroom::pipeline {

MaskedPixels mask_pixels(const Tensor& pixels, const Tensor& mask, int64_t multiple,
                         const char* op) {
  DR_CHECK(pixels.ndim() == 4 && pixels.dim(3) >= 3, op, "expected an image [N, H, W, C], got ",
           pixels.shape().str());
  DR_CHECK(mask.ndim() >= 2, op, "expected a mask [N, H, W], got ", mask.shape().str());
  const int64_t n = pixels.dim(0), H = pixels.dim(1), W = pixels.dim(2), C = pixels.dim(3);
  const int64_t h = H / multiple * multiple, w = W / multiple * multiple;
  DR_CHECK(h > 0 && w > 0, op, "the image (", W, "x", H, ") is smaller than ", multiple, " pixels");
  const int64_t mh = mask.dim(mask.ndim() - 2), mw = mask.dim(mask.ndim() - 1);
  const Tensor m3 = Tensor::from_floats(mask.to_floats(), {mask.numel() / (mh * mw), mh, mw});
  const int64_t m = m3.dim(0);
  DR_CHECK(m == n || m == 1, op, "the mask batch (", m, ") does not fit the image batch (", n, ")");
  const std::vector<float> full = resize_masks_bilinear(m3, H, W).to_floats();
  const int64_t oy = (H % multiple) / 2, ox = (W % multiple) / 2;

  std::vector<float> mv(static_cast<size_t>(m * h * w));
  for (int64_t i = 0; i < m; ++i)
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x)
        mv[static_cast<size_t>((i * h + y) * w + x)] =
            full[static_cast<size_t>((i * H + y + oy) * W + x + ox)];

  const std::vector<float> src = pixels.to_floats();
  std::vector<float> pv(static_cast<size_t>(n * h * w * 3));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x) {
        const float keep =
            1.0f - std::nearbyint(mv[static_cast<size_t>(((i % m) * h + y) * w + x)]);
        for (int64_t k = 0; k < 3; ++k) {
          const float p = src[static_cast<size_t>(((i * H + y + oy) * W + x + ox) * C + k)];
          pv[static_cast<size_t>(((i * h + y) * w + x) * 3 + k)] = (p - 0.5f) * keep + 0.5f;
        }
      }
  return {Tensor::from_floats(pv, {n, h, w, 3}), Tensor::from_floats(mv, {m, h, w})};
}

Tensor grow_mask(const Tensor& mask, int grow) {
  DR_CHECK(mask.ndim() == 3, "mask", "expected a mask [M, H, W], got ", mask.shape().str());
  DR_CHECK(grow >= 0, "mask", "grow_mask_by must not be negative, got ", grow);
  const int64_t m = mask.dim(0), h = mask.dim(1), w = mask.dim(2);
  std::vector<float> in = mask.to_floats();
  for (float& v : in) v = std::nearbyint(v);
  if (grow == 0) return Tensor::from_floats(in, mask.shape());
  // Output pixel (y, x) of conv2d(padding p) sums input rows y-p .. y-p+grow-1 (same for
  // columns); with 0/1 inputs, clamp(sum, 0, 1) is 1 when any of them is set.
  const int64_t p = grow / 2;  // = ceil((grow - 1) / 2)
  std::vector<float> rows(in.size(), 0.0f), out(in.size(), 0.0f);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x) {
        float any = 0.0f;
        for (int64_t d = 0; d < grow; ++d) {
          const int64_t yy = y - p + d;
          if (yy >= 0 && yy < h) any = std::max(any, in[static_cast<size_t>((i * h + yy) * w + x)]);
        }
        rows[static_cast<size_t>((i * h + y) * w + x)] = any;
      }
  for (int64_t i = 0; i < m; ++i)
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x) {
        float any = 0.0f;
        for (int64_t d = 0; d < grow; ++d) {
          const int64_t xx = x - p + d;
          if (xx >= 0 && xx < w)
            any = std::max(any, rows[static_cast<size_t>((i * h + y) * w + xx)]);
        }
        out[static_cast<size_t>((i * h + y) * w + x)] = std::clamp(any, 0.0f, 1.0f);
      }
  return Tensor::from_floats(out, mask.shape());
}

}  // namespace darkroom::pipeline
