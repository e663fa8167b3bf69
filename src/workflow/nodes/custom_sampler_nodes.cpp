// The custom-sampling nodes that SD-Turbo / SDXL-Turbo workflows use
// (comfy_extras/nodes_custom_sampler.py): KSamplerSelect (a SAMPLER by name),
// SDTurboScheduler (SIGMAS at the distilled timesteps 999, 899, ..., 99) and SamplerCustom
// (KSampler on given sigmas, with a second output: the last step's x0 estimate).
//
//   SAMPLER  the sampler's name (std::string)
//   SIGMAS   descending sigmas ending in 0 (std::vector<float>)
#include <limits>

#include "pipeline/ksampler.h"
#include "sampling/registry.h"
#include "workflow/node.h"
#include "workflow/nodes/sampling_choices.h"

namespace darkroom::workflow {
namespace {

const NodeRegistrar kKSamplerSelect(
    {.class_name = "KSamplerSelect",
     .display_name = "KSamplerSelect",
     .category = "sampling/custom_sampling/samplers",
     .required = {combo_input("sampler_name", ComboFn(sampler_names))},
     .outputs = {{"SAMPLER", "SAMPLER"}},
     .python_module = "comfy_extras.nodes_custom_sampler",
     .run = [](const NodeInputs& in, NodeContext&) -> NodeResult {
       return {{Value::of("SAMPLER", in.get_string("sampler_name"))}};
     }});

// SDTurboScheduler.get_sigmas: start = 10 - int(10·denoise); the timesteps
// flip(arange(1, 11)·100 - 1)[start:start + steps] through the model's sigma table, then 0.
std::vector<float> sd_turbo_sigmas(const sampling::DiscreteSchedule& schedule, int steps,
                                   double denoise) {
  const int start = 10 - static_cast<int>(10 * denoise);
  std::vector<float> sigmas;
  for (int i = start; i < std::min(10, start + steps); ++i)
    sigmas.push_back(schedule.sigma(static_cast<float>((10 - i) * 100 - 1)));
  sigmas.push_back(0.0f);
  return sigmas;
}

const NodeRegistrar kSdTurboScheduler(
    {.class_name = "SDTurboScheduler",
     .display_name = "SDTurboScheduler",
     .category = "sampling/custom_sampling/schedulers",
     .required = {link_input("model", "MODEL"),
                  int_input("steps", {{"default", 1}, {"min", 1}, {"max", 10}}),
                  float_input("denoise",
                              {{"default", 1.0}, {"min", 0.0}, {"max", 1.0}, {"step", 0.01}})},
     .outputs = {{"SIGMAS", "SIGMAS"}},
     .python_module = "comfy_extras.nodes_custom_sampler",
     .run = [](const NodeInputs& in, NodeContext&) -> NodeResult {
       const pipeline::ModelHandle& m = in.unresolved_model("model");  // its schedule only
       return {{Value::of(
           "SIGMAS", sd_turbo_sigmas(*m.sampling.schedule, static_cast<int>(in.get_int("steps")),
                                     in.get_float("denoise")))}};
     }});

const NodeRegistrar kSamplerCustom(
    {.class_name = "SamplerCustom",
     .display_name = "SamplerCustom",
     .category = "sampling/custom_sampling",
     .required = {link_input("model", "MODEL"), bool_input("add_noise", {{"default", true}}),
                  int_input("noise_seed", {{"default", 0},
                                           {"min", 0},
                                           {"max", std::numeric_limits<uint64_t>::max()},
                                           {"control_after_generate", true}}),
                  float_input("cfg", {{"default", 8.0},
                                      {"min", 0.0},
                                      {"max", 100.0},
                                      {"step", 0.1},
                                      {"round", 0.01}}),
                  link_input("positive", "CONDITIONING"), link_input("negative", "CONDITIONING"),
                  link_input("sampler", "SAMPLER"), link_input("sigmas", "SIGMAS"),
                  link_input("latent_image", "LATENT")},
     .outputs = {{"LATENT", "output"}, {"LATENT", "denoised_output"}},
     .python_module = "comfy_extras.nodes_custom_sampler",
     .run = [](const NodeInputs& in, NodeContext& ctx) -> NodeResult {
       const pipeline::ModelHandle& model = in.model("model");
       pipeline::KSamplerParams p;
       p.seed = in.get_uint("noise_seed");
       p.add_noise = in.get_bool("add_noise");
       p.cfg = in.get_float("cfg");
       p.sampler = in.get("sampler").as<std::string>();
       p.sigmas = in.get("sigmas").as<std::vector<float>>();
       Tensor x0;  // the last step's denoised estimate (model space)
       pipeline::KSamplerHooks hooks;
       hooks.check_interrupt = [&ctx] { ctx.check_interrupt(); };
       hooks.on_step = [&](int step, int steps, const Tensor& d) {
         x0 = d;
         ctx.preview_latent(d, model.latent_format);
         ctx.progress(step + 1, steps);
         ctx.check_interrupt();
       };
       const pipeline::Latent& latent = in.latent("latent_image");
       pipeline::Latent out = pipeline::ksample(model, in.conditioning("positive"),
                                                in.conditioning("negative"), latent, p, hooks);
       pipeline::Latent denoised = out;
       if (x0.defined()) {  // process_latent_out of the x0 estimate
         std::vector<float> v = x0.to_floats();
         for (float& e : v) e /= model.latent_scale;
         denoised.samples = Tensor::from_floats(v, x0.shape());
       }
       return {{Value::of("LATENT", std::move(out)), Value::of("LATENT", std::move(denoised))}};
     }});

}  // namespace
}  // namespace darkroom::workflow
