#include "pipeline/sd15_pipeline.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "core/error.h"
#include "pipeline/checkpoint.h"
#include "pipeline/prompt_encoder.h"
#include "sampling/cfg.h"
#include "sampling/noise.h"
#include "sampling/prediction.h"
#include "sampling/registry.h"
#include "sampling/schedule.h"

namespace darkroom::pipeline {
namespace {

// [a; b] along dim 0 (CPU f32, same trailing shape).
Tensor cat0(const Tensor& a, const Tensor& b) {
  std::vector<int64_t> dims;
  for (int i = 0; i < a.ndim(); ++i) dims.push_back(a.dim(i));
  dims[0] += b.dim(0);
  Tensor out = Tensor::empty(Shape(dims), DType::F32);
  std::memcpy(out.data<float>(), a.data<float>(), a.nbytes());
  std::memcpy(out.data<float>() + a.numel(), b.data<float>(), b.nbytes());
  return out;
}

// `context` [1, T, C] repeated to [n, T, C].
Tensor repeat_batch(const Tensor& context, int64_t n) {
  Tensor out = Tensor::empty({n, context.dim(1), context.dim(2)}, DType::F32);
  for (int64_t i = 0; i < n; ++i)
    std::memcpy(out.data<float>() + i * context.numel(), context.data<float>(), context.nbytes());
  return out;
}

}  // namespace

Sd15Pipeline::Sd15Pipeline(text::ClipTokenizer tokenizer, ClipTextEncoder clip, UNet unet, Vae vae)
    : tokenizer_(std::make_shared<text::ClipTokenizer>(std::move(tokenizer))),
      clip_(std::make_shared<ClipTextEncoder>(std::move(clip))),
      unet_(std::make_shared<UNet>(std::move(unet))),
      vae_(std::make_shared<Vae>(std::move(vae))) {
  DR_CHECK(clip_->config().width == unet_->config().context_dim, "pipeline", "text model width ",
           clip_->config().width, " does not match the UNet's context width ",
           unet_->config().context_dim);
  DR_CHECK(unet_->config().in_channels == vae_->config().z_channels, "pipeline", "UNet takes ",
           unet_->config().in_channels, " latent channels, the VAE has ",
           vae_->config().z_channels);
}

Sd15Pipeline Sd15Pipeline::from_checkpoint(const std::string& path, text::ClipTokenizer tokenizer,
                                           DType dtype) {
  auto file = std::make_shared<const SafetensorsFile>(SafetensorsFile::open(path));
  detect_family(*file);
  const Weights cw = Weights::from_file(file, kSd15ClipPrefix, kCpu, dtype);
  ClipTextEncoder clip = ClipTextEncoder::load(cw, ClipTextConfig::detect(cw));
  const Weights uw = Weights::from_file(file, kSd15UNetPrefix, kCpu, dtype);
  UNet unet = UNet::load(uw, UNetConfig::detect(uw));
  const Weights vw = Weights::from_file(file, kSd15VaePrefix, kCpu, dtype);
  Vae vae = Vae::load(vw, VaeConfig::detect(vw), /*with_encoder=*/false);
  return Sd15Pipeline(std::move(tokenizer), std::move(clip), std::move(unet), std::move(vae));
}

int Sd15Pipeline::vae_scale() const {
  return 1 << (vae_->config().levels() - 1);
}

int Sd15Pipeline::size_multiple() const {
  return vae_scale() * (1 << (unet_->config().levels() - 1));
}

Tensor Sd15Pipeline::sample(const GenerateParams& p, const ProgressFn& progress) const {
  const int m = size_multiple();
  DR_CHECK(p.width > 0 && p.height > 0 && p.width % m == 0 && p.height % m == 0, "generate",
           "width and height must be positive multiples of ", m, ", got ", p.width, "x", p.height);
  DR_CHECK(p.batch >= 1, "generate", "batch must be at least 1, got ", p.batch);
  DR_CHECK(p.steps >= 1, "generate", "steps must be at least 1, got ", p.steps);
  DR_CHECK(std::isfinite(p.cfg), "generate", "cfg must be finite");
  const sampling::SamplerInfo& sampler = sampling::get_sampler(p.sampler);
  DR_CHECK(sampling::find_scheduler(p.scheduler) != nullptr, "generate", "unknown scheduler '",
           p.scheduler, "'");

  const int64_t n = p.batch, h = p.height / vae_scale(), w = p.width / vae_scale();
  const int64_t zc = vae_->config().z_channels;
  const float latent_scale = vae_->config().latent_scale;

  // CLIPTextEncode ×2; ComfyUI skips the uncond pass when cfg is exactly 1.
  const bool use_cfg = p.cfg != 1.0f;
  Tensor cond = encode_prompt(*tokenizer_, *clip_, p.prompt, p.clip_skip);
  Tensor context;  // [B, T, C]: cond for the N latents, then uncond for them
  if (use_cfg) {
    Tensor uncond = encode_prompt(*tokenizer_, *clip_, p.negative, p.clip_skip);
    const int64_t tokens = std::lcm(cond.dim(1), uncond.dim(1));
    context = cat0(repeat_batch(repeat_tokens(cond, tokens), n),
                   repeat_batch(repeat_tokens(uncond, tokens), n));
  } else {
    context = repeat_batch(cond, n);
  }

  const sampling::DiscreteSchedule schedule = sampling::DiscreteSchedule::scaled_linear();
  const std::vector<float> sigmas =
      sampling::ksampler_sigmas(schedule, p.scheduler, p.sampler, p.steps, p.denoise);
  // EmptyLatentImage: zeros, which latent_format.process_in leaves zero.
  const Tensor latent = Tensor::zeros({n, h, w, zc}, DType::F32);
  if (sigmas.size() < 2) return latent;

  const UNet& unet = *unet_;
  sampling::Denoiser denoise = [&](const Tensor& x, float sigma) -> Tensor {
    const Tensor x_in = sampling::calculate_input(sigma, x);  // [N, h, w, 4]
    const Tensor batch_in = use_cfg ? cat0(x_in, x_in) : x_in;
    const int64_t b = batch_in.dim(0);
    const std::vector<float> t(static_cast<size_t>(b), schedule.timestep(sigma));
    const Tensor timesteps = Tensor::from_floats(t, {b});
    const Tensor eps = unet.forward(batch_in, timesteps, context);  // [B, h, w, 4] f32
    const Tensor cond_d =
        sampling::calculate_denoised(sampling::Prediction::Eps, sigma, eps.narrow0(0, n), x);
    if (!use_cfg) return cond_d;
    const Tensor uncond_d =
        sampling::calculate_denoised(sampling::Prediction::Eps, sigma, eps.narrow0(n, 2 * n), x);
    return sampling::cfg_combine(uncond_d, cond_d, p.cfg);
  };

  const int64_t nchw[4] = {n, zc, h, w};
  const Tensor noise = sampling::prepare_noise(nchw, p.seed);
  const Tensor x0 = sampling::noise_scaling(sigmas[0], noise, latent,
                                            sampling::is_max_denoise(schedule, sigmas[0]));
  sampling::SamplerOptions options;
  options.seed = p.seed;
  const int steps = static_cast<int>(sigmas.size()) - 1;
  if (progress)
    options.callback = [&](int step, const Tensor&, const Tensor&) { progress(step + 1, steps); };
  const Tensor x = sampler.fn(denoise, x0, sigmas, options);
  // latent_format.process_out: back to the VAE's latent.
  return Tensor::from_floats(
      [&] {
        std::vector<float> v = x.to_floats();
        for (float& e : v) e /= latent_scale;
        return v;
      }(),
      x.shape());
}

Tensor Sd15Pipeline::decode(const Tensor& z) const {
  return vae_->decode(z);
}

std::vector<RgbImage> Sd15Pipeline::to_rgb8(const Tensor& image) {
  DR_CHECK(image.ndim() == 4 && image.dim(3) == 3, "pipeline",
           "expected an image [N, H, W, 3], got ", image.shape().str());
  const std::vector<float> v = image.to_floats();
  const int64_t n = image.dim(0), h = image.dim(1), w = image.dim(2);
  std::vector<RgbImage> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    RgbImage& img = out[static_cast<size_t>(i)];
    img.width = static_cast<int>(w);
    img.height = static_cast<int>(h);
    img.pixels.resize(static_cast<size_t>(h * w * 3));
    const float* src = v.data() + i * h * w * 3;
    for (int64_t k = 0; k < h * w * 3; ++k) {
      // VAEDecode: clamp((x + 1) / 2, 0, 1); SaveImage: clip(255·x, 0, 255).astype(uint8),
      // which truncates. NaN (which clamp passes through) becomes 0 like numpy's cast
      // gives on x86 in practice.
      float s = (src[k] + 1.0f) / 2.0f;
      s = std::isnan(s) ? 0.0f : std::clamp(s, 0.0f, 1.0f);
      img.pixels[static_cast<size_t>(k)] = static_cast<uint8_t>(255.0f * s);
    }
  }
  return out;
}

std::vector<RgbImage> Sd15Pipeline::generate(const GenerateParams& p,
                                             const ProgressFn& progress) const {
  return to_rgb8(decode(sample(p, progress)));
}

}  // namespace darkroom::pipeline
