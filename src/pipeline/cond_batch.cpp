#include "pipeline/cond_batch.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <numeric>
#include <optional>
#include <tuple>

#include "backend/ops.h"
#include "core/error.h"
#include "models/unet_runner.h"
#include "pipeline/adm.h"
#include "pipeline/control.h"
#include "pipeline/mask_ops.h"
#include "pipeline/prompt_encoder.h"
#include "sampling/prediction.h"

namespace darkroom::pipeline {
namespace {

// Python's slice a[start:stop] on a length-n axis: [begin, end).
std::pair<int64_t, int64_t> py_slice(int64_t start, int64_t stop, int64_t n) {
  auto norm = [n](int64_t i) {
    if (i < 0) i += n;
    return std::clamp<int64_t>(i, 0, n);
  };
  const int64_t b = norm(start), e = norm(stop);
  return {b, std::max(b, e)};
}

// x [N, H, W, C] rows y..y+h, cols x..x+w.
Tensor crop(const Tensor& t, int64_t y, int64_t x, int64_t h, int64_t w) {
  const int64_t n = t.dim(0), H = t.dim(1), W = t.dim(2), C = t.dim(3);
  if (y == 0 && x == 0 && h == H && w == W) return t;
  Tensor out = Tensor::empty({n, h, w, C}, DType::F32);
  const float* s = t.data<float>();
  float* d = out.data<float>();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t r = 0; r < h; ++r)
      std::memcpy(d + ((i * h + r) * w) * C, s + ((i * H + y + r) * W + x) * C,
                  static_cast<size_t>(w * C) * sizeof(float));
  return out;
}

}  // namespace

std::vector<ResolvedCond> resolve_conds(const std::vector<const Conditioning*>& lists, int64_t n,
                                        int64_t H, int64_t W, int64_t C, ModelFamily family) {
  std::vector<ResolvedCond> out;
  for (size_t li = 0; li < lists.size(); ++li) {
    for (const CondEntry& e : *lists[li]) {
      DR_CHECK(e.context.defined() && e.context.ndim() == 3 && e.context.dim(0) == 1, "sampler",
               "a conditioning entry needs a context [1, T, C]");
      ResolvedCond r;
      r.entry = &e;
      r.control = e.control;
      r.list = static_cast<int>(li);
      r.context = e.context;
      r.start_percent = e.start_percent;
      r.end_percent = e.end_percent;
      // encode_model_conds: the sizes default to the whole latent's, whatever the area.
      if (family_has_adm(family)) r.adm = encode_adm(family, e, li == 1, H, W);
      // area = (h, w, y, x); ConditioningSetAreaPercentage's fractions become pixels as
      // resolve_areas_and_cond_masks rounds them.
      bool has_area = false;
      int64_t ah = H, aw = W, ay = 0, ax = 0;
      if (e.area_percent) {
        const CondAreaPercent& p = *e.area_percent;
        ah = std::max<int64_t>(1, static_cast<int64_t>(std::nearbyint(p.height * H)));
        aw = std::max<int64_t>(1, static_cast<int64_t>(std::nearbyint(p.width * W)));
        ay = static_cast<int64_t>(std::nearbyint(p.y * H));
        ax = static_cast<int64_t>(std::nearbyint(p.x * W));
        has_area = true;
      } else if (e.area) {
        ah = e.area->height;
        aw = e.area->width;
        ay = e.area->y;
        ax = e.area->x;
        has_area = true;
      }
      // input_x = x_in[:, :, y:y+h, x:x+w] (Python slicing clamps)
      const auto [y0, y1] = has_area ? py_slice(ay, ay + ah, H) : std::pair<int64_t, int64_t>{0, H};
      const auto [x0, x1] = has_area ? py_slice(ax, ax + aw, W) : std::pair<int64_t, int64_t>{0, W};
      r.y = y0;
      r.x = x0;
      r.h = y1 - y0;
      r.w = x1 - x0;
      DR_CHECK(r.h > 0 && r.w > 0, "sampler", "a conditioning area (", ah, "x", aw, " at ", ay, ",",
               ax, ") lies outside the ", H, "x", W, " latent");

      std::vector<float> mult(static_cast<size_t>(n * r.h * r.w * C), 1.0f);
      auto at = [&](int64_t i, int64_t yy, int64_t xx, int64_t k) -> float& {
        return mult[static_cast<size_t>(((i * r.h + yy) * r.w + xx) * C + k)];
      };
      if (e.mask) {
        Tensor m = *e.mask;
        if (m.ndim() == 2) m = m.reshape({1, m.dim(0), m.dim(1)});
        const Tensor mr = resize_masks_bilinear(m, H, W);
        const std::vector<float> mv = mr.to_floats();
        const int64_t mc = mr.dim(0);
        for (int64_t i = 0; i < n; ++i)
          for (int64_t yy = 0; yy < r.h; ++yy)
            for (int64_t xx = 0; xx < r.w; ++xx) {
              const float v = mv[static_cast<size_t>(((i % mc) * H + r.y + yy) * W + r.x + xx)] *
                              e.mask_strength;
              for (int64_t k = 0; k < C; ++k) at(i, yy, xx, k) = v;
            }
      }
      for (float& v : mult) v *= e.strength;
      if (!e.mask && has_area) {
        // Feather the edges that lie inside the latent over rr = 8 pixels, with the same
        // (possibly negative, then wrapping) Python slices as get_area_and_mult.
        const int rr = 8;
        auto scale_rows = [&](int64_t start, int64_t stop, float f) {
          const auto [b, e2] = py_slice(start, stop, r.h);
          for (int64_t i = 0; i < n; ++i)
            for (int64_t yy = b; yy < e2; ++yy)
              for (int64_t xx = 0; xx < r.w; ++xx)
                for (int64_t k = 0; k < C; ++k) at(i, yy, xx, k) *= f;
        };
        auto scale_cols = [&](int64_t start, int64_t stop, float f) {
          const auto [b, e2] = py_slice(start, stop, r.w);
          for (int64_t i = 0; i < n; ++i)
            for (int64_t yy = 0; yy < r.h; ++yy)
              for (int64_t xx = b; xx < e2; ++xx)
                for (int64_t k = 0; k < C; ++k) at(i, yy, xx, k) *= f;
        };
        for (int t = 0; t < rr; ++t) {
          const float f = static_cast<float>((1.0 / rr) * (t + 1));
          if (ay != 0) scale_rows(t, t + 1, f);
          if (ah + ay < H) scale_rows(ah - 1 - t, ah - t, f);
          if (ax != 0) scale_cols(t, t + 1, f);
          if (aw + ax < W) scale_cols(aw - 1 - t, aw - t, f);
        }
      }
      r.mult = Tensor::from_floats(mult, {n, r.h, r.w, C});
      out.push_back(std::move(r));
    }
  }
  return out;
}

std::vector<Tensor> calc_cond_batch(const ModelHandle& model,
                                    const std::vector<ResolvedCond>& conds, int lists,
                                    const Tensor& x, float sigma,
                                    const BeforeModelFn& before_model) {
  const int64_t n = x.dim(0), H = x.dim(1), W = x.dim(2), C = x.dim(3);
  const sampling::DiscreteSchedule& schedule = *model.sampling.schedule;
  std::vector<std::vector<float>> out(static_cast<size_t>(lists),
                                      std::vector<float>(static_cast<size_t>(x.numel()), 0.0f));
  std::vector<std::vector<float>> count(static_cast<size_t>(lists),
                                        std::vector<float>(static_cast<size_t>(x.numel()), 1e-37f));

  // Which entries run at this σ (ConditioningSetTimestepRange), grouped by crop size and
  // ControlNet chain.
  using GroupKey = std::tuple<int64_t, int64_t, const ControlLink*>;
  std::map<GroupKey, std::vector<const ResolvedCond*>> groups;
  std::vector<GroupKey> group_order;
  for (int li = 0; li < lists; ++li)
    for (const ResolvedCond& r : conds) {
      if (r.list != li) continue;
      if (sigma > schedule.percent_to_sigma(r.start_percent)) continue;
      if (sigma < schedule.percent_to_sigma(r.end_percent)) continue;
      const GroupKey key{r.h, r.w, r.control.get()};
      if (!groups.contains(key)) group_order.push_back(key);
      groups[key].push_back(&r);
    }

  const float timestep = schedule.timestep(sigma);
  for (const auto& key : group_order) {
    const std::vector<const ResolvedCond*>& g = groups[key];
    const auto [h, w, control_link] = key;
    const int64_t b = n * static_cast<int64_t>(g.size());
    int64_t tokens = 1;
    for (const ResolvedCond* r : g) tokens = std::lcm(tokens, r->context.dim(1));
    const int64_t cw = g.front()->context.dim(2);
    // The crops (unscaled, for calculate_denoised) and c_in·crop for the UNet.
    Tensor crops = Tensor::empty({b, h, w, C}, DType::F32);
    Tensor context = Tensor::empty({b, tokens, cw}, DType::F32);
    const int64_t crop_elems = n * h * w * C, ctx_elems = tokens * cw;
    for (size_t i = 0; i < g.size(); ++i) {
      const Tensor c = crop(x, g[i]->y, g[i]->x, h, w);
      std::memcpy(crops.data<float>() + static_cast<int64_t>(i) * crop_elems, c.data<float>(),
                  c.nbytes());
      const Tensor ctx = repeat_tokens(g[i]->context, tokens);
      for (int64_t j = 0; j < n; ++j)
        std::memcpy(context.data<float>() + (static_cast<int64_t>(i) * n + j) * ctx_elems,
                    ctx.data<float>(), ctx.nbytes());
    }
    // y [b, adm]: each entry's vector for its n latents (SDXL), or undefined.
    Tensor y;
    if (model.unet->config().adm_in_channels > 0) {
      const int64_t adm = model.unet->config().adm_in_channels;
      y = Tensor::empty({b, adm}, DType::F32);
      for (size_t i = 0; i < g.size(); ++i) {
        DR_CHECK(g[i]->adm.defined() && g[i]->adm.numel() == adm, "sampler",
                 "the model takes a vector input of ", adm, " values; the conditioning gives ",
                 g[i]->adm.defined() ? g[i]->adm.numel() : 0);
        for (int64_t j = 0; j < n; ++j)
          std::memcpy(y.data<float>() + (static_cast<int64_t>(i) * n + j) * adm,
                      g[i]->adm.data<float>(), static_cast<size_t>(adm) * sizeof(float));
      }
    }
    if (before_model) before_model();
    Tensor x_in = sampling::calculate_input(model.sampling.prediction, sigma, crops);
    const Tensor timesteps =
        Tensor::from_floats(std::vector<float>(static_cast<size_t>(b), timestep), {b});
    // ControlNets see the scaled latent without the inpainting channels (ComfyUI's
    // get_control gets x before apply_model's concat).
    std::optional<ControlResiduals> control;
    if (control_link)
      control = control_residuals(*control_link, model.sampling, sigma, x_in, timesteps, context, y,
                                  static_cast<int>(g.size()));
    // Inpainting models: the entries' extra channels, cropped as x, after c_in·x.
    if (g.front()->concat.defined()) {
      const int64_t cc = g.front()->concat.dim(3);
      Tensor extra = Tensor::empty({b, h, w, cc}, DType::F32);
      const int64_t extra_elems = n * h * w * cc;
      for (size_t i = 0; i < g.size(); ++i) {
        DR_CHECK(g[i]->concat.defined() && g[i]->concat.dim(3) == cc, "sampler",
                 "conditioning entries disagree on the inpainting model's extra channels");
        const Tensor c = crop(g[i]->concat, g[i]->y, g[i]->x, h, w);
        std::memcpy(extra.data<float>() + static_cast<int64_t>(i) * extra_elems, c.data<float>(),
                    c.nbytes());
      }
      x_in = ops::concat({x_in, extra}, 3);
    }
    const ControlResiduals* ctrl = control ? &*control : nullptr;
    // On a CUDA device the runner replays a graph per shape; the result comes back to the
    // CPU in f32 (x_in's dtype), where the sampler state lives.
    const Tensor net =
        ops::to_device(model.runner ? model.runner->forward(x_in, timesteps, context, y, ctrl)
                                    : model.unet->forward(x_in, timesteps, context, y, ctrl),
                       kCpu);
    const Tensor denoised =
        sampling::calculate_denoised(model.sampling.prediction, sigma, net, crops, timestep);
    const float* d = denoised.data<float>();
    for (size_t i = 0; i < g.size(); ++i) {
      const ResolvedCond& r = *g[i];
      std::vector<float>& o = out[static_cast<size_t>(r.list)];
      std::vector<float>& cnt = count[static_cast<size_t>(r.list)];
      const float* m = r.mult.data<float>();
      const float* di = d + static_cast<int64_t>(i) * crop_elems;
      for (int64_t j = 0; j < n; ++j)
        for (int64_t yy = 0; yy < h; ++yy)
          for (int64_t xx = 0; xx < w; ++xx)
            for (int64_t k = 0; k < C; ++k) {
              const int64_t src = ((j * h + yy) * w + xx) * C + k;
              const size_t dst = static_cast<size_t>(((j * H + r.y + yy) * W + r.x + xx) * C + k);
              o[dst] += di[src] * m[src];
              cnt[dst] += m[src];
            }
    }
  }
  std::vector<Tensor> result;
  for (int li = 0; li < lists; ++li) {
    std::vector<float>& o = out[static_cast<size_t>(li)];
    const std::vector<float>& cnt = count[static_cast<size_t>(li)];
    for (size_t i = 0; i < o.size(); ++i) o[i] /= cnt[i];
    result.push_back(Tensor::from_floats(o, x.shape()));
  }
  return result;
}

}  // namespace darkroom::pipeline
