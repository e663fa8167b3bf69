// `darkroom bench sd15` and `darkroom bench sdxl`: a whole text-to-image path at full
// size on random weights (the cost of a network does not depend on its weight values):
// text encoding of a prompt and a negative prompt, UNet steps with CFG (one batch of 2),
// and the VAE decode of one latent, with the peak resident memory, per compute dtype.
//
//   sd15  CLIP-L; UNet with a 768-wide context; 512² by default
//   sdxl  CLIP-L and OpenCLIP bigG (penultimate layers joined on channels, 2048 wide; the
//         pooled bigG output and the six size numbers make label_emb's y [2, 2816]);
//         SDXL UNet; 1024² by default
//
// Each dtype runs in its own child process (this executable, re-run with --dtype), so
// that its peak RSS and thread settings are its own; tools that compare against other
// implementations (scripts/bench-sd15.sh, bench/peers/) measure them the same way.
#pragma once

#include <string>
#include <vector>

namespace darkroom::bench {

// model: "sd15" or "sdxl"; args: --dtype, --size, --steps, --threads, --json.
int run_pipeline_bench(const std::string& model, const std::vector<std::string>& args);

}  // namespace darkroom::bench
