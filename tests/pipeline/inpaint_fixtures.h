// The models of tools/fixtures/inpaint.py's golden runs, assembled into loadable files: the
// tiny SD 1.5 UNet (data/models/sd15_tiny/unet.safetensors), optionally with its conv_in
// widened to 9 channels (data/inpaint/unet9.safetensors: the 9-channel inpainting UNet),
// pipeline_golden.py's 32-wide CLIP (data/pipeline/clip32.safetensors, its token table
// redrawn: torch.randn after torch.manual_seed(20240611)) and the tiny VAE.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "io/safetensors.h"
#include "io/safetensors_writer.h"
#include "sampling/torch_rng.h"

namespace darkroom::pipeline::test {

inline std::string inpaint_fixture(const std::string& file) {
  return std::string(DARKROOM_TEST_DATA) + "/inpaint/" + file;
}

// The 9-channel conv_in, under `name` (ldm "model.diffusion_model.input_blocks.0.0.weight"
// or diffusers "conv_in.weight").
inline Tensor inpaint_conv_in(const std::string& name) {
  static const SafetensorsFile f = SafetensorsFile::open(inpaint_fixture("unet9.safetensors"));
  return f.tensor(name);
}

// A single-file SD 1.x checkpoint; `inpainting`: the 9-channel UNet, else the plain one.
inline void write_inpaint_checkpoint(const std::string& path, bool inpainting) {
  const std::string data = DARKROOM_TEST_DATA;
  const std::string conv_in = "model.diffusion_model.input_blocks.0.0.weight";
  std::vector<std::pair<std::string, Tensor>> tensors;
  const SafetensorsFile unet = SafetensorsFile::open(data + "/models/sd15_tiny/unet.safetensors");
  for (const TensorInfo& t : unet.tensors())
    tensors.emplace_back(
        t.name, inpainting && t.name == conv_in ? inpaint_conv_in(conv_in) : unet.tensor(t.name));
  const SafetensorsFile vae =
      SafetensorsFile::open(data + "/models/sd15_tiny/clip_vae.safetensors");
  for (const TensorInfo& t : vae.tensors())
    if (t.name.starts_with("first_stage_model.")) tensors.emplace_back(t.name, vae.tensor(t.name));
  const SafetensorsFile clip = SafetensorsFile::open(data + "/pipeline/clip32.safetensors");
  for (const TensorInfo& t : clip.tensors()) tensors.emplace_back(t.name, clip.tensor(t.name));
  sampling::TorchGenerator gen(20240611);  // clip32.safetensors' token_table metadata
  tensors.emplace_back("cond_stage_model.transformer.text_model.embeddings.token_embedding.weight",
                       gen.randn({49408, 32}));
  write_safetensors(path, tensors,
                    {{"darkroom.family", "sd15"},
                     {"darkroom.unet.groups", "4"},
                     {"darkroom.unet.num_heads", "4"},
                     {"darkroom.vae.groups", "8"},
                     {"darkroom.clip.heads", "2"}});
}

}  // namespace darkroom::pipeline::test
