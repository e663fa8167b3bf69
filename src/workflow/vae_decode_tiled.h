// Tiled VAE decoding as ComfyUI's VAE.decode_tiled_ (comfy/sd.py) with
// comfy.utils.tiled_scale_multidim's blending, restated:
//
//   three tilings of the latent — (tile_y·2 × tile_x/2), (tile_y/2 × tile_x·2),
//   (tile_y × tile_x) — each decoded tile by tile; tiles start every (tile − overlap)
//   latent pixels (the last one pulled back to end at the edge), each decoded tile is
//   weighted by a mask that ramps (t + 1)/feather over `feather` = overlap·scale pixels at
//   all four borders, and the weighted sum is divided by the summed weights. The three
//   results are averaged and mapped from [-1, 1] to [0, 1] (clamped).
//
// A latent that fits in one tile is decoded whole, so such a decode equals VAEDecode's.
// Memory: one tile's activations at a time, instead of the whole image's.
#pragma once

#include <cstdint>
#include <functional>

#include "core/tensor.h"
#include "models/vae.h"

namespace darkroom::workflow {

struct TiledDecodeOptions {
  int64_t tile_x = 64;  // latent pixels
  int64_t tile_y = 64;
  int64_t overlap = 8;  // latent pixels
  // Called after each decoded tile (value, max) for the progress bar; may throw to stop.
  std::function<void(int64_t, int64_t)> on_tile;
};

// z [N, h, w, C] (the VAE's own latent) → image [N, h·s, w·s, 3] in [0, 1], CPU f32.
Tensor vae_decode_tiled(const Vae& vae, const Tensor& z, const TiledDecodeOptions& options);

}  // namespace darkroom::workflow
