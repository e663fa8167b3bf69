#include "pipeline/checkpoint_loader.h"

#include <cmath>
#include <vector>

#include "backend/ops.h"
#include "core/error.h"
#include "io/safetensors.h"
#include "models/unet_runner.h"
#include "models/vae_diffusers_names.h"
#include "pipeline/checkpoint.h"
#include "pipeline/checkpoint_parts.h"
#include "pipeline/diffusers_folder.h"

namespace darkroom::pipeline {
namespace {

template <class File>
int metadata_int(const File& file, const std::string& key, int fallback) {
  auto it = file.metadata().find(key);
  if (it == file.metadata().end()) return fallback;
  try {
    return std::stoi(it->second);
  } catch (...) {
    fail("checkpoint", "metadata ", key, " = '", it->second, "' is not an integer");
  }
}

}  // namespace

uint64_t weights_bytes(const Weights& w, DType dtype) {
  uint64_t total = 0;
  const size_t skip = w.prefix().size();
  for (const std::string& name : w.available())
    total += static_cast<uint64_t>(w.shape(std::string_view(name).substr(skip)).numel()) *
             dtype_size(dtype);
  return total;
}

std::shared_ptr<const sampling::DiscreteSchedule> discrete_schedule(bool zsnr) {
  auto base = std::make_shared<const sampling::DiscreteSchedule>(
      sampling::DiscreteSchedule::scaled_linear());
  if (!zsnr) return base;
  // rescale_zero_terminal_snr_sigmas (comfy/model_sampling.py) on the float32 sigma table,
  // in float32 as torch runs it.
  const std::span<const float> s = base->sigmas();
  const size_t n = s.size();
  std::vector<float> root(n);
  for (size_t i = 0; i < n; ++i) root[i] = std::sqrt(1.0f / (s[i] * s[i] + 1.0f));
  const float first = root.front(), last = root.back();
  for (float& r : root) r -= last;
  const float k = first / (first - last);
  for (float& r : root) r *= k;
  std::vector<double> sigmas(n);
  for (size_t i = 0; i < n; ++i) {
    float a = root[i] * root[i];
    if (i == n - 1) a = static_cast<float>(4.8973451890853435e-08);
    sigmas[i] = std::pow((1.0f - a) / a, 0.5f);
  }
  return std::make_shared<const sampling::DiscreteSchedule>(sigmas);
}

namespace {

using ClipSource = std::shared_ptr<const NetworkSource<ClipTextEncoder>>;

// The OpenCLIP text tower under `prefix`, or the CLIP-L one.
std::shared_ptr<const ClipTextEncoder> load_open_clip(const CheckpointFile& file,
                                                      const std::string& prefix, DeviceId device,
                                                      DType dtype, uint64_t& bytes,
                                                      ClipSource& source) {
  const Weights w = file.weights(prefix, device, dtype);
  const ClipTextConfig c =
      ClipTextConfig::detect_open_clip(w, metadata_int(file, "darkroom.clip_g.heads", 0));
  bytes += weights_bytes(w, dtype);
  return build_with_source<ClipTextEncoder>(
      w, prefix,
      [c](const Weights& w) {
        return std::make_shared<const ClipTextEncoder>(ClipTextEncoder::load_open_clip(w, c));
      },
      source);
}

std::shared_ptr<const ClipTextEncoder> load_clip_l(const CheckpointFile& file,
                                                   const std::string& prefix, DeviceId device,
                                                   DType dtype, uint64_t& bytes,
                                                   ClipSource& source) {
  const Weights w = file.weights(prefix, device, dtype);
  const ClipTextConfig c = ClipTextConfig::detect(w, metadata_int(file, "darkroom.clip.heads", 0));
  bytes += weights_bytes(w, dtype);
  return build_with_source<ClipTextEncoder>(
      w, prefix,
      [c](const Weights& w) {
        return std::make_shared<const ClipTextEncoder>(ClipTextEncoder::load(w, c));
      },
      source);
}

}  // namespace

bool sd2_is_v_prediction(const CheckpointFile& file, const Weights& uw) {
  if (auto it = file.metadata().find("darkroom.prediction"); it != file.metadata().end()) {
    DR_CHECK(it->second == "v" || it->second == "eps", "checkpoint", file.path(),
             ": darkroom.prediction = '", it->second, "' (expected v or eps)");
    return it->second == "v";
  }
  // SD 2.x inpainting UNets (9 input channels) are never v-prediction.
  const std::string in = "input_blocks.0.0.weight";
  if (!uw.has(in) || uw.shape(in).ndim() != 4 || uw.shape(in)[1] != 4) return false;
  const std::string k = "output_blocks.11.1.transformer_blocks.0.norm1.bias";
  if (!uw.has(k) || uw.shape(k)[0] == 0) return false;
  const std::vector<float> v = ops::cast(uw.get(k), DType::F32).to_floats();
  double mean = 0, sq = 0;
  for (float x : v) mean += x;
  mean /= static_cast<double>(v.size());
  for (float x : v) sq += (x - mean) * (x - mean);
  return std::sqrt(sq / static_cast<double>(v.size())) > 0.09;
}

void attach_runner(ModelHandle& model) {
  model.runner.reset();
  if (model.unet->device().type != DeviceType::Cuda) return;
  // The runner points at the UNet; its deleter holds the UNet so that neither outlives
  // the other in any copy of the handle.
  std::shared_ptr<const UNet> unet = model.unet;
  model.runner = std::shared_ptr<UNetRunner>(new UNetRunner(*unet, /*use_graphs=*/true),
                                             [unet](UNetRunner* r) { delete r; });
}

void assemble_checkpoint(LoadedCheckpoint& out, ModelFamily family, const Weights& uw,
                         const UNetConfig& uc, const Weights& vw, const VaeConfig& vc,
                         const std::string& source, DeviceId device, DType dtype, uint64_t& bytes) {
  const int64_t text_width = (out.clip.encoder ? out.clip.encoder->config().width : 0) +
                             (out.clip.open_clip ? out.clip.open_clip->config().width : 0);
  DR_CHECK(text_width == uc.context_dim, "checkpoint", source, ": the text encoders' width ",
           text_width, " does not match the UNet's context width ", uc.context_dim);
  const bool sdxl = family == ModelFamily::Sdxl || family == ModelFamily::SdxlRefiner;
  if (sdxl) {
    // y = pooled (the projection's width) + 256 per size number (6 for SDXL; 5 for the
    // refiner: 4 sizes and the aesthetic score).
    const int64_t numbers = family == ModelFamily::Sdxl ? 6 : 5;
    const int64_t adm = out.clip.open_clip->config().projection_dim + numbers * 256;
    DR_CHECK(uc.adm_in_channels == adm, "checkpoint", source, ": the UNet's label_emb takes ",
             uc.adm_in_channels, " values but the pooled text output and the size embedding make ",
             adm);
  }
  out.model.family = family;
  out.model.unet = build_with_source<UNet>(
      uw, kSd15UNetPrefix,
      [uc](const Weights& w) { return std::make_shared<const UNet>(UNet::load(w, uc)); },
      out.model.unet_source);
  bytes += weights_bytes(uw, dtype);
  attach_runner(out.model);
  out.model.source = source;
  out.vae.vae = std::make_shared<const Vae>(Vae::load(vw, vc, vc.has_encoder));
  bytes += weights_bytes(vw, dtype);
  // comfy/latent_formats.py: SDXL's scale_factor 0.13025; SD 1.x and 2.x 0.18215.
  out.model.latent_scale = sdxl ? 0.13025f : vc.latent_scale;
  out.model.latent_format = sdxl ? "sdxl" : "sd15";
}

LoadedCheckpoint load_checkpoint(const std::string& path,
                                 std::shared_ptr<const text::ClipTokenizer> tokenizer, DType dtype,
                                 DeviceId device) {
  if (is_diffusers_folder(path))
    return load_diffusers_folder(path, std::move(tokenizer), dtype, device);
  // .safetensors or torch.save (.ckpt, .pt), told apart by the file's first bytes.
  const CheckpointFile file = CheckpointFile::open(path);
  const ModelFamily family = detect_family(file);
  LoadedCheckpoint out;
  uint64_t bytes = 0;

  // CLIP: which encoders, and ComfyUI's default layer (clip_skip 2 = penultimate).
  out.clip.family = family;
  out.clip.tokenizer = std::move(tokenizer);
  switch (family) {
    case ModelFamily::Sd15:
      out.clip.encoder =
          load_clip_l(file, kSd15ClipPrefix, device, dtype, bytes, out.clip.encoder_source);
      out.clip.clip_skip = 1;
      break;
    case ModelFamily::Sd2:
      out.clip.open_clip =
          load_open_clip(file, kSd2ClipPrefix, device, dtype, bytes, out.clip.open_clip_source);
      out.clip.clip_skip = 2;
      break;
    case ModelFamily::Sdxl:
      out.clip.encoder =
          load_clip_l(file, kSdxlClipLPrefix, device, dtype, bytes, out.clip.encoder_source);
      out.clip.open_clip =
          load_open_clip(file, kSdxlClipGPrefix, device, dtype, bytes, out.clip.open_clip_source);
      out.clip.clip_skip = 2;
      break;
    case ModelFamily::SdxlRefiner:
      out.clip.open_clip = load_open_clip(file, kSdxlRefinerClipGPrefix, device, dtype, bytes,
                                          out.clip.open_clip_source);
      out.clip.clip_skip = 2;
      break;
  }
  const Weights uw = file.weights(kSd15UNetPrefix, device, dtype);
  UNetConfig uc = UNetConfig::detect(uw);
  uc.groups = metadata_int(file, "darkroom.unet.groups", uc.groups);
  if (file.metadata().contains("darkroom.unet.num_heads")) {
    uc.num_heads = metadata_int(file, "darkroom.unet.num_heads", uc.num_heads);
    uc.head_dim = 0;
  }
  if (file.metadata().contains("darkroom.unet.head_dim")) {
    uc.head_dim = metadata_int(file, "darkroom.unet.head_dim", uc.head_dim);
    uc.num_heads = 0;
  }
  const Weights vw = file.weights(kSd15VaePrefix, device, dtype);
  const VaeConfig vc = VaeConfig::detect(vw, metadata_int(file, "darkroom.vae.groups", 32));
  assemble_checkpoint(out, family, uw, uc, vw, vc, path, device, dtype, bytes);

  // ComfyUI's model_type: SD 2.x by its test; SDXL v-pred / ztsnr files by their marker keys.
  bool v_pred = false;
  if (family == ModelFamily::Sd2) v_pred = sd2_is_v_prediction(file, uw);
  if (family == ModelFamily::Sdxl || family == ModelFamily::SdxlRefiner)
    v_pred = file.has("v_pred");
  out.model.sampling.zsnr = file.has("ztsnr");
  out.model.sampling.prediction = v_pred ? sampling::Prediction::V : sampling::Prediction::Eps;
  out.model.sampling.schedule = discrete_schedule(out.model.sampling.zsnr);
  out.bytes = bytes;
  return out;
}

LoadedCheckpoint load_sd15_checkpoint(const std::string& path,
                                      std::shared_ptr<const text::ClipTokenizer> tokenizer,
                                      DType dtype, DeviceId device) {
  const ModelFamily family = is_diffusers_folder(path) ? diffusers_folder_family(path)
                                                       : detect_family(CheckpointFile::open(path));
  DR_CHECK(family == ModelFamily::Sd15, "checkpoint", path, ": an ", family_name(family),
           " checkpoint where SD 1.x was expected");
  return load_checkpoint(path, std::move(tokenizer), dtype, device);
}

LoadedVae load_vae_file(const std::string& path, DType dtype, DeviceId device) {
  auto file = std::make_shared<const SafetensorsFile>(SafetensorsFile::open(path));
  // A VAE extracted from a checkpoint keeps "first_stage_model."; diffusers-era ldm VAE
  // files (vae-ft-mse-840000-ema-pruned) have the bare names; a diffusers AutoencoderKL
  // (vae/diffusion_pytorch_model.safetensors) is renamed to ldm's names, told apart by
  // the key ComfyUI tests (load_torch_file → convert_vae_state_dict).
  const bool diffusers = file->find("decoder.up_blocks.0.resnets.0.norm1.weight") != nullptr;
  const bool prefixed = file->find("first_stage_model.decoder.conv_in.weight") != nullptr;
  const std::string prefix = prefixed ? kSd15VaePrefix : "";
  const Weights w = diffusers ? vae_weights_from_diffusers(file, device, dtype)
                              : Weights::from_file(file, prefix, device, dtype);
  DR_CHECK(w.has("decoder.conv_in.weight"), "vae", path,
           ": no VAE decoder (decoder.conv_in.weight) under '", prefix, "'");
  const VaeConfig vc = VaeConfig::detect(w, metadata_int(*file, "darkroom.vae.groups", 32));
  LoadedVae out;
  out.vae.vae = std::make_shared<const Vae>(Vae::load(w, vc, vc.has_encoder));
  out.bytes = weights_bytes(w, dtype);
  return out;
}

}  // namespace darkroom::pipeline
