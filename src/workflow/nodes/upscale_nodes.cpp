// Upscale models (comfy_extras/nodes_upscale_model.py): UpscaleModelLoader and
// ImageUpscaleWithModel. The model loads on the executor's device in its compute dtype
// and is kept in the model cache under (file, dtype, device); the image is upscaled in
// tiles as ComfyUI does (pipeline/upscale_tiled.h) and clamped to [0, 1].
#include <optional>
#include <string>
#include <utility>

#include "backend/device.h"
#include "pipeline/model_cache.h"
#include "pipeline/upscale_model.h"
#include "pipeline/upscale_tiled.h"
#include "workflow/node.h"

namespace darkroom::workflow {
namespace {

const NodeRegistrar kUpscaleModelLoader(
    {.class_name = "UpscaleModelLoader",
     .display_name = "Load Upscale Model",
     .category = "loaders",
     .required = {folder_combo_input("model_name", "upscale_models")},
     .outputs = {{"UPSCALE_MODEL", "UPSCALE_MODEL"}},
     .python_module = "comfy_extras.nodes_upscale_model",
     .run = [](const NodeInputs& in, NodeContext& ctx) -> NodeResult {
       const std::string& name = in.get_string("model_name");
       const std::optional<std::string> path = ctx.paths.find("upscale_models", name);
       // ComfyUI's get_full_path_or_raise message.
       DR_CHECK(path.has_value(), "workflow", "Model in folder 'upscale_models' with filename '",
                name, "' not found.");
       const DType dtype = device_for(ctx.device).compute_dtype();
       const std::string key =
           "upscale_model:" + *path + ":" + std::string(dtype_name(dtype)) + ":" + ctx.device.str();
       auto model = ctx.models.get_or_load<pipeline::UpscaleModel>(
           key, [&]() -> std::pair<std::shared_ptr<const pipeline::UpscaleModel>, uint64_t> {
             auto m = std::make_shared<const pipeline::UpscaleModel>(
                 pipeline::load_upscale_model(*path, dtype, ctx.device));
             return {m, m->bytes};
           });
       return {{Value::of("UPSCALE_MODEL", *model)}};
     }});

const NodeRegistrar kImageUpscaleWithModel(
    {.class_name = "ImageUpscaleWithModel",
     .display_name = "Upscale Image (using Model)",
     .category = "image/upscaling",
     .required = {link_input("upscale_model", "UPSCALE_MODEL"), link_input("image", "IMAGE")},
     .outputs = {{"IMAGE", "IMAGE"}},
     .python_module = "comfy_extras.nodes_upscale_model",
     .run = [](const NodeInputs& in, NodeContext& ctx) -> NodeResult {
       const auto& model = in.get("upscale_model").as<pipeline::UpscaleModel>();
       pipeline::UpscaleOptions o;  // ComfyUI's tile 512, overlap 32
       o.on_tile = [&ctx](int64_t value, int64_t max) {
         ctx.check_interrupt();
         ctx.progress(static_cast<int>(value), static_cast<int>(max));
       };
       return {{Value::of("IMAGE", pipeline::upscale_image(model, in.image("image"), o))}};
     }});

}  // namespace
}  // namespace darkroom::workflow
