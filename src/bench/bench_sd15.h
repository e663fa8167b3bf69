// `darkroom bench sd15`: the whole SD 1.5 text-to-image path at full size on random
// weights (the cost of a network does not depend on its weight values): CLIP-L text
// encoding of a prompt and a negative prompt, UNet steps with CFG (one batch of 2), and
// the VAE decode of one latent, with the peak resident memory, per compute dtype.
//
// Each dtype runs in its own child process (this executable, re-run with --dtype), so
// that its peak RSS and thread settings are its own; tools that compare against other
// implementations (scripts/bench-sd15.sh, bench/peers/) measure them the same way.
#pragma once

#include <string>
#include <vector>

namespace darkroom::bench {

int run_sd15(const std::vector<std::string>& args);

}  // namespace darkroom::bench
