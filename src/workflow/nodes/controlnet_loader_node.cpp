// ControlNetLoader (nodes.py): a ControlNet file of the "controlnet" models folder, loaded
// on the executor's device in its compute dtype (pipeline/controlnet_loader.h) and kept in
// the model cache under (file, dtype, device). Its CONTROL_NET output holds a
// std::shared_ptr<const ControlNet> (NodeInputs::control_net).
//
// DiffControlNetLoader ("Load ControlNet Model (diff)"): the same with a MODEL, whose UNet
// weights a difference ControlNet's are added to: the weights the checkpoint loader built
// the UNet from (ModelHandle::unet_source) with the MODEL's LoRAs merged (its resolved
// lora_weights), as ComfyUI adds the patched model's state dict. A file that is no
// difference ControlNet loads as with ControlNetLoader (the same cache entry). A difference
// file is cached under (file, dtype, device, the source, the patched copies); the cached net
// holds both, so that their addresses name them while the entry lives.
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "backend/device.h"
#include "pipeline/controlnet_loader.h"
#include "pipeline/model_cache.h"
#include "pipeline/model_handles.h"
#include "workflow/node.h"

namespace darkroom::workflow {
namespace {

std::string cache_key(const std::string& path, const NodeContext& ctx) {
  const DType dtype = device_for(ctx.device).compute_dtype();
  return "controlnet:" + path + ":" + std::string(dtype_name(dtype)) + ":" + ctx.device.str();
}

std::string find_file(const NodeInputs& in, const NodeContext& ctx) {
  const std::string& name = in.get_string("control_net_name");
  const std::optional<std::string> path = ctx.paths.find("controlnet", name);
  // ComfyUI's get_full_path_or_raise message.
  DR_CHECK(path.has_value(), "workflow", "Model in folder 'controlnet' with filename '", name,
           "' not found.");
  return *path;
}

// A ControlNet file as it is (no MODEL weights added), shared by both loaders.
std::shared_ptr<const ControlNet> plain_controlnet(const std::string& path, NodeContext& ctx) {
  return ctx.models.get_or_load<ControlNet>(
      cache_key(path, ctx), [&]() -> std::pair<std::shared_ptr<const ControlNet>, uint64_t> {
        uint64_t bytes = 0;
        auto loaded = pipeline::load_controlnet(path, ctx.device,
                                                device_for(ctx.device).compute_dtype(), &bytes);
        return {std::move(loaded), bytes};
      });
}

const NodeRegistrar kControlNetLoader(
    {.class_name = "ControlNetLoader",
     .display_name = "Load ControlNet Model",
     .category = "loaders",
     .required = {folder_combo_input("control_net_name", "controlnet")},
     .outputs = {{"CONTROL_NET", "CONTROL_NET"}},
     .run = [](const NodeInputs& in, NodeContext& ctx) -> NodeResult {
       return {{Value::of("CONTROL_NET", plain_controlnet(find_file(in, ctx), ctx))}};
     }});

// The ControlNet and the UNet source (and LoRA copies) its weights were added to, kept alive
// together.
struct DiffControlNet {
  std::shared_ptr<const pipeline::NetworkSource<UNet>> base;
  std::shared_ptr<const std::map<std::string, Tensor>> patched;
  ControlNet net;
};

const NodeRegistrar kDiffControlNetLoader(
    {.class_name = "DiffControlNetLoader",
     .display_name = "Load ControlNet Model (diff)",
     .category = "loaders",
     .required = {link_input("model", "MODEL"),
                  folder_combo_input("control_net_name", "controlnet")},
     .outputs = {{"CONTROL_NET", "CONTROL_NET"}},
     .run = [](const NodeInputs& in, NodeContext& ctx) -> NodeResult {
       const std::string path = find_file(in, ctx);
       // A file that is no difference ControlNet loads as with ControlNetLoader.
       if (!pipeline::is_difference_controlnet(path))
         return {{Value::of("CONTROL_NET", plain_controlnet(path, ctx))}};
       // Resolved: a MODEL with LoRAs gets its merged copies (the merge is the model
       // cache's, shared with the sampler that runs this MODEL).
       const pipeline::ModelHandle model = in.model("model");
       std::shared_ptr<const pipeline::NetworkSource<UNet>> base = model.unet_source;
       std::shared_ptr<const std::map<std::string, Tensor>> patched = model.lora_weights;
       DR_CHECK(base != nullptr, "DiffControlNetLoader", path,
                " is a difference ControlNet, but the MODEL (", model.source,
                ") keeps no UNet weights to add it to");
       const std::string key = cache_key(path, ctx) + ":diff:" +
                               std::to_string(reinterpret_cast<std::uintptr_t>(base.get())) + ":" +
                               std::to_string(reinterpret_cast<std::uintptr_t>(patched.get()));
       std::shared_ptr<const ControlNet> net = ctx.models.get_or_load<
           ControlNet>(key, [&]() -> std::pair<std::shared_ptr<const ControlNet>, uint64_t> {
         uint64_t bytes = 0;
         auto loaded =
             pipeline::load_controlnet(path, ctx.device, device_for(ctx.device).compute_dtype(),
                                       &bytes, &base->weights, patched.get());
         auto both = std::make_shared<const DiffControlNet>(DiffControlNet{base, patched, *loaded});
         return {std::shared_ptr<const ControlNet>(both, &both->net), bytes};
       });
       return {{Value::of("CONTROL_NET", std::move(net))}};
     }});

}  // namespace
}  // namespace darkroom::workflow
