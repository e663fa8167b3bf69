// Loaders (nodes.py): CheckpointLoaderSimple (every family that pipeline/checkpoint.h
// detects), VAELoader and DiffusersLoader (diffusers folders, pipeline/diffusers_folder.h).
// Networks load on the executor's device in its compute dtype (bf16 on CUDA). Loaded models are
// kept in the executor's model cache under (file, part, dtype, device), so a second prompt that
// names the same file does not read it again.
#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "backend/device.h"
#include "pipeline/checkpoint_loader.h"
#include "pipeline/diffusers_folder.h"
#include "pipeline/model_cache.h"
#include "workflow/node.h"

namespace darkroom::workflow {
namespace {

namespace fs = std::filesystem;

// CLIP's vocabulary (OpenCLIP's too): $DARKROOM_CLIP_DATA, else the source tree's data/clip (as
// `darkroom generate` finds it).
std::shared_ptr<const text::ClipTokenizer> sd1_tokenizer(pipeline::ModelCache& cache) {
  const char* env = std::getenv("DARKROOM_CLIP_DATA");
  const std::string dir = env != nullptr && *env != '\0' ? env : DARKROOM_DEFAULT_CLIP_DATA;
  return cache.get_or_load<text::ClipTokenizer>(
      "clip-tokenizer:" + dir,
      [&]() -> std::pair<std::shared_ptr<const text::ClipTokenizer>, uint64_t> {
        return {
            std::make_shared<const text::ClipTokenizer>(text::ClipTokenizer::load(
                fs::path(dir) / "sd1_tokenizer", fs::path(dir) / "bpe_simple_vocab_16e6.txt.gz")),
            0};
      });
}

DType model_dtype(DeviceId device) {
  return device_for(device).compute_dtype();
}

std::string cache_key(const char* part, const std::string& path, DType dtype, DeviceId device) {
  return std::string(part) + ":" + path + ":" + std::string(dtype_name(dtype)) + ":" + device.str();
}

std::string find_or_fail(const FolderPaths& paths, const std::string& folder,
                         const std::string& name) {
  std::optional<std::string> path = paths.find(folder, name);
  // ComfyUI's get_full_path_or_raise message.
  DR_CHECK(path.has_value(), "workflow", "Model in folder '", folder, "' with filename '", name,
           "' not found.");
  return *path;
}

const NodeRegistrar kCheckpointLoaderSimple(
    {.class_name = "CheckpointLoaderSimple",
     .display_name = "Load Checkpoint",
     .category = "loaders",
     .description = "Loads a diffusion model checkpoint, diffusion models are used to denoise "
                    "latents.",
     .required = {folder_combo_input("ckpt_name", "checkpoints",
                                     {{"tooltip", "The name of the checkpoint (model) to load."}})},
     .outputs = {{"MODEL", "MODEL", false, "The model used for denoising latents."},
                 {"CLIP", "CLIP", false, "The CLIP model used for encoding text prompts."},
                 {"VAE", "VAE", false,
                  "The VAE model used for encoding and decoding images to and from latent "
                  "space."}},
     .run = [](const NodeInputs& in, NodeContext& ctx) -> NodeResult {
       const std::string path = find_or_fail(ctx.paths, "checkpoints", in.get_string("ckpt_name"));
       const DType dtype = model_dtype(ctx.device);
       auto tokenizer = sd1_tokenizer(ctx.models);
       auto ckpt = ctx.models.get_or_load<pipeline::LoadedCheckpoint>(
           cache_key("checkpoint", path, dtype, ctx.device),
           [&]() -> std::pair<std::shared_ptr<const pipeline::LoadedCheckpoint>, uint64_t> {
             auto c = std::make_shared<const pipeline::LoadedCheckpoint>(
                 pipeline::load_checkpoint(path, tokenizer, dtype, ctx.device));
             return {c, c->bytes};
           });
       return {{Value::of("MODEL", ckpt->model), Value::of("CLIP", ckpt->clip),
                Value::of("VAE", ckpt->vae)}};
     }});

const NodeRegistrar kVaeLoader(
    {.class_name = "VAELoader",
     .display_name = "Load VAE",
     .category = "loaders",
     .required = {folder_combo_input("vae_name", "vae")},
     .outputs = {{"VAE", "VAE"}},
     .run = [](const NodeInputs& in, NodeContext& ctx) -> NodeResult {
       const std::string path = find_or_fail(ctx.paths, "vae", in.get_string("vae_name"));
       const DType dtype = model_dtype(ctx.device);
       auto vae = ctx.models.get_or_load<pipeline::LoadedVae>(
           cache_key("vae", path, dtype, ctx.device),
           [&]() -> std::pair<std::shared_ptr<const pipeline::LoadedVae>, uint64_t> {
             auto v = std::make_shared<const pipeline::LoadedVae>(
                 pipeline::load_vae_file(path, dtype, ctx.device));
             return {v, v->bytes};
           });
       return {{Value::of("VAE", vae->vae)}};
     }});

// DiffusersLoader's model_path values: every folder under a "diffusers" model folder that
// holds model_index.json, relative to that model folder (os.walk with followlinks, as
// ComfyUI lists them; sorted here where os.walk's order is the file system's).
std::vector<std::string> diffusers_folders(const FolderPaths& paths) {
  std::vector<std::string> out;
  auto it = paths.model_folders.find("diffusers");
  if (it == paths.model_folders.end()) return out;
  for (const std::string& base : it->second) {
    std::error_code ec;
    if (!fs::is_directory(base, ec)) continue;
    if (fs::is_regular_file(fs::path(base) / "model_index.json", ec)) out.emplace_back(".");
    fs::recursive_directory_iterator walk(base,
                                          fs::directory_options::follow_directory_symlink |
                                              fs::directory_options::skip_permission_denied,
                                          ec);
    for (; !ec && walk != fs::recursive_directory_iterator(); walk.increment(ec))
      if (walk->is_directory(ec) && fs::is_regular_file(walk->path() / "model_index.json", ec))
        out.push_back(fs::relative(walk->path(), base, ec).generic_string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// The first "diffusers" folder under which `name` exists (ComfyUI's load_checkpoint loop).
std::string find_diffusers_folder(const FolderPaths& paths, const std::string& name) {
  auto it = paths.model_folders.find("diffusers");
  if (it != paths.model_folders.end())
    for (const std::string& base : it->second) {
      std::error_code ec;
      const fs::path p = fs::path(base) / name;
      if (fs::exists(p, ec)) return p.lexically_normal().string();
    }
  fail("workflow", "Model in folder 'diffusers' with name '", name, "' not found.");
}

// ComfyUI keeps no display name for it: /object_info shows the class name.
const NodeRegistrar kDiffusersLoader(
    {.class_name = "DiffusersLoader",
     .category = "advanced/loaders/deprecated",
     .required = {combo_input("model_path", diffusers_folders)},
     .outputs = {{"MODEL", "MODEL"}, {"CLIP", "CLIP"}, {"VAE", "VAE"}},
     .run = [](const NodeInputs& in, NodeContext& ctx) -> NodeResult {
       const std::string path = find_diffusers_folder(ctx.paths, in.get_string("model_path"));
       const DType dtype = model_dtype(ctx.device);
       auto tokenizer = sd1_tokenizer(ctx.models);
       auto ckpt = ctx.models.get_or_load<pipeline::LoadedCheckpoint>(
           cache_key("diffusers", path, dtype, ctx.device),
           [&]() -> std::pair<std::shared_ptr<const pipeline::LoadedCheckpoint>, uint64_t> {
             DR_CHECK(pipeline::is_diffusers_folder(path), "workflow", path,
                      ": no model_index.json (not a diffusers folder)");
             auto c = std::make_shared<const pipeline::LoadedCheckpoint>(
                 pipeline::load_diffusers_folder(path, tokenizer, dtype, ctx.device));
             return {c, c->bytes};
           });
       return {{Value::of("MODEL", ckpt->model), Value::of("CLIP", ckpt->clip),
                Value::of("VAE", ckpt->vae)}};
     }});

}  // namespace
}  // namespace darkroom::workflow
