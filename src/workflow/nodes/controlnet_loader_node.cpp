// ControlNetLoader (nodes.py): a ControlNet file of the "controlnet" models folder, loaded
// on the executor's device in its compute dtype (pipeline/controlnet_loader.h) and kept in
// the model cache under (file, dtype, device). Its CONTROL_NET output holds a
// std::shared_ptr<const ControlNet> (NodeInputs::control_net).
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "backend/device.h"
#include "pipeline/controlnet_loader.h"
#include "pipeline/model_cache.h"
#include "workflow/node.h"

namespace darkroom::workflow {
namespace {

const NodeRegistrar kControlNetLoader(
    {.class_name = "ControlNetLoader",
     .display_name = "Load ControlNet Model",
     .category = "loaders",
     .required = {folder_combo_input("control_net_name", "controlnet")},
     .outputs = {{"CONTROL_NET", "CONTROL_NET"}},
     .run = [](const NodeInputs& in, NodeContext& ctx) -> NodeResult {
       const std::string& name = in.get_string("control_net_name");
       const std::optional<std::string> path = ctx.paths.find("controlnet", name);
       // ComfyUI's get_full_path_or_raise message.
       DR_CHECK(path.has_value(), "workflow", "Model in folder 'controlnet' with filename '", name,
                "' not found.");
       const DType dtype = device_for(ctx.device).compute_dtype();
       const std::string key =
           "controlnet:" + *path + ":" + std::string(dtype_name(dtype)) + ":" + ctx.device.str();
       std::shared_ptr<const ControlNet> net = ctx.models.get_or_load<ControlNet>(
           key, [&]() -> std::pair<std::shared_ptr<const ControlNet>, uint64_t> {
             uint64_t bytes = 0;
             auto loaded = pipeline::load_controlnet(*path, ctx.device, dtype, &bytes);
             return {std::move(loaded), bytes};
           });
       return {{Value::of("CONTROL_NET", std::move(net))}};
     }});

}  // namespace
}  // namespace darkroom::workflow
