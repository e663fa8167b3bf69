// Latent nodes (nodes.py): EmptyLatentImage, SetLatentNoiseMask, VAEDecode, VAEEncode.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "backend/ops.h"
#include "pipeline/vae_encode.h"
#include "workflow/node.h"

namespace darkroom::workflow {
namespace {

constexpr int64_t kMaxResolution = 16384;  // nodes.py MAX_RESOLUTION

const NodeRegistrar kEmptyLatentImage(
    {.class_name = "EmptyLatentImage",
     .display_name = "Empty Latent Image",
     .category = "latent",
     .description = "Create a new batch of empty latent images to be denoised via sampling.",
     .required = {int_input("width", {{"default", 512},
                                      {"min", 16},
                                      {"max", kMaxResolution},
                                      {"step", 8},
                                      {"tooltip", "The width of the latent images in pixels."}}),
                  int_input("height", {{"default", 512},
                                       {"min", 16},
                                       {"max", kMaxResolution},
                                       {"step", 8},
                                       {"tooltip", "The height of the latent images in pixels."}}),
                  int_input("batch_size",
                            {{"default", 1},
                             {"min", 1},
                             {"max", 4096},
                             {"tooltip", "The number of latent images in the batch."}})},
     .outputs = {{"LATENT", "LATENT", false, "The empty latent image batch."}},
     .run = [](const NodeInputs& in, NodeContext&) -> NodeResult {
       // zeros [batch, 4, height // 8, width // 8] in ComfyUI; NHWC here.
       const int64_t n = in.get_int("batch_size"), h = in.get_int("height") / 8,
                     w = in.get_int("width") / 8;
       pipeline::Latent out;
       out.samples = Tensor::zeros({n, h, w, 4}, DType::F32);
       return {{Value::of("LATENT", std::move(out))}};
     }});

const NodeRegistrar kSetLatentNoiseMask(
    {.class_name = "SetLatentNoiseMask",
     .display_name = "Set Latent Noise Mask",
     .category = "latent/inpaint",
     .required = {link_input("samples", "LATENT"), link_input("mask", "MASK")},
     .outputs = {{"LATENT", "LATENT"}},
     .run = [](const NodeInputs& in, NodeContext&) -> NodeResult {
       pipeline::Latent out = in.latent("samples");
       const Tensor& mask = in.mask("mask");
       DR_CHECK(mask.ndim() >= 2, "SetLatentNoiseMask", "expected a mask [N, H, W], got ",
                mask.shape().str());
       // mask.reshape((-1, 1, H, W)); kept as [M, H, W].
       const int64_t h = mask.dim(mask.ndim() - 2), w = mask.dim(mask.ndim() - 1);
       out.noise_mask = Tensor::from_floats(mask.to_floats(), {mask.numel() / (h * w), h, w});
       return {{Value::of("LATENT", std::move(out))}};
     }});

const NodeRegistrar kVaeDecode(
    {.class_name = "VAEDecode",
     .display_name = "VAE Decode",
     .category = "latent",
     .description = "Decodes latent images back into pixel space images.",
     .required = {link_input("samples", "LATENT", {{"tooltip", "The latent to be decoded."}}),
                  link_input("vae", "VAE",
                             {{"tooltip", "The VAE model used for decoding the latent."}})},
     .outputs = {{"IMAGE", "IMAGE", false, "The decoded image."}},
     .run = [](const NodeInputs& in, NodeContext& ctx) -> NodeResult {
       const pipeline::VaeHandle& vae = in.vae("vae");
       const Tensor& z = in.latent("samples").samples;
       DR_CHECK(z.ndim() == 4 && z.dim(3) == vae.vae->config().z_channels, "VAEDecode",
                "the latent ", z.shape().str(), " does not fit this VAE's ",
                vae.vae->config().z_channels, " latent channels");
       ctx.check_interrupt();
       // [N, H, W, 3] in [-1, 1], back on the CPU when the VAE runs on a CUDA device
       const Tensor img = ops::to_device(vae.vae->decode(z), kCpu);
       std::vector<float> pixels = img.to_floats();
       // process_output: clamp((x + 1) / 2, 0, 1) (NaN passes as torch.clamp lets it).
       for (float& e : pixels) e = std::isnan(e) ? e : std::clamp((e + 1.0f) / 2.0f, 0.0f, 1.0f);
       const Shape shape = img.shape();
       return {{Value::of("IMAGE", Tensor::from_floats(pixels, shape))}};
     }});

const NodeRegistrar kVaeEncode({.class_name = "VAEEncode",
                                .display_name = "VAE Encode",
                                .category = "latent",
                                .required = {link_input("pixels", "IMAGE"),
                                             link_input("vae", "VAE")},
                                .outputs = {{"LATENT", "LATENT"}},
                                .run = [](const NodeInputs& in, NodeContext& ctx) -> NodeResult {
                                  pipeline::Latent latent;
                                  latent.samples = pipeline::vae_encode(
                                      in.vae("vae"), in.image("pixels"), "VAEEncode",
                                      [&] { ctx.check_interrupt(); });
                                  return {{Value::of("LATENT", std::move(latent))}};
                                }});

}  // namespace
}  // namespace darkroom::workflow
