#include "workflow/resource_limits.h"

namespace darkroom::workflow {

std::string over_pixel_limit(const Tensor& t, bool latent, const ResourceLimits& limits) {
  if (limits.max_pixels == 0 || !t.defined() || t.ndim() != 4) return "";
  const uint64_t pixels = static_cast<uint64_t>(t.dim(0)) * static_cast<uint64_t>(t.dim(1)) *
                          static_cast<uint64_t>(t.dim(2)) * (latent ? 64u : 1u);
  if (pixels <= limits.max_pixels) return "";
  return std::string(latent ? "a latent" : "an image") + " of " + std::to_string(t.dim(0)) + " × " +
         std::to_string(t.dim(1) * (latent ? 8 : 1)) + " × " +
         std::to_string(t.dim(2) * (latent ? 8 : 1)) + " (" + std::to_string(pixels) +
         " pixels) is over this server's limit of " + std::to_string(limits.max_pixels) +
         " pixels (serve --max-pixels)";
}

}  // namespace darkroom::workflow
