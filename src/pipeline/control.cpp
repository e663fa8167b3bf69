// control_residuals: ComfyUI's ControlNet.get_control (comfy/controlnet.py) for a chain.
#include "pipeline/control.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/ops.h"
#include "core/error.h"

namespace darkroom::pipeline {
namespace {

// comfy.utils.common_upscale(hint, width, height, "nearest-exact", "center") on an NHWC
// image [M, H, W, C]: cut to the target's aspect ratio around the centre, then
// torch's nearest-exact (source index floor((i + 0.5)·in/out), clamped).
Tensor resize_hint(const Tensor& hint, int64_t height, int64_t width) {
  const int64_t m = hint.dim(0), H = hint.dim(1), W = hint.dim(2), C = hint.dim(3);
  const double old_aspect = static_cast<double>(W) / static_cast<double>(H);
  const double new_aspect = static_cast<double>(width) / static_cast<double>(height);
  int64_t x0 = 0, y0 = 0;
  if (old_aspect > new_aspect)
    x0 = static_cast<int64_t>(std::nearbyint((W - W * (new_aspect / old_aspect)) / 2.0));
  else if (old_aspect < new_aspect)
    y0 = static_cast<int64_t>(std::nearbyint((H - H * (old_aspect / new_aspect)) / 2.0));
  const int64_t ch = H - 2 * y0, cw = W - 2 * x0;
  if (y0 == 0 && x0 == 0 && ch == height && cw == width) return hint;
  Tensor out = Tensor::empty({m, height, width, C}, DType::F32);
  const float* s = hint.data<float>();
  float* d = out.data<float>();
  const double sy = static_cast<double>(ch) / static_cast<double>(height);
  const double sx = static_cast<double>(cw) / static_cast<double>(width);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t y = 0; y < height; ++y) {
      const int64_t iy =
          std::min<int64_t>(static_cast<int64_t>(std::floor((y + 0.5) * sy)), ch - 1) + y0;
      for (int64_t x = 0; x < width; ++x) {
        const int64_t ix =
            std::min<int64_t>(static_cast<int64_t>(std::floor((x + 0.5) * sx)), cw - 1) + x0;
        std::copy_n(s + ((i * H + iy) * W + ix) * C, C, d + ((i * height + y) * width + x) * C);
      }
    }
  return out;
}

// broadcast_image_to: the hint's batch made b = per_entry · entries: the first per_entry
// images (cycled when there are fewer), the same for every batched entry.
Tensor batch_hint(const Tensor& hint, int64_t b, int entries) {
  const int64_t m = hint.dim(0);
  const int64_t per = b / entries;
  const int64_t img = hint.numel() / m;
  Tensor out = Tensor::empty({b, hint.dim(1), hint.dim(2), hint.dim(3)}, DType::F32);
  const float* s = hint.data<float>();
  float* d = out.data<float>();
  for (int64_t i = 0; i < b; ++i) {
    const int64_t src = m == 1 ? 0 : (i % per) % std::min(m, per);
    std::copy_n(s + src * img, img, d + i * img);
  }
  return out;
}

}  // namespace

std::optional<ControlResiduals> control_residuals(const ControlLink& last,
                                                  const ModelSampling& sampling, float sigma,
                                                  const Tensor& x_in, const Tensor& timesteps,
                                                  const Tensor& context, const Tensor& y,
                                                  int entries) {
  const sampling::DiscreteSchedule& schedule = *sampling.schedule;
  const int64_t b = x_in.dim(0), h = x_in.dim(1), w = x_in.dim(2);
  std::optional<ControlResiduals> sum;
  // The chain from its first link to its last, as control_merge nests them.
  std::vector<const ControlLink*> chain;
  for (const ControlLink* l = &last; l; l = l->previous.get()) chain.push_back(l);
  std::reverse(chain.begin(), chain.end());
  for (const ControlLink* l : chain) {
    DR_CHECK(l->net && l->hint.defined() && l->hint.ndim() == 4, "ControlNet",
             "a ControlNet link needs a network and a hint image [N, H, W, C]");
    // get_control: outside (percent_to_sigma(start), percent_to_sigma(end)) it adds nothing.
    if (sigma > schedule.percent_to_sigma(l->start_percent) ||
        sigma < schedule.percent_to_sigma(l->end_percent))
      continue;
    const int f = l->net->hint_factor();  // compression_ratio: 8
    DR_CHECK(l->hint.dim(3) == l->net->hint_channels(), "ControlNet", "the hint image has ",
             l->hint.dim(3), " channels; this ControlNet takes ", l->net->hint_channels());
    const Tensor hint =
        batch_hint(resize_hint(ops::cast(l->hint, DType::F32), h * f, w * f), b, entries);
    ControlResiduals r = l->net->forward(x_in, hint, timesteps, context, y);
    // x *= strength, in the residuals' dtype on their device
    auto scaled = [&](const Tensor& t) {
      if (!t.defined() || l->strength == 1.0f) return t;
      const Tensor s = ops::to_device(
          ops::cast(Tensor::from_floats(std::vector<float>{l->strength}, {1}), t.dtype()),
          t.device());
      return ops::mul(t, s);
    };
    for (Tensor& t : r.skips) t = scaled(t);
    r.middle = scaled(r.middle);
    if (!sum) {
      sum = std::move(r);
      continue;
    }
    auto add = [](const Tensor& a, const Tensor& c) {
      if (!a.defined()) return c;
      if (!c.defined()) return a;
      return ops::add(a, c);
    };
    if (sum->skips.size() < r.skips.size()) sum->skips.resize(r.skips.size());
    for (size_t i = 0; i < r.skips.size(); ++i) sum->skips[i] = add(sum->skips[i], r.skips[i]);
    sum->middle = add(sum->middle, r.middle);
  }
  return sum;
}

namespace {

// "area" in ComfyUI's cond dict once areas are resolved: ConditioningSetArea(Percentage),
// and a mask with set_cond_area "mask bounds".
bool has_area(const CondEntry& e) {
  return e.area || e.area_percent || (e.mask && e.mask_bounds);
}

}  // namespace

Conditioning control_to_uncond(const Conditioning& positive, const Conditioning& negative) {
  std::vector<std::shared_ptr<const ControlLink>> chains;
  for (const CondEntry& e : positive)
    if (e.control_apply_to_uncond && !has_area(e) && e.control) chains.push_back(e.control);
  std::vector<size_t> targets;
  for (size_t i = 0; i < negative.size(); ++i) {
    if (has_area(negative[i])) continue;
    if (negative[i].control) return negative;  // the negative has its own ControlNet
    targets.push_back(i);
  }
  Conditioning out = negative;
  if (targets.empty()) return out;  // (ComfyUI divides by zero here)
  for (size_t x = 0; x < chains.size(); ++x) out[targets[x % targets.size()]].control = chains[x];
  return out;
}

}  // namespace darkroom::pipeline
