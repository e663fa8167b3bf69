// Text conditioning (nodes.py): CLIPTextEncode, CLIPSetLastLayer, ConditioningCombine,
// ConditioningSetArea.
#include "pipeline/prompt_encoder.h"
#include "workflow/node.h"

namespace darkroom::workflow {
namespace {

constexpr int64_t kMaxResolution = 16384;  // nodes.py MAX_RESOLUTION

const NodeRegistrar kClipTextEncode(
    {.class_name = "CLIPTextEncode",
     .display_name = "CLIP Text Encode (Prompt)",
     .category = "conditioning",
     .description = "Encodes a text prompt using a CLIP model into an embedding that can be used "
                    "to guide the diffusion model towards generating specific images.",
     .required = {string_input("text", {{"multiline", true},
                                        {"dynamicPrompts", true},
                                        {"tooltip", "The text to be encoded."}}),
                  link_input("clip", "CLIP",
                             {{"tooltip", "The CLIP model used for encoding the text."}})},
     .outputs = {{"CONDITIONING", "CONDITIONING", false,
                  "A conditioning containing the embedded text used to guide the diffusion "
                  "model."}},
     .run = [](const NodeInputs& in, NodeContext&) -> NodeResult {
       const pipeline::ClipHandle& clip = in.clip("clip");
       DR_CHECK(clip.encoder && clip.tokenizer, "CLIPTextEncode",
                "ERROR: clip input is invalid: None\n\nIf the clip is from a checkpoint loader "
                "node your checkpoint does not contain a valid clip or text encoder model.");
       pipeline::CondEntry e;
       e.context = pipeline::encode_prompt(*clip.tokenizer, *clip.encoder, in.get_string("text"),
                                           clip.clip_skip);
       return {{Value::of("CONDITIONING", pipeline::Conditioning{std::move(e)})}};
     }});

const NodeRegistrar kClipSetLastLayer(
    {.class_name = "CLIPSetLastLayer",
     .display_name = "CLIP Set Last Layer",
     .category = "conditioning",
     .required = {link_input("clip", "CLIP"),
                  int_input("stop_at_clip_layer",
                            {{"default", -1}, {"min", -24}, {"max", -1}, {"step", 1}})},
     .outputs = {{"CLIP", "CLIP"}},
     .run = [](const NodeInputs& in, NodeContext&) -> NodeResult {
       pipeline::ClipHandle clip = in.clip("clip");
       const int64_t layer = in.get_int("stop_at_clip_layer");
       DR_CHECK(layer <= -1 && -layer <= clip.encoder->config().layers, "CLIPSetLastLayer",
                "stop_at_clip_layer ", layer, " is outside this text model's ",
                clip.encoder->config().layers, " layers");
       clip.clip_skip = static_cast<int>(-layer);
       return {{Value::of("CLIP", std::move(clip))}};
     }});

const NodeRegistrar kConditioningCombine(
    {.class_name = "ConditioningCombine",
     .display_name = "Conditioning (Combine)",
     .category = "conditioning",
     .required = {link_input("conditioning_1", "CONDITIONING"),
                  link_input("conditioning_2", "CONDITIONING")},
     .outputs = {{"CONDITIONING", "CONDITIONING"}},
     .run = [](const NodeInputs& in, NodeContext&) -> NodeResult {
       pipeline::Conditioning out = in.conditioning("conditioning_1");
       const pipeline::Conditioning& b = in.conditioning("conditioning_2");
       out.insert(out.end(), b.begin(), b.end());
       return {{Value::of("CONDITIONING", std::move(out))}};
     }});

const NodeRegistrar kConditioningSetArea(
    {.class_name = "ConditioningSetArea",
     .display_name = "Conditioning (Set Area)",
     .category = "conditioning",
     .required =
         {link_input("conditioning", "CONDITIONING"),
          int_input("width", {{"default", 64}, {"min", 64}, {"max", kMaxResolution}, {"step", 8}}),
          int_input("height", {{"default", 64}, {"min", 64}, {"max", kMaxResolution}, {"step", 8}}),
          int_input("x", {{"default", 0}, {"min", 0}, {"max", kMaxResolution}, {"step", 8}}),
          int_input("y", {{"default", 0}, {"min", 0}, {"max", kMaxResolution}, {"step", 8}}),
          float_input("strength", {{"default", 1.0}, {"min", 0.0}, {"max", 10.0}, {"step", 0.01}})},
     .outputs = {{"CONDITIONING", "CONDITIONING"}},
     .run = [](const NodeInputs& in, NodeContext&) -> NodeResult {
       // area = (height // 8, width // 8, y // 8, x // 8) in latent pixels, as ComfyUI
       // stores it for every model.
       pipeline::CondArea area{in.get_int("height") / 8, in.get_int("width") / 8,
                               in.get_int("y") / 8, in.get_int("x") / 8};
       pipeline::Conditioning out = in.conditioning("conditioning");
       for (pipeline::CondEntry& e : out) {
         e.area = area;
         e.area_percent.reset();
         e.strength = static_cast<float>(in.get_float("strength"));
         e.mask_bounds = false;
       }
       return {{Value::of("CONDITIONING", std::move(out))}};
     }});

}  // namespace
}  // namespace darkroom::workflow
