// `darkroom bench lora`: what switching between two stacked-LoRA sets costs next to a full
// checkpoint load, on a full-size SD 1.5 checkpoint with random weights (f16 on disk, as
// released checkpoints are) and random kohya-format LoRA files that patch what kohya's
// sd-scripts train by default: every attention projection, feed-forward and proj_in/out
// linear of the UNet's transformers and every attention / MLP linear of the CLIP text
// encoder. Set A = a rank-32 LoRA on all of those + a rank-16 one on the UNet attention;
// set B = the same shapes drawn with other seeds.
//
// Timed in one process, the page cache warm for every file: load_checkpoint (the whole
// checkpoint: read, cast, build), and with the base loaded, with_loras for the model and
// the clip (merge the patched tensors into copies, rebuild sharing the rest) — A, then B,
// then A again (files already read), and B with its files read fresh.
#pragma once

#include <string>
#include <vector>

namespace darkroom::bench {

// args: --dtype f32|bf16, --dir DIR (where the files are written and reused; default a
// directory under /tmp), --rank N (32), --repeat N (3), --json.
int run_lora_bench(const std::vector<std::string>& args);

}  // namespace darkroom::bench
