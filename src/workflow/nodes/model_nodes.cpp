// Model patches: ModelSamplingDiscrete (comfy_extras/nodes_model_advanced.py), which
// changes what the sampler takes the network's output to be (eps, v, x0) and may rescale
// the sigma table to zero terminal SNR.
#include "pipeline/checkpoint_loader.h"
#include "workflow/node.h"

namespace darkroom::workflow {
namespace {

const NodeRegistrar kModelSamplingDiscrete(
    {.class_name = "ModelSamplingDiscrete",
     .display_name = "ModelSamplingDiscrete",
     .category = "advanced/model",
     .required = {link_input("model", "MODEL"),
                  combo_input("sampling", std::vector<std::string>{"eps", "v_prediction", "lcm",
                                                                   "x0", "img_to_img"}),
                  bool_input("zsnr", {{"default", false}})},
     .outputs = {{"MODEL", "MODEL"}},
     .python_module = "comfy_extras.nodes_model_advanced",
     .run = [](const NodeInputs& in, NodeContext&) -> NodeResult {
       pipeline::ModelHandle m = in.model("model");  // a clone sharing the network
       const std::string& s = in.get_string("sampling");
       if (s == "eps") {
         m.sampling.prediction = sampling::Prediction::Eps;
       } else if (s == "v_prediction") {
         m.sampling.prediction = sampling::Prediction::V;
       } else if (s == "x0") {
         m.sampling.prediction = sampling::Prediction::X0;
       } else {
         fail("ModelSamplingDiscrete", "sampling '", s,
              "' is not supported yet (eps, v_prediction ", "and x0 are)");
       }
       m.sampling.lcm = false;
       m.sampling.zsnr = in.get_bool("zsnr");
       m.sampling.schedule = pipeline::discrete_schedule(m.sampling.zsnr);
       return {{Value::of("MODEL", std::move(m))}};
     }});

}  // namespace
}  // namespace darkroom::workflow
