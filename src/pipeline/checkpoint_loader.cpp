#include "pipeline/checkpoint_loader.h"

#include <cmath>
#include <vector>

#include "core/error.h"
#include "io/safetensors.h"
#include "models/unet_runner.h"
#include "pipeline/checkpoint.h"

namespace darkroom::pipeline {
namespace {

int metadata_int(const SafetensorsFile& file, const std::string& key, int fallback) {
  auto it = file.metadata().find(key);
  if (it == file.metadata().end()) return fallback;
  try {
    return std::stoi(it->second);
  } catch (...) {
    fail("checkpoint", "metadata ", key, " = '", it->second, "' is not an integer");
  }
}

uint64_t weights_bytes(const Weights& w, DType dtype) {
  uint64_t total = 0;
  const size_t skip = w.prefix().size();
  for (const std::string& name : w.available())
    total += static_cast<uint64_t>(w.shape(std::string_view(name).substr(skip)).numel()) *
             dtype_size(dtype);
  return total;
}

}  // namespace

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

LoadedCheckpoint load_sd15_checkpoint(const std::string& path,
                                      std::shared_ptr<const text::ClipTokenizer> tokenizer,
                                      DType dtype, DeviceId device) {
  auto file = std::make_shared<const SafetensorsFile>(SafetensorsFile::open(path));
  // Tiny test models (32-wide context) declare their family; real files are recognised
  // from their tensors.
  auto family = file->metadata().find("darkroom.family");
  if (family == file->metadata().end() || family->second != "sd15") detect_family(*file);
  LoadedCheckpoint out;

  const Weights cw = Weights::from_file(file, kSd15ClipPrefix, device, dtype);
  const ClipTextConfig cc =
      ClipTextConfig::detect(cw, metadata_int(*file, "darkroom.clip.heads", 0));
  out.clip.tokenizer = std::move(tokenizer);
  out.clip.encoder = std::make_shared<const ClipTextEncoder>(ClipTextEncoder::load(cw, cc));

  const Weights uw = Weights::from_file(file, kSd15UNetPrefix, device, dtype);
  UNetConfig uc = UNetConfig::detect(uw);
  uc.groups = metadata_int(*file, "darkroom.unet.groups", uc.groups);
  if (file->metadata().contains("darkroom.unet.num_heads")) {
    uc.num_heads = metadata_int(*file, "darkroom.unet.num_heads", uc.num_heads);
    uc.head_dim = 0;
  }
  out.model.unet = std::make_shared<const UNet>(UNet::load(uw, uc));
  if (device.type == DeviceType::Cuda) {
    // The runner points at the UNet; its deleter holds the UNet so that neither outlives
    // the other in any copy of the handle.
    std::shared_ptr<const UNet> unet = out.model.unet;
    out.model.runner = std::shared_ptr<UNetRunner>(new UNetRunner(*unet, /*use_graphs=*/true),
                                                   [unet](UNetRunner* r) { delete r; });
  }
  out.model.sampling.schedule = discrete_schedule(false);
  out.model.source = path;

  const Weights vw = Weights::from_file(file, kSd15VaePrefix, device, dtype);
  const VaeConfig vc = VaeConfig::detect(vw, metadata_int(*file, "darkroom.vae.groups", 32));
  out.vae.vae = std::make_shared<const Vae>(Vae::load(vw, vc, vc.has_encoder));
  out.model.latent_scale = vc.latent_scale;

  DR_CHECK(cc.width == uc.context_dim, "checkpoint", path, ": text model width ", cc.width,
           " does not match the UNet's context width ", uc.context_dim);
  out.bytes = weights_bytes(cw, dtype) + weights_bytes(uw, dtype) + weights_bytes(vw, dtype);
  return out;
}

LoadedVae load_vae_file(const std::string& path, DType dtype, DeviceId device) {
  auto file = std::make_shared<const SafetensorsFile>(SafetensorsFile::open(path));
  // A VAE extracted from a checkpoint keeps "first_stage_model."; diffusers-era ldm VAE
  // files (vae-ft-mse-840000-ema-pruned) have the bare names.
  const bool prefixed = file->find("first_stage_model.decoder.conv_in.weight") != nullptr;
  const std::string prefix = prefixed ? kSd15VaePrefix : "";
  const Weights w = Weights::from_file(file, prefix, device, dtype);
  DR_CHECK(w.has("decoder.conv_in.weight"), "vae", path,
           ": no VAE decoder (decoder.conv_in.weight) under '", prefix,
           "'; diffusers-format VAE files are not supported yet");
  const VaeConfig vc = VaeConfig::detect(w, metadata_int(*file, "darkroom.vae.groups", 32));
  LoadedVae out;
  out.vae.vae = std::make_shared<const Vae>(Vae::load(w, vc, vc.has_encoder));
  out.bytes = weights_bytes(w, dtype);
  return out;
}

}  // namespace darkroom::pipeline
