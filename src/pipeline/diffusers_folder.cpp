#include "pipeline/diffusers_folder.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.h"
#include "io/safetensors.h"
#include "models/clip_text.h"
#include "models/lora_keys.h"
#include "models/unet_diffusers_names.h"
#include "models/vae_diffusers_names.h"
#include "pipeline/checkpoint.h"
#include "pipeline/checkpoint_parts.h"

namespace darkroom::pipeline {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

json read_json(const fs::path& file) {
  std::ifstream in(file);
  DR_CHECK(in.good(), "diffusers", file.string(), ": cannot be read");
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    fail("diffusers", file.string(), ": not JSON (", e.what(), ")");
  }
}

// A part's weights file: `stem`.safetensors, else its fp16 variant.
std::shared_ptr<const SafetensorsFile> open_part(const fs::path& dir, const std::string& stem) {
  for (const char* suffix : {".safetensors", ".fp16.safetensors"}) {
    const fs::path p = dir / (stem + suffix);
    if (fs::exists(p)) return std::make_shared<const SafetensorsFile>(SafetensorsFile::open(p));
  }
  fail("diffusers", dir.string(), ": no ", stem, ".safetensors (.bin weights are not read)");
}

bool has_part(const json& index, const fs::path& dir, const std::string& name) {
  // save_pretrained writes [null, null] for a component the pipeline lacks.
  return index.contains(name) && index[name].is_array() && !index[name].empty() &&
         !index[name][0].is_null() && fs::is_directory(dir / name);
}

ClipActivation activation(const json& config, const fs::path& dir) {
  const std::string act = config.value("hidden_act", "quick_gelu");
  if (act == "quick_gelu") return ClipActivation::QuickGelu;
  if (act == "gelu") return ClipActivation::Gelu;
  fail("diffusers", dir.string(), ": text encoder hidden_act '", act, "' is not CLIP's");
}

// A CLIPTextModel (no projection): its weights and config.
std::pair<Weights, ClipTextConfig> read_text_encoder(const fs::path& dir, DeviceId device,
                                                     DType dtype, uint64_t& bytes) {
  const json config = read_json(dir / "config.json");
  const Weights w = clip_text_weights_from_hf(open_part(dir, "model"), device, dtype);
  const ClipTextConfig c =
      ClipTextConfig::detect(w, config.value("num_attention_heads", 0), activation(config, dir));
  bytes += weights_bytes(w, dtype);
  return {w, c};
}

// CLIPTextModel → CLIP-L.
// `checkpoint_prefix`: where a single-file checkpoint keeps these names (LoRA keys).
std::shared_ptr<const ClipTextEncoder> load_text_encoder(
    const fs::path& dir, DeviceId device, DType dtype, uint64_t& bytes,
    const std::string& checkpoint_prefix,
    std::shared_ptr<const NetworkSource<ClipTextEncoder>>& source) {
  const auto [w, c] = read_text_encoder(dir, device, dtype, bytes);
  return build_with_source<ClipTextEncoder>(
      w, checkpoint_prefix,
      [c](const Weights& w) {
        return std::make_shared<const ClipTextEncoder>(ClipTextEncoder::load(w, c));
      },
      source);
}

// An OpenCLIP tower of `layers` layers in transformers' names, presented to LoRAs under the
// single-file OpenCLIP names (NetworkSource::renamed, from lora_keys.h's one table):
// `text_model` is where the weights' names keep transformers' "text_model." level ("" when
// the weights' prefix is that level).
std::map<std::string, std::vector<std::string>> open_clip_names(int layers,
                                                                const std::string& text_model) {
  constexpr std::string_view kLevel = "text_model.";
  std::map<std::string, std::vector<std::string>> out;
  for (int n = 0; n < layers; ++n)
    for (const OpenClipLinear& w : open_clip_linears(n))
      for (const std::string& m : w.modules)
        out[w.open_clip].push_back(text_model + m.substr(kLevel.size()) + ".weight");
  return out;
}

// CLIPTextModelWithProjection → OpenCLIP bigG with its projection; LoRAs see it as the
// single-file tower under `checkpoint_prefix`.
std::shared_ptr<const ClipTextEncoder> load_text_encoder_2(
    const fs::path& dir, DeviceId device, DType dtype, uint64_t& bytes,
    const std::string& checkpoint_prefix,
    std::shared_ptr<const NetworkSource<ClipTextEncoder>>& source) {
  const json config = read_json(dir / "config.json");
  const Weights w =
      clip_text_with_projection_weights_from_hf(open_part(dir, "model"), device, dtype);
  const ClipTextConfig c = ClipTextConfig::detect_hf_with_projection(
      w, config.value("num_attention_heads", 0), activation(config, dir));
  bytes += weights_bytes(w, dtype);
  return build_with_source<ClipTextEncoder>(
      w, checkpoint_prefix,
      [c](const Weights& w) {
        return std::make_shared<const ClipTextEncoder>(
            ClipTextEncoder::load_hf_with_projection(w, c));
      },
      source, open_clip_names(c.layers, "text_model."));
}

// diffusers' attention_head_dim: a number is the head count of every level (SD 1.x: 8); a
// list is per level and fixes the head width (SD 2.x, SDXL: 64 = channels / heads).
void set_heads(UNetConfig& uc, const json& config, const fs::path& dir) {
  const json& a = config.contains("num_attention_heads") && !config["num_attention_heads"].is_null()
                      ? config["num_attention_heads"]
                      : config.value("attention_head_dim", json(8));
  if (a.is_number_integer()) {
    uc.num_heads = a.get<int>();
    uc.head_dim = 0;
    return;
  }
  const json channels = config.value("block_out_channels", json::array());
  DR_CHECK(a.is_array() && !a.empty() && a.size() == channels.size(), "diffusers", dir.string(),
           ": attention_head_dim ", a.dump(), " does not fit block_out_channels ", channels.dump());
  const int width = channels[0].get<int>() / a[0].get<int>();
  for (size_t i = 0; i < a.size(); ++i)
    DR_CHECK(channels[i].get<int>() == width * a[i].get<int>(), "diffusers", dir.string(),
             ": attention_head_dim ", a.dump(), " gives heads of different widths");
  uc.head_dim = width;
  uc.num_heads = 0;
}

}  // namespace

bool is_diffusers_folder(const std::string& path) {
  std::error_code ec;
  return fs::is_directory(path, ec) && fs::is_regular_file(fs::path(path) / "model_index.json", ec);
}

ModelFamily diffusers_folder_family(const std::string& path) {
  const fs::path dir(path);
  const json index = read_json(dir / "model_index.json");
  const std::string cls = index.value("_class_name", "");
  // The inpainting pipelines hold the same parts (their UNet takes 9 channels).
  if (cls == "StableDiffusionPipeline" || cls == "StableDiffusionImg2ImgPipeline" ||
      cls == "StableDiffusionInpaintPipeline") {
    // SD 2.x's text encoder is OpenCLIP ViT-H in transformers' layout: erf GELU.
    const json te = read_json(dir / "text_encoder" / "config.json");
    return te.value("hidden_act", "quick_gelu") == "gelu" ? ModelFamily::Sd2 : ModelFamily::Sd15;
  }
  if (cls == "StableDiffusionXLPipeline") return ModelFamily::Sdxl;
  if (cls == "StableDiffusionXLImg2ImgPipeline" || cls == "StableDiffusionXLInpaintPipeline")
    return has_part(index, dir, "text_encoder") ? ModelFamily::Sdxl : ModelFamily::SdxlRefiner;
  fail("diffusers", path, ": model_index.json's _class_name '", cls,
       "' is not an SD 1.x / 2.x / SDXL pipeline");
}

LoadedCheckpoint load_diffusers_folder(const std::string& path,
                                       std::shared_ptr<const text::ClipTokenizer> tokenizer,
                                       DType dtype, DeviceId device) {
  const fs::path dir(path);
  const ModelFamily family = diffusers_folder_family(path);
  LoadedCheckpoint out;
  uint64_t bytes = 0;

  out.clip.family = family;
  const fs::path tok = dir / "tokenizer";
  if (fs::is_regular_file(tok / "vocab.json") && fs::is_regular_file(tok / "merges.txt"))
    out.clip.tokenizer =
        std::make_shared<const text::ClipTokenizer>(text::ClipTokenizer::from_hf_folder(tok));
  else
    out.clip.tokenizer = std::move(tokenizer);
  switch (family) {
    case ModelFamily::Sd15:
      out.clip.encoder = load_text_encoder(dir / "text_encoder", device, dtype, bytes,
                                           kSd15ClipPrefix, out.clip.encoder_source);
      out.clip.clip_skip = 1;
      break;
    case ModelFamily::Sd2: {
      // ViT-H in transformers' layout (CLIPTextModel, erf GELU). diffusers' conversion of an
      // SD 2.x checkpoint leaves out the tower's last layer (resblocks.23: 23 of 24 layers),
      // and its pipeline takes final_layer_norm(that 23rd layer), which is ComfyUI's SD 2.x
      // default (sd2_clip.py: "penultimate" of 24, layer_norm_hidden_state). So clip_skip
      // keeps ComfyUI's count (2 = penultimate) over a tower one layer short; a folder
      // holding all 24 layers of ViT-H lacks none. LoRAs see the single-file tower's names
      // (keys for the missing layer stay unmatched).
      const auto [w, c] = read_text_encoder(dir / "text_encoder", device, dtype, bytes);
      out.clip.open_clip = build_with_source<ClipTextEncoder>(
          w, kSd2ClipPrefix,
          [c](const Weights& w) {
            return std::make_shared<const ClipTextEncoder>(ClipTextEncoder::load(w, c));
          },
          out.clip.open_clip_source, open_clip_names(c.layers, ""));
      constexpr int kVitHLayers = 24;
      out.clip.open_clip_dropped_layers = c.layers == kVitHLayers ? 0 : 1;
      out.clip.clip_skip = 2;
      break;
    }
    case ModelFamily::Sdxl:
      out.clip.encoder = load_text_encoder(dir / "text_encoder", device, dtype, bytes,
                                           kSdxlClipLPrefix, out.clip.encoder_source);
      out.clip.open_clip = load_text_encoder_2(dir / "text_encoder_2", device, dtype, bytes,
                                               kSdxlClipGPrefix, out.clip.open_clip_source);
      out.clip.clip_skip = 2;
      break;
    case ModelFamily::SdxlRefiner:
      out.clip.open_clip = load_text_encoder_2(dir / "text_encoder_2", device, dtype, bytes,
                                               kSdxlRefinerClipGPrefix, out.clip.open_clip_source);
      out.clip.clip_skip = 2;
      break;
  }

  const json unet_config = read_json(dir / "unet" / "config.json");
  const Weights uw = unet_weights_from_diffusers(open_part(dir / "unet", "diffusion_pytorch_model"),
                                                 device, dtype);
  UNetConfig uc = UNetConfig::detect(uw);
  uc.groups = unet_config.value("norm_num_groups", uc.groups);
  set_heads(uc, unet_config, dir / "unet");

  const json vae_config = read_json(dir / "vae" / "config.json");
  const Weights vw =
      vae_weights_from_diffusers(open_part(dir / "vae", "diffusion_pytorch_model"), device, dtype);
  const VaeConfig vc = VaeConfig::detect(vw, vae_config.value("norm_num_groups", 32));
  assemble_checkpoint(out, family, uw, uc, vw, vc, path, device, dtype, bytes);

  std::string prediction = "epsilon";
  const fs::path scheduler = dir / "scheduler" / "scheduler_config.json";
  if (fs::exists(scheduler)) prediction = read_json(scheduler).value("prediction_type", prediction);
  DR_CHECK(prediction == "epsilon" || prediction == "v_prediction", "diffusers", path,
           ": scheduler prediction_type '", prediction, "' (expected epsilon or v_prediction)");
  out.model.sampling.prediction =
      prediction == "v_prediction" ? sampling::Prediction::V : sampling::Prediction::Eps;
  out.model.sampling.zsnr = false;
  out.model.sampling.schedule = discrete_schedule(false);
  out.bytes = bytes;
  return out;
}

}  // namespace darkroom::pipeline
