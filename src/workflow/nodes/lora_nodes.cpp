// LoRA nodes (nodes.py): LoraLoader and LoraLoaderModelOnly. A LoRA file is read once per
// (file, base model) and kept in the model cache; each node returns a MODEL / CLIP with
// the LoRA stacked on whatever LoRAs its input already carries, to be rebuilt from the
// base checkpoint's weights (pipeline/lora_apply.h) when a node first runs it
// (pipeline::Deferred), so chained loaders stack, only the last stack of a chain is
// merged, and a different set is another rebuild, never a checkpoint reload. The rebuilt
// MODEL / CLIP is kept in the model cache, under its base and its whole stack (files and
// strengths), costed at its patched copies: a server whose users alternate between LoRA
// sets merges each set once while the cache has room (ComfyUI re-patches whenever the set
// changes).
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "core/log.h"
#include "models/lora.h"
#include "pipeline/lora_apply.h"
#include "pipeline/model_cache.h"
#include "workflow/node.h"

namespace darkroom::workflow {
namespace {

const json kStrength = {{"default", 1.0}, {"min", -100.0}, {"max", 100.0}, {"step", 0.01}};

json strength_spec(const char* tooltip) {
  json j = kStrength;
  j["tooltip"] = tooltip;
  return j;
}

// The LoRA `name` from the loras folder, its modules matched to the model's (and clip's)
// tensors; keys that patch nothing are logged, as ComfyUI's "lora key not loaded". The
// matching depends only on those tensors' names and shapes, so the cached file is keyed
// by them (a CLIP from another checkpoint gets its own match).
std::shared_ptr<const LoraFile> open_lora(const std::string& name, NodeContext& ctx,
                                          const pipeline::ModelHandle& model,
                                          const pipeline::ClipHandle* clip) {
  const std::optional<std::string> path = ctx.paths.find("loras", name);
  DR_CHECK(path.has_value(), "workflow", "Model in folder 'loras' with filename '", name,
           "' not found.");
  const std::map<std::string, Shape> base = pipeline::lora_base_shapes(&model, clip);
  std::string names;
  for (const auto& [n, shape] : base) names += n + shape.str() + ";";
  const std::string key = "lora:" + *path + ":" + std::to_string(std::hash<std::string>{}(names)) +
                          ":" + std::to_string(base.size());
  return ctx.models.get_or_load<LoraFile>(
      key, [&]() -> std::pair<std::shared_ptr<const LoraFile>, uint64_t> {
        auto file = std::make_shared<const LoraFile>(LoraFile::open(*path, base));
        for (const std::string& k : file->unmatched())
          DR_LOG(Warn) << "lora key not loaded: " << k << " (" << name << ")";
        uint64_t bytes = 0;
        for (const LoraPatch& p : file->patches())
          for (const auto& [part, t] : p.parts) bytes += t.nbytes();
        return {file, bytes};
      });
}

// A pointer as a number: names an object in a cache key while the key's entry holds it.
std::string address(const void* p) {
  return std::to_string(reinterpret_cast<std::uintptr_t>(p));
}

// "<file>@<strength bits>;…" for a stack: the LoraFile objects are the cache's own (one
// per file and base), so their addresses name them while the entry holding them lives.
std::string stack_key(const std::vector<pipeline::LoraUse>& stack) {
  std::string key;
  for (const pipeline::LoraUse& u : stack) {
    uint32_t bits = 0;
    std::memcpy(&bits, &u.strength, sizeof(bits));
    key += u.file->path() + "#" + address(u.file.get()) + "@" + std::to_string(bits) + ";";
  }
  return key;
}

// `handle` (a MODEL or CLIP) with `stack` (its LoRAs and one more) to be merged when a node
// first runs it: a chain of loaders merges only its last stack. The merged handle is kept
// in the model cache under `key`, which names its base and its whole stack; the bases'
// sources are named by address, which holds while the cached handle (holding them) lives.
template <class Handle>
Handle deferred_with(NodeContext& ctx, const Handle& handle, std::vector<pipeline::LoraUse> stack,
                     const std::string& base_name) {
  Handle base = handle;
  base.deferred = nullptr;
  Handle out = base;  // the base's networks, for their configuration, until resolved
  out.loras = stack;
  const std::string key = base_name + ":" + stack_key(stack);
  out.deferred = std::make_shared<const pipeline::Deferred<Handle>>(
      [cache = &ctx.models, key, base = std::move(base), stack = std::move(stack)] {
        return *cache->get_or_load<Handle>(
            key, [&]() -> std::pair<std::shared_ptr<const Handle>, uint64_t> {
              auto h = std::make_shared<const Handle>(pipeline::with_loras(base, stack));
              return {h, h->lora_bytes};
            });
      });
  return out;
}

pipeline::ModelHandle model_with(NodeContext& ctx, const pipeline::ModelHandle& model,
                                 std::vector<pipeline::LoraUse> stack) {
  return deferred_with(ctx, model, std::move(stack),
                       "lora_model:" + address(model.unet_source.get()));
}

pipeline::ClipHandle clip_with(NodeContext& ctx, const pipeline::ClipHandle& clip,
                               std::vector<pipeline::LoraUse> stack) {
  return deferred_with(ctx, clip, std::move(stack),
                       "lora_clip:" + address(clip.encoder_source.get()) + ":" +
                           address(clip.open_clip_source.get()));
}

const NodeRegistrar kLoraLoader(
    {.class_name = "LoraLoader",
     .display_name = "Load LoRA",
     .category = "loaders",
     .description = "LoRAs are used to modify diffusion and CLIP models, altering the way in which "
                    "latents are denoised such as applying styles. Multiple LoRA nodes can be "
                    "linked together.",
     .required = {link_input("model", "MODEL",
                             {{"tooltip", "The diffusion model the LoRA will be applied to."}}),
                  link_input("clip", "CLIP",
                             {{"tooltip", "The CLIP model the LoRA will be applied to."}}),
                  folder_combo_input("lora_name", "loras", {{"tooltip", "The name of the LoRA."}}),
                  float_input("strength_model",
                              strength_spec("How strongly to modify the diffusion model. This "
                                            "value can be negative.")),
                  float_input("strength_clip",
                              strength_spec("How strongly to modify the CLIP model. This value "
                                            "can be negative."))},
     .outputs = {{"MODEL", "MODEL", false, "The modified diffusion model."},
                 {"CLIP", "CLIP", false, "The modified CLIP model."}},
     .run = [](const NodeInputs& in, NodeContext& ctx) -> NodeResult {
       const pipeline::ModelHandle& model = in.unresolved_model("model");
       const pipeline::ClipHandle& clip = in.unresolved_clip("clip");
       const auto sm = static_cast<float>(in.get_float("strength_model"));
       const auto sc = static_cast<float>(in.get_float("strength_clip"));
       if (sm == 0.0f && sc == 0.0f) return {{in.get("model"), in.get("clip")}};
       const auto lora = open_lora(in.get_string("lora_name"), ctx, model, &clip);
       Value m = sm == 0.0f
                     ? in.get("model")
                     : Value::of("MODEL",
                                 model_with(ctx, model, pipeline::stack_of(model.loras, lora, sm)));
       Value c =
           sc == 0.0f
               ? in.get("clip")
               : Value::of("CLIP", clip_with(ctx, clip, pipeline::stack_of(clip.loras, lora, sc)));
       return {{std::move(m), std::move(c)}};
     }});

const NodeRegistrar kLoraLoaderModelOnly(
    {.class_name = "LoraLoaderModelOnly",
     .display_name = "LoraLoaderModelOnly",
     .category = "loaders",
     .description = "LoRAs are used to modify diffusion and CLIP models, altering the way in which "
                    "latents are denoised such as applying styles. Multiple LoRA nodes can be "
                    "linked together.",
     .required = {link_input("model", "MODEL"), folder_combo_input("lora_name", "loras"),
                  float_input("strength_model", kStrength)},
     .outputs = {{"MODEL", "MODEL"}},
     .run = [](const NodeInputs& in, NodeContext& ctx) -> NodeResult {
       const pipeline::ModelHandle& model = in.unresolved_model("model");
       const auto sm = static_cast<float>(in.get_float("strength_model"));
       if (sm == 0.0f) return {{in.get("model")}};
       const auto lora = open_lora(in.get_string("lora_name"), ctx, model, nullptr);
       return {
           {Value::of("MODEL", model_with(ctx, model, pipeline::stack_of(model.loras, lora, sm)))}};
     }});

}  // namespace
}  // namespace darkroom::workflow
