// Mask sources (comfy_extras/nodes_mask.py): SolidMask.
#include "workflow/node.h"

namespace darkroom::workflow {
namespace {

constexpr int64_t kMaxResolution = 16384;

const NodeRegistrar kSolidMask(
    {.class_name = "SolidMask",
     .display_name = "SolidMask",
     .category = "mask",
     .required = {float_input("value",
                              {{"default", 1.0}, {"min", 0.0}, {"max", 1.0}, {"step", 0.01}}),
                  int_input("width",
                            {{"default", 512}, {"min", 1}, {"max", kMaxResolution}, {"step", 1}}),
                  int_input("height",
                            {{"default", 512}, {"min", 1}, {"max", kMaxResolution}, {"step", 1}})},
     .outputs = {{"MASK", "MASK"}},
     .python_module = "comfy_extras.nodes_mask",
     .run = [](const NodeInputs& in, NodeContext&) -> NodeResult {
       // torch.full((1, height, width), value) in float32.
       const int64_t h = in.get_int("height"), w = in.get_int("width");
       const std::vector<float> v(static_cast<size_t>(h * w),
                                  static_cast<float>(in.get_float("value")));
       return {{Value::of("MASK", Tensor::from_floats(v, {1, h, w}))}};
     }});

}  // namespace
}  // namespace darkroom::workflow
