// Text conditioning (nodes.py): CLIPTextEncode, CLIPSetLastLayer, ConditioningCombine,
// ConditioningSetArea; comfy_extras/nodes_clip_sdxl.py: CLIPTextEncodeSDXL,
// CLIPTextEncodeSDXLRefiner. Every family's CLIP encodes through pipeline/clip_encode.h.
#include "pipeline/clip_encode.h"
#include "workflow/node.h"

namespace darkroom::workflow {
namespace {

// The node's CLIP with the server's embeddings folders attached, so that "embedding:name"
// finds its file (ComfyUI gives a checkpoint's CLIP its embedding_directory on load).
pipeline::ClipHandle clip_of(const NodeInputs& in, const NodeContext& ctx) {
  const auto it = ctx.paths.model_folders.find("embeddings");
  if (it == ctx.paths.model_folders.end()) return in.clip("clip");
  return pipeline::with_embedding_folders(in.clip("clip"), it->second);
}

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
     .run = [](const NodeInputs& in, NodeContext& ctx) -> NodeResult {
       pipeline::CondEntry e = pipeline::encode_text(clip_of(in, ctx), in.get_string("text"));
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
       pipeline::ClipHandle clip = in.unresolved_clip("clip");  // a clone sharing the encoders
       const int64_t layer = in.get_int("stop_at_clip_layer");
       DR_CHECK(layer <= -1 && -layer <= clip.layers(), "CLIPSetLastLayer", "stop_at_clip_layer ",
                layer, " is outside this text model's ", clip.layers(), " layers");
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

const NodeRegistrar kClipTextEncodeSdxl(
    {.class_name = "CLIPTextEncodeSDXL",
     .display_name = "CLIPTextEncodeSDXL",
     .category = "advanced/conditioning",
     .required = {link_input("clip", "CLIP"),
                  int_input("width", {{"default", 1024}, {"min", 0}, {"max", kMaxResolution}}),
                  int_input("height", {{"default", 1024}, {"min", 0}, {"max", kMaxResolution}}),
                  int_input("crop_w", {{"default", 0}, {"min", 0}, {"max", kMaxResolution}}),
                  int_input("crop_h", {{"default", 0}, {"min", 0}, {"max", kMaxResolution}}),
                  int_input("target_width",
                            {{"default", 1024}, {"min", 0}, {"max", kMaxResolution}}),
                  int_input("target_height",
                            {{"default", 1024}, {"min", 0}, {"max", kMaxResolution}}),
                  string_input("text_g", {{"multiline", true}, {"dynamicPrompts", true}}),
                  string_input("text_l", {{"multiline", true}, {"dynamicPrompts", true}})},
     .outputs = {{"CONDITIONING", "CONDITIONING"}},
     .python_module = "comfy_extras.nodes_clip_sdxl",
     .run = [](const NodeInputs& in, NodeContext& ctx) -> NodeResult {
       pipeline::CondEntry e = pipeline::encode_text(clip_of(in, ctx), in.get_string("text_g"),
                                                     in.get_string("text_l"));
       e.size.width = static_cast<double>(in.get_int("width"));
       e.size.height = static_cast<double>(in.get_int("height"));
       e.size.crop_w = static_cast<double>(in.get_int("crop_w"));
       e.size.crop_h = static_cast<double>(in.get_int("crop_h"));
       e.size.target_width = static_cast<double>(in.get_int("target_width"));
       e.size.target_height = static_cast<double>(in.get_int("target_height"));
       return {{Value::of("CONDITIONING", pipeline::Conditioning{std::move(e)})}};
     }});

const NodeRegistrar kClipTextEncodeSdxlRefiner(
    {.class_name = "CLIPTextEncodeSDXLRefiner",
     .display_name = "CLIPTextEncodeSDXLRefiner",
     .category = "advanced/conditioning",
     .required = {float_input("ascore",
                              {{"default", 6.0}, {"min", 0.0}, {"max", 1000.0}, {"step", 0.01}}),
                  int_input("width", {{"default", 1024}, {"min", 0}, {"max", kMaxResolution}}),
                  int_input("height", {{"default", 1024}, {"min", 0}, {"max", kMaxResolution}}),
                  string_input("text", {{"multiline", true}, {"dynamicPrompts", true}}),
                  link_input("clip", "CLIP")},
     .outputs = {{"CONDITIONING", "CONDITIONING"}},
     .python_module = "comfy_extras.nodes_clip_sdxl",
     .run = [](const NodeInputs& in, NodeContext& ctx) -> NodeResult {
       // The tokens of `text` for every encoder of the CLIP it is given (ComfyUI's
       // clip.tokenize), with the refiner's numbers attached.
       pipeline::CondEntry e = pipeline::encode_text(clip_of(in, ctx), in.get_string("text"));
       e.size.aesthetic_score = in.get_float("ascore");
       e.size.width = static_cast<double>(in.get_int("width"));
       e.size.height = static_cast<double>(in.get_int("height"));
       return {{Value::of("CONDITIONING", pipeline::Conditioning{std::move(e)})}};
     }});

}  // namespace
}  // namespace darkroom::workflow
