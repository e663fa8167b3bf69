// ControlNetApply and ControlNetApplyAdvanced (nodes.py): attach a ControlNet, its hint
// image, strength and timestep range to every entry of a conditioning, chained after the
// entry's earlier ControlNet (pipeline/control.h; the sampler runs the chain,
// cond_batch.cpp).
//
//   ControlNetApply          one new link per entry, over the whole schedule, also
//                            applied to the negative by the sampler when the negative
//                            has no ControlNet (ComfyUI's control_apply_to_uncond)
//   ControlNetApplyAdvanced  positive and negative; entries with the same earlier
//                            ControlNet share one new link (ComfyUI keys its copies by the
//                            previous ControlNet), so that a positive and a negative with
//                            equal chains still batch together in one UNet call
//
// Strength 0 returns the inputs unchanged. The optional VAE of ControlNetApplyAdvanced
// only matters to ControlNets that take latents as hints (SD3, FLUX); the SD 1.x / SDXL
// ControlNets darkroom loads take pixels, so it is accepted and not used.
#include <map>
#include <memory>
#include <utility>

#include "pipeline/control.h"
#include "workflow/node.h"

namespace darkroom::workflow {
namespace {

using pipeline::Conditioning;
using pipeline::ControlLink;

std::shared_ptr<const ControlLink> make_link(const NodeInputs& in, double start, double end,
                                             std::shared_ptr<const ControlLink> previous) {
  const pipeline::Image& image = in.image("image");
  DR_CHECK(image.defined() && image.ndim() == 4, "ControlNet",
           "expected an IMAGE [N, H, W, C] as the hint, got ", image.shape().str());
  auto link = std::make_shared<ControlLink>();
  link->net = in.control_net("control_net");
  DR_CHECK(link->net != nullptr, "ControlNet", "the CONTROL_NET input holds no ControlNet");
  link->hint = image;
  link->strength = static_cast<float>(in.get_float("strength"));
  link->start_percent = start;
  link->end_percent = end;
  link->previous = std::move(previous);
  return link;
}

const NodeRegistrar kControlNetApply(
    {.class_name = "ControlNetApply",
     .display_name = "Apply ControlNet (OLD)",
     .category = "conditioning/controlnet",
     .required = {link_input("conditioning", "CONDITIONING"),
                  link_input("control_net", "CONTROL_NET"), link_input("image", "IMAGE"),
                  float_input("strength",
                              {{"default", 1.0}, {"min", 0.0}, {"max", 10.0}, {"step", 0.01}})},
     .outputs = {{"CONDITIONING", "CONDITIONING"}},
     .deprecated = true,  // nodes.py: DEPRECATED = True (ControlNetApplyAdvanced replaces it)
     .run = [](const NodeInputs& in, NodeContext&) -> NodeResult {
       const Conditioning& cond = in.conditioning("conditioning");
       if (in.get_float("strength") == 0.0) return {{Value::of("CONDITIONING", cond)}};
       Conditioning out = cond;
       for (pipeline::CondEntry& e : out) {
         e.control = make_link(in, 0.0, 1.0, e.control);
         e.control_apply_to_uncond = true;
       }
       return {{Value::of("CONDITIONING", std::move(out))}};
     }});

const NodeRegistrar kControlNetApplyAdvanced(
    {.class_name = "ControlNetApplyAdvanced",
     .display_name = "Apply ControlNet",
     .category = "conditioning/controlnet",
     .required = {link_input("positive", "CONDITIONING"), link_input("negative", "CONDITIONING"),
                  link_input("control_net", "CONTROL_NET"), link_input("image", "IMAGE"),
                  float_input("strength",
                              {{"default", 1.0}, {"min", 0.0}, {"max", 10.0}, {"step", 0.01}}),
                  float_input("start_percent",
                              {{"default", 0.0}, {"min", 0.0}, {"max", 1.0}, {"step", 0.001}}),
                  float_input("end_percent",
                              {{"default", 1.0}, {"min", 0.0}, {"max", 1.0}, {"step", 0.001}})},
     .optional = {link_input("vae", "VAE")},
     .outputs = {{"CONDITIONING", "positive"}, {"CONDITIONING", "negative"}},
     .run = [](const NodeInputs& in, NodeContext&) -> NodeResult {
       const Conditioning& positive = in.conditioning("positive");
       const Conditioning& negative = in.conditioning("negative");
       if (in.get_float("strength") == 0.0)
         return {{Value::of("CONDITIONING", positive), Value::of("CONDITIONING", negative)}};
       const double start = in.get_float("start_percent"), end = in.get_float("end_percent");
       // One new link per earlier ControlNet (null included), shared by both outputs.
       std::map<const ControlLink*, std::shared_ptr<const ControlLink>> links;
       auto apply = [&](const Conditioning& cond) {
         Conditioning out = cond;
         for (pipeline::CondEntry& e : out) {
           auto& link = links[e.control.get()];
           if (!link) link = make_link(in, start, end, e.control);
           e.control = link;
           e.control_apply_to_uncond = false;
         }
         return out;
       };
       Conditioning pos = apply(positive);
       Conditioning neg = apply(negative);
       return {
           {Value::of("CONDITIONING", std::move(pos)), Value::of("CONDITIONING", std::move(neg))}};
     }});

}  // namespace
}  // namespace darkroom::workflow
