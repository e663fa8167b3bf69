// Samplers (nodes.py): KSampler and KSamplerAdvanced, both through pipeline::ksample.
// Progress is reported per step ("progress" value step + 1 of the step count) with a
// latent preview of the step's x0; the interrupt flag is polled before every UNet call.
#include <limits>

#include "pipeline/ksampler.h"
#include "sampling/registry.h"
#include "sampling/schedule.h"
#include "workflow/node.h"
#include "workflow/nodes/sampling_choices.h"

namespace darkroom::workflow {
namespace {

NodeResult run_sampler(const NodeInputs& in, NodeContext& ctx, const char* seed_name,
                       pipeline::KSamplerParams p) {
  const pipeline::ModelHandle& model = in.model("model");
  p.seed = in.get_uint(seed_name);
  p.steps = static_cast<int>(in.get_int("steps"));
  p.cfg = in.get_float("cfg");
  p.sampler = in.get_string("sampler_name");
  p.scheduler = in.get_string("scheduler");
  pipeline::KSamplerHooks hooks;
  hooks.check_interrupt = [&ctx] { ctx.check_interrupt(); };
  hooks.on_step = [&](int step, int steps, const Tensor& x0) {
    ctx.preview_latent(x0, model.latent_format);
    ctx.progress(step + 1, steps);
    ctx.check_interrupt();
  };
  pipeline::Latent out =
      pipeline::ksample(model, in.conditioning("positive"), in.conditioning("negative"),
                        in.latent("latent_image"), p, hooks);
  return {{Value::of("LATENT", std::move(out))}};
}

const NodeRegistrar kKSampler(
    {.class_name = "KSampler",
     .display_name = "KSampler",
     .category = "sampling",
     .description = "Uses the provided model, positive and negative conditioning to denoise the "
                    "latent image.",
     .required =
         {link_input("model", "MODEL",
                     {{"tooltip", "The model used for denoising the input latent."}}),
          int_input("seed", {{"default", 0},
                             {"min", 0},
                             {"max", std::numeric_limits<uint64_t>::max()},
                             {"control_after_generate", true},
                             {"tooltip", "The random seed used for creating the noise."}}),
          int_input("steps", {{"default", 20},
                              {"min", 1},
                              {"max", 10000},
                              {"tooltip", "The number of steps used in the denoising process."}}),
          float_input("cfg",
                      {{"default", 8.0},
                       {"min", 0.0},
                       {"max", 100.0},
                       {"step", 0.1},
                       {"round", 0.01},
                       {"tooltip",
                        "The Classifier-Free Guidance scale balances creativity and adherence to "
                        "the prompt. Higher values result in images more closely matching the "
                        "prompt however too high values will negatively impact quality."}}),
          combo_input("sampler_name", ComboFn(sampler_names),
                      {{"tooltip",
                        "The algorithm used when sampling, this can affect the quality, "
                        "speed, and style of the generated output."}}),
          combo_input(
              "scheduler", ComboFn(scheduler_names),
              {{"tooltip",
                "The scheduler controls how noise is gradually removed to form the image."}}),
          link_input("positive", "CONDITIONING",
                     {{"tooltip",
                       "The conditioning describing the attributes you want to include in the "
                       "image."}}),
          link_input("negative", "CONDITIONING",
                     {{"tooltip",
                       "The conditioning describing the attributes you want to exclude from the "
                       "image."}}),
          link_input("latent_image", "LATENT", {{"tooltip", "The latent image to denoise."}}),
          float_input("denoise",
                      {{"default", 1.0},
                       {"min", 0.0},
                       {"max", 1.0},
                       {"step", 0.01},
                       {"tooltip",
                        "The amount of denoising applied, lower values will maintain the "
                        "structure of the initial image allowing for image to image sampling."}})},
     .outputs = {{"LATENT", "LATENT", false, "The denoised latent."}},
     .run = [](const NodeInputs& in, NodeContext& ctx) -> NodeResult {
       pipeline::KSamplerParams p;
       p.denoise = in.get_float("denoise");
       return run_sampler(in, ctx, "seed", p);
     }});

const NodeRegistrar kKSamplerAdvanced(
    {.class_name = "KSamplerAdvanced",
     .display_name = "KSampler (Advanced)",
     .category = "sampling",
     .required =
         {link_input("model", "MODEL"),
          combo_input("add_noise", std::vector<std::string>{"enable", "disable"}),
          int_input("noise_seed", {{"default", 0},
                                   {"min", 0},
                                   {"max", std::numeric_limits<uint64_t>::max()},
                                   {"control_after_generate", true}}),
          int_input("steps", {{"default", 20}, {"min", 1}, {"max", 10000}}),
          float_input(
              "cfg",
              {{"default", 8.0}, {"min", 0.0}, {"max", 100.0}, {"step", 0.1}, {"round", 0.01}}),
          combo_input("sampler_name", ComboFn(sampler_names)),
          combo_input("scheduler", ComboFn(scheduler_names)),
          link_input("positive", "CONDITIONING"), link_input("negative", "CONDITIONING"),
          link_input("latent_image", "LATENT"),
          int_input("start_at_step", {{"default", 0}, {"min", 0}, {"max", 10000}}),
          int_input("end_at_step", {{"default", 10000}, {"min", 0}, {"max", 10000}}),
          combo_input("return_with_leftover_noise", std::vector<std::string>{"disable", "enable"})},
     .outputs = {{"LATENT", "LATENT"}},
     .run = [](const NodeInputs& in, NodeContext& ctx) -> NodeResult {
       // KSamplerAdvanced.sample: force_full_denoise unless leftover noise is asked for;
       // disable_noise when add_noise is "disable"; denoise 1.
       pipeline::KSamplerParams p;
       p.force_full_denoise = in.get_string("return_with_leftover_noise") != "enable";
       p.add_noise = in.get_string("add_noise") != "disable";
       p.start_step = static_cast<int>(in.get_int("start_at_step"));
       p.last_step = static_cast<int>(in.get_int("end_at_step"));
       return run_sampler(in, ctx, "noise_seed", p);
     }});

}  // namespace
}  // namespace darkroom::workflow
