// Inpainting nodes (nodes.py): VAEEncodeForInpaint (the masked image's latent with a grown
// noise mask, for any model) and InpaintModelConditioning (the mask and masked image's
// latent on the conditioning, for inpainting models; see pipeline/inpaint.h for how the
// sampler feeds them to a 9-channel UNet). SetLatentNoiseMask is in latent_nodes.cpp.
#include "pipeline/inpaint_pixels.h"
#include "pipeline/vae_encode.h"
#include "workflow/node.h"

namespace darkroom::workflow {
namespace {

const NodeRegistrar kVaeEncodeForInpaint(
    {.class_name = "VAEEncodeForInpaint",
     .display_name = "VAE Encode (for Inpainting)",
     .category = "latent/inpaint",
     .required = {link_input("pixels", "IMAGE"), link_input("vae", "VAE"),
                  link_input("mask", "MASK"),
                  int_input("grow_mask_by",
                            {{"default", 6}, {"min", 0}, {"max", 64}, {"step", 1}})},
     .outputs = {{"LATENT", "LATENT"}},
     .run = [](const NodeInputs& in, NodeContext& ctx) -> NodeResult {
       const pipeline::VaeHandle& vae = in.vae("vae");
       // Cropped to the VAE's ratio; the masked part gray (0.5) before encoding.
       const pipeline::MaskedPixels mp = pipeline::mask_pixels(in.image("pixels"), in.mask("mask"),
                                                               vae.scale(), "VAEEncodeForInpaint");
       pipeline::Latent out;
       out.samples = pipeline::vae_encode(vae, mp.pixels, "VAEEncodeForInpaint",
                                          [&] { ctx.check_interrupt(); });
       out.noise_mask = pipeline::grow_mask(mp.mask, static_cast<int>(in.get_int("grow_mask_by")));
       return {{Value::of("LATENT", std::move(out))}};
     }});

const NodeRegistrar kInpaintModelConditioning(
    {.class_name = "InpaintModelConditioning",
     .display_name = "InpaintModelConditioning",
     .category = "conditioning/inpaint",
     .required = {link_input("positive", "CONDITIONING"), link_input("negative", "CONDITIONING"),
                  link_input("vae", "VAE"), link_input("pixels", "IMAGE"),
                  link_input("mask", "MASK"),
                  bool_input("noise_mask",
                             {{"default", true},
                              {"tooltip",
                               "Add a noise mask to the latent so sampling will only happen "
                               "within the mask. Might improve results or completely break "
                               "things depending on the model."}})},
     .outputs = {{"CONDITIONING", "positive"}, {"CONDITIONING", "negative"}, {"LATENT", "latent"}},
     .run = [](const NodeInputs& in, NodeContext& ctx) -> NodeResult {
       const pipeline::VaeHandle& vae = in.vae("vae");
       const pipeline::Image& pixels = in.image("pixels");
       // The masked copy is cut to multiples of 8 (nodes.py's fixed 8); the latent to sample
       // is the whole image's (cut by the VAE to its own ratio).
       const pipeline::MaskedPixels mp =
           pipeline::mask_pixels(pixels, in.mask("mask"), 8, "InpaintModelConditioning");
       const auto check = [&] { ctx.check_interrupt(); };
       const Tensor concat_latent =
           pipeline::vae_encode(vae, mp.pixels, "InpaintModelConditioning", check);
       pipeline::Latent latent;
       latent.samples = pipeline::vae_encode(vae, pixels, "InpaintModelConditioning", check);
       if (in.get_bool("noise_mask")) latent.noise_mask = mp.mask;
       std::vector<Value> out;
       for (const char* name : {"positive", "negative"}) {
         pipeline::Conditioning c = in.conditioning(name);
         for (pipeline::CondEntry& e : c) {
           e.concat_latent_image = concat_latent;
           e.concat_mask = mp.mask;
         }
         out.push_back(Value::of("CONDITIONING", std::move(c)));
       }
       out.push_back(Value::of("LATENT", std::move(latent)));
       return {std::move(out)};
     }});

}  // namespace
}  // namespace darkroom::workflow
