#include "pipeline/sd15_pipeline.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "backend/ops.h"
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
      vae_(std::make_shared<Vae>(std::move(vae))),
      unet_runner_(std::make_shared<UNetRunner>(*unet_, /*use_graphs=*/true)) {
  DR_CHECK(clip_->config().width == unet_->config().context_dim, "pipeline", "text model width ",
           clip_->config().width, " does not match the UNet's context width ",
           unet_->config().context_dim);
  DR_CHECK(unet_->config().in_channels == vae_->config().z_channels, "pipeline", "UNet takes ",
           unet_->config().in_channels, " latent channels, the VAE has ",
           vae_->config().z_channels);
}

Sd15Pipeline Sd15Pipeline::from_checkpoint(const std::string& path, text::ClipTokenizer tokenizer,
                                           DType dtype, DeviceId device) {
  // .safetensors or torch.save (.ckpt, .pt), told apart by the file's first bytes.
  const CheckpointFile file = CheckpointFile::open(path);
  const ModelFamily family = detect_family(file);
  DR_CHECK(family == ModelFamily::Sd15, "pipeline", path, ": an ", family_name(family),
           " checkpoint; Sd15Pipeline runs SD 1.x only (load_checkpoint and ksample run every "
           "family)");
  const Weights cw = file.weights(kSd15ClipPrefix, device, dtype);
  ClipTextEncoder clip = ClipTextEncoder::load(cw, ClipTextConfig::detect(cw));
  const Weights uw = file.weights(kSd15UNetPrefix, device, dtype);
  UNet unet = UNet::load(uw, UNetConfig::detect(uw));
  const Weights vw = file.weights(kSd15VaePrefix, device, dtype);
  // With the encoder (img2img's VAEEncode) when the file has one.
  Vae vae = Vae::load(vw, VaeConfig::detect(vw), vw.has("encoder.conv_in.weight"));
  return Sd15Pipeline(std::move(tokenizer), std::move(clip), std::move(unet), std::move(vae));
}

void Sd15Pipeline::use_cuda_graphs(bool on) {
  unet_runner_ = std::make_shared<UNetRunner>(*unet_, on);
}

int Sd15Pipeline::vae_scale() const {
  return 1 << (vae_->config().levels() - 1);
}

int Sd15Pipeline::size_multiple() const {
  // The UNet takes latents of any size (odd sides round up on the way down and the way up
  // is sized to each skip, as in ldm), so, as in ComfyUI, any multiple of the VAE's scale.
  return vae_scale();
}

Tensor Sd15Pipeline::sample(const GenerateParams& p, const ProgressFn& progress) const {
  const int m = size_multiple();
  DR_CHECK(p.width > 0 && p.height > 0 && p.width % m == 0 && p.height % m == 0, "generate",
           "width and height must be positive multiples of ", m, ", got ", p.width, "x", p.height);
  DR_CHECK(p.batch >= 1, "generate", "batch must be at least 1, got ", p.batch);
  // EmptyLatentImage: zeros (which latent_format.process_in leaves zero).
  const int64_t h = p.height / vae_scale(), w = p.width / vae_scale();
  return sample(p, Tensor::zeros({p.batch, h, w, vae_->config().z_channels}, DType::F32), progress);
}

Tensor Sd15Pipeline::sample(const GenerateParams& p, const Tensor& latent_z,
                            const ProgressFn& progress) const {
  const int64_t zc = vae_->config().z_channels;
  DR_CHECK(latent_z.ndim() == 4 && latent_z.dim(3) == zc && latent_z.numel() > 0, "generate",
           "expected a latent [N, h, w, ", zc, "], got ", latent_z.shape().str());
  DR_CHECK(p.steps >= 1, "generate", "steps must be at least 1, got ", p.steps);
  DR_CHECK(std::isfinite(p.cfg), "generate", "cfg must be finite");
  const sampling::SamplerInfo& sampler = sampling::get_sampler(p.sampler);
  DR_CHECK(sampling::find_scheduler(p.scheduler) != nullptr, "generate", "unknown scheduler '",
           p.scheduler, "'");

  const int64_t n = latent_z.dim(0), h = latent_z.dim(1), w = latent_z.dim(2);
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
  // No step to take (denoise 0): KSampler hands the latent back as it came.
  if (sigmas.size() < 2) return Tensor::from_floats(latent_z.to_floats(), latent_z.shape());
  // latent_format.process_in: the UNet works on z·latent_scale.
  std::vector<float> scaled = latent_z.to_floats();
  for (float& e : scaled) e *= latent_scale;
  const Tensor latent = Tensor::from_floats(scaled, latent_z.shape());

  UNetRunner& unet = *unet_runner_;
  // The context goes to the UNet's device once, not at every step.
  context = ops::to_device(context, unet_->device());
  sampling::Denoiser denoise = [&](const Tensor& x, float sigma) -> Tensor {
    const Tensor x_in = sampling::calculate_input(sigma, x);  // [N, h, w, 4]
    const Tensor batch_in = use_cfg ? cat0(x_in, x_in) : x_in;
    const int64_t b = batch_in.dim(0);
    const std::vector<float> t(static_cast<size_t>(b), schedule.timestep(sigma));
    const Tensor timesteps = Tensor::from_floats(t, {b});
    const Tensor eps =
        ops::to_device(unet.forward(batch_in, timesteps, context), kCpu);  // [B, h, w, 4] f32
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
  return ops::to_device(vae_->decode(z), kCpu);
}

Tensor Sd15Pipeline::encode(const Tensor& image) const {
  return ops::to_device(vae_->encode(image).mean, kCpu);
}

Tensor Sd15Pipeline::from_rgb8(const std::vector<RgbImage>& images) {
  DR_CHECK(!images.empty(), "pipeline", "no images");
  const int64_t n = static_cast<int64_t>(images.size()), h = images[0].height, w = images[0].width;
  std::vector<float> v;
  v.reserve(static_cast<size_t>(n * h * w * 3));
  for (const RgbImage& img : images) {
    DR_CHECK(
        img.width == w && img.height == h && img.pixels.size() == static_cast<size_t>(h * w * 3),
        "pipeline", "images of one batch must all be ", w, "x", h, " RGB");
    // LoadImage: v / 255 in f32; VAEEncode's process_input: x·2 - 1.
    for (uint8_t px : img.pixels) v.push_back(static_cast<float>(px) / 255.0f * 2.0f - 1.0f);
  }
  return Tensor::from_floats(v, {n, h, w, 3});
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
