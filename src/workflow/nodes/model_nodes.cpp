// Model patches: ModelSamplingDiscrete (comfy_extras/nodes_model_advanced.py), which
// changes what the sampler takes the network's output to be (eps, v, x0, img_to_img, lcm),
// may keep only LCM's 50 distilled timesteps, and may rescale the sigma table to zero
// terminal SNR.
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
       pipeline::ModelHandle m = in.unresolved_model("model");  // a clone sharing the network
       const std::string& s = in.get_string("sampling");
       m.sampling.zsnr = in.get_bool("zsnr");
       m.sampling.lcm = false;
       // The 1000-step table (zero-terminal-SNR rescaled first when asked); "lcm" then
       // keeps its 50-timestep subset (ModelSamplingDiscreteDistilled).
       std::shared_ptr<const sampling::DiscreteSchedule> schedule =
           pipeline::discrete_schedule(m.sampling.zsnr);
       if (s == "eps") {
         m.sampling.prediction = sampling::Prediction::Eps;
       } else if (s == "v_prediction") {
         m.sampling.prediction = sampling::Prediction::V;
       } else if (s == "x0") {
         m.sampling.prediction = sampling::Prediction::X0;
       } else if (s == "img_to_img") {
         m.sampling.prediction = sampling::Prediction::ImgToImg;
       } else if (s == "lcm") {
         m.sampling.prediction = sampling::Prediction::Lcm;
         m.sampling.lcm = true;
         schedule = std::make_shared<const sampling::DiscreteSchedule>(
             sampling::DiscreteSchedule::distilled(*schedule, 50));
       } else {
         fail("ModelSamplingDiscrete", "unknown sampling '", s, "'");
       }
       m.sampling.schedule = std::move(schedule);
       return {{Value::of("MODEL", std::move(m))}};
     }});

}  // namespace
}  // namespace darkroom::workflow
