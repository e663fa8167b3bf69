// Canny (comfy_extras/nodes_canny.py): edge detection for ControlNet hints, built on
// OpenCV's cv::Canny (Debian's libopencv-imgproc) where ComfyUI calls kornia's canny.
//
// Each image goes through the steps kornia.filters.canny takes, in OpenCV's 8-bit form:
//
//   grey      cv::cvtColor RGB→GRAY (0.299 R + 0.587 G + 0.114 B, kornia's weights) of the
//             image quantised to 8 bits, round(255·v); an alpha channel is ignored
//   blur      cv::GaussianBlur 5×5, σ = 1 (kornia's kernel_size and sigma)
//   edges     cv::Canny with the 3×3 Sobel and the L2 gradient magnitude √(gx² + gy²)
//             (kornia's), thresholds low·255 and high·255
//
// The threshold mapping: kornia's unnormalised Sobel on [0, 1] values gives magnitudes
// 1/255 of OpenCV's on 0..255 values, so a kornia threshold t is OpenCV's 255·t. What
// differs from kornia: the blurred image is rounded to 8 bits before the gradient (kornia
// stays in float), the borders are OpenCV's reflect-101 with its own hysteresis, and
// OpenCV's non-maximum suppression compares with the neighbours along the gradient's
// quantised direction using its own tie rule. Edges therefore agree with kornia's only
// approximately (the oracle test measures it against OpenCV itself, see
// tests/workflow/test_canny_node.cpp). The output is 0 or 1, repeated over 3 channels.
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "workflow/node.h"

namespace darkroom::workflow {
namespace {

// IMAGE [N, H, W, C] → IMAGE [N, H, W, 3] of 0/1 edges.
pipeline::Image canny_edges(const pipeline::Image& images, double low, double high) {
  DR_CHECK(images.defined() && images.ndim() == 4 && images.dtype() == DType::F32, "Canny",
           "expected an IMAGE [N, H, W, C] in f32, got ", images.shape().str());
  const int64_t n = images.dim(0), h = images.dim(1), w = images.dim(2), c = images.dim(3);
  DR_CHECK(c == 1 || c == 3 || c == 4, "Canny", "expected 1, 3 or 4 channels, got ", c);
  DR_CHECK(low <= high, "Canny", "low_threshold (", low, ") must not exceed high_threshold (", high,
           ")");
  pipeline::Image out = Tensor::empty({n, h, w, 3}, DType::F32);
  const float* src = images.data<float>();
  float* dst = out.data<float>();
  const int rows = static_cast<int>(h), cols = static_cast<int>(w);
  for (int64_t i = 0; i < n; ++i) {
    // The image as 8-bit RGB (or grey), [H, W, C] u8.
    cv::Mat rgb(rows, cols, c == 1 ? CV_8UC1 : CV_8UC3);
    const float* s = src + i * h * w * c;
    for (int64_t p = 0; p < h * w; ++p)
      for (int64_t k = 0; k < std::min<int64_t>(c, 3); ++k) {
        const float v = std::clamp(s[p * c + k], 0.0f, 1.0f);
        rgb.data[p * rgb.channels() + k] = static_cast<uint8_t>(std::lround(v * 255.0f));
      }
    cv::Mat grey;
    if (c == 1)
      grey = rgb;
    else
      cv::cvtColor(rgb, grey, cv::COLOR_RGB2GRAY);
    cv::Mat blurred, edges;
    cv::GaussianBlur(grey, blurred, cv::Size(5, 5), 1.0, 1.0, cv::BORDER_REFLECT_101);
    cv::Canny(blurred, edges, low * 255.0, high * 255.0, 3, /*L2gradient=*/true);
    float* d = dst + i * h * w * 3;
    for (int64_t p = 0; p < h * w; ++p) {
      const float e = edges.data[p] ? 1.0f : 0.0f;
      d[p * 3] = d[p * 3 + 1] = d[p * 3 + 2] = e;
    }
  }
  return out;
}

const NodeRegistrar kCanny(
    {.class_name = "Canny",
     .display_name = "Canny",
     .category = "image/preprocessors",
     .required = {link_input("image", "IMAGE"),
                  float_input("low_threshold",
                              {{"default", 0.4}, {"min", 0.01}, {"max", 0.99}, {"step", 0.01}}),
                  float_input("high_threshold",
                              {{"default", 0.8}, {"min", 0.01}, {"max", 0.99}, {"step", 0.01}})},
     .outputs = {{"IMAGE", "IMAGE"}},
     .python_module = "comfy_extras.nodes_canny",
     .run = [](const NodeInputs& in, NodeContext&) -> NodeResult {
       return {{Value::of("IMAGE", canny_edges(in.image("image"), in.get_float("low_threshold"),
                                               in.get_float("high_threshold")))}};
     }});

}  // namespace
}  // namespace darkroom::workflow
