#include "pipeline/ksampler.h"

#include <cmath>

#include "core/error.h"
#include "pipeline/cond_batch.h"
#include "pipeline/control.h"
#include "pipeline/inpaint.h"
#include "pipeline/mask_ops.h"
#include "sampling/cfg.h"
#include "sampling/noise.h"
#include "sampling/prediction.h"
#include "sampling/registry.h"

namespace darkroom::pipeline {
namespace {

Tensor scaled(const Tensor& t, float mul, float div) {
  std::vector<float> v = t.to_floats();
  for (float& e : v) e = div != 1.0f ? e / div : e * mul;
  return Tensor::from_floats(v, t.shape());
}

bool all_zero(const Tensor& t) {
  for (float v : t.to_floats())
    if (v != 0.0f) return false;
  return true;
}

}  // namespace

Latent ksample(const ModelHandle& model, const Conditioning& positive, const Conditioning& negative,
               const Latent& latent, const KSamplerParams& p, const KSamplerHooks& hooks) {
  const Tensor& z = latent.samples;
  DR_CHECK(z.defined() && z.ndim() == 4 && z.dtype() == DType::F32, "KSampler",
           "expected a latent [N, h, w, C] in f32, got ", z.shape().str());
  DR_CHECK(model.unet && model.sampling.schedule, "KSampler", "the MODEL input holds no model");
  const int64_t n = z.dim(0), h = z.dim(1), w = z.dim(2), c = z.dim(3);
  // An inpainting UNet takes concat_channels() more (inpaint.h); anything else is refused there.
  const int extra_channels = concat_channels(model, c);
  DR_CHECK(c + extra_channels == model.unet->config().in_channels, "KSampler", "the latent has ", c,
           " channels but the model takes ", model.unet->config().in_channels);
  const int m = 1 << (model.unet->config().levels() - 1);
  DR_CHECK(h % m == 0 && w % m == 0, "KSampler", "the latent's size ", h, "x", w,
           " must be a multiple of ", m, " for this model");
  DR_CHECK(p.sigmas || p.steps >= 1, "KSampler", "steps must be at least 1, got ", p.steps);
  DR_CHECK(std::isfinite(p.cfg), "KSampler", "cfg must be finite");
  const sampling::SamplerInfo& sampler = sampling::get_sampler(p.sampler);
  DR_CHECK(p.sigmas || sampling::find_scheduler(p.scheduler) != nullptr, "KSampler",
           "unknown scheduler '", p.scheduler, "'");
  DR_CHECK(!positive.empty(), "KSampler", "the positive conditioning is empty");
  const sampling::DiscreteSchedule& schedule = *model.sampling.schedule;

  // Noise on the latent's NCHW shape.
  const int64_t nchw[4] = {n, c, h, w};
  Tensor noise;
  if (p.add_noise) {
    std::vector<int64_t> batch_index;
    if (latent.batch_index) batch_index = *latent.batch_index;
    noise = sampling::prepare_noise(nchw, p.seed, batch_index);
    DR_CHECK(noise.dim(0) == n, "KSampler", "batch_index lists ", noise.dim(0),
             " latents but the batch has ", n);
  } else {
    noise = Tensor::zeros({n, h, w, c}, DType::F32);
  }

  std::vector<float> sigmas =
      p.sigmas ? *p.sigmas
               : sampling::ksampler_sigmas(schedule, p.scheduler, p.sampler, p.steps, p.denoise);
  if (p.last_step && *p.last_step < static_cast<int>(sigmas.size()) - 1) {
    sigmas.resize(static_cast<size_t>(*p.last_step) + 1);
    if (p.force_full_denoise) sigmas.back() = 0.0f;
  }
  Latent out = latent;
  if (p.start_step) {
    if (*p.start_step < static_cast<int>(sigmas.size()) - 1)
      sigmas.erase(sigmas.begin(), sigmas.begin() + *p.start_step);
    else
      return out;  // nothing to do: the input latent as it is
  }
  if (sigmas.size() < 2) return out;

  // process_latent_in, except for an empty latent.
  const float scale = model.latent_scale;
  const Tensor latent_in = all_zero(z) ? z : scaled(z, scale, 1.0f);
  std::optional<Tensor> mask;
  if (latent.noise_mask) mask = prepare_noise_mask(*latent.noise_mask, n, h, w, c);

  const bool use_cfg = !(std::fabs(p.cfg - 1.0) <= 1e-9);
  std::vector<const Conditioning*> lists = {&positive};
  // ControlNetApply's ControlNets also control a negative that has none (control.h).
  const Conditioning negative_controlled = control_to_uncond(positive, negative);
  if (use_cfg) lists.push_back(&negative_controlled);
  std::vector<ResolvedCond> conds = resolve_conds(lists, n, h, w, c, model.family);
  // Inpainting models: each entry's mask and masked-image channels (BaseModel.concat_cond),
  // from its InpaintModelConditioning values or the noise mask and the input latent.
  if (extra_channels > 0)
    for (ResolvedCond& r : conds)
      r.concat = inpaint_concat(model, *r.entry, latent_in, latent.noise_mask);

  const sampling::Denoiser denoise = [&](const Tensor& x, float sigma) -> Tensor {
    Tensor xin = x;
    if (mask) {
      // x·mask + (latent + σ·noise)·(1 - mask): the unmasked part follows the input.
      const Tensor renoised = sampling::noise_scaling(sigma, noise, latent_in, false);
      std::vector<float> v = x.to_floats();
      const float* mk = mask->data<float>();
      const float* rn = renoised.data<float>();
      for (size_t i = 0; i < v.size(); ++i) v[i] = v[i] * mk[i] + rn[i] * (1.0f - mk[i]);
      xin = Tensor::from_floats(v, x.shape());
    }
    const std::vector<Tensor> d =
        calc_cond_batch(model, conds, use_cfg ? 2 : 1, xin, sigma, hooks.check_interrupt);
    Tensor result = use_cfg ? sampling::cfg_combine(d[1], d[0], static_cast<float>(p.cfg)) : d[0];
    if (mask) {
      std::vector<float> v = result.to_floats();
      const float* mk = mask->data<float>();
      const float* li = latent_in.data<float>();
      for (size_t i = 0; i < v.size(); ++i) v[i] = v[i] * mk[i] + li[i] * (1.0f - mk[i]);
      result = Tensor::from_floats(v, x.shape());
    }
    return result;
  };

  const Tensor x0 = sampling::noise_scaling(sigmas[0], noise, latent_in,
                                            sampling::is_max_denoise(schedule, sigmas[0]));
  sampling::SamplerOptions options;
  options.seed = p.seed;
  const int steps = static_cast<int>(sigmas.size()) - 1;
  options.callback = [&](int step, const Tensor&, const Tensor& denoised) {
    if (hooks.on_step) hooks.on_step(step, steps, denoised);
  };
  const Tensor x = sampler.fn(denoise, x0, sigmas, options);
  out.samples = scaled(x, 1.0f, scale);  // process_latent_out
  return out;
}

}  // namespace darkroom::pipeline
