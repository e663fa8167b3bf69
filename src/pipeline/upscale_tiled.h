// Tiled upscaling, as ComfyUI's ImageUpscaleWithModel runs an upscale model: through
// comfy.utils.tiled_scale (tiled_scale_multidim in 2-D), restated:
//
//   per image of the batch: an image that fits in one tile goes through whole; otherwise
//   tiles start every (tile − overlap) pixels along each axis (range(0, n − overlap,
//   tile − overlap), each pulled back to at most n − overlap; a tile is at most `tile`
//   pixels and ends at the edge), each tile's output is weighted by a mask ramping
//   (t + 1)/feather over feather = round(overlap·scale) pixels at all four borders (no
//   ramp along an axis the feather does not fit in), and the weighted sum is divided by
//   the summed weights.
//
// ImageUpscaleWithModel then clamps to [0, 1]. ComfyUI starts at tile 512, overlap 32 and
// halves the tile on out-of-memory (down to 128); here the tile is halved beforehand while
// an estimate of one tile's activations exceeds a budget, so any image size runs in
// bounded memory (one tile's activations plus the output).
#pragma once

#include <cstdint>
#include <functional>

#include "core/tensor.h"
#include "pipeline/upscale_model.h"

namespace darkroom::pipeline {

struct TiledScaleOptions {
  int64_t tile = 512;  // input pixels, both axes
  int64_t overlap = 32;
  // Called after each tile (done, total) for the progress bar; may throw to stop.
  std::function<void(int64_t, int64_t)> on_tile;
};

// comfy.utils.tiled_scale: images [N, H, W, C] CPU f32 → [N, H·scale, W·scale,
// out_channels] CPU f32, where fn maps one tile [1, h, w, C] to [1, h·scale, w·scale,
// out_channels] (CPU f32).
Tensor tiled_scale(const Tensor& images, int64_t scale, int64_t out_channels,
                   const std::function<Tensor(const Tensor&)>& fn,
                   const TiledScaleOptions& options);
// Tiles of tiled_scale for an H × W image.
int64_t tiled_scale_steps(int64_t height, int64_t width, int64_t tile, int64_t overlap);

struct UpscaleOptions {
  int64_t tile = 512;  // ComfyUI's start
  int64_t overlap = 32;
  int64_t min_tile = 128;  // ComfyUI's floor
  // Budget for one tile's activations (estimate_tile_bytes); the tile halves until it
  // fits or reaches min_tile. The default keeps ComfyUI's 512 for 64-wide ×4 models in
  // f32.
  uint64_t tile_budget_bytes = uint64_t{4} << 30;
  std::function<void(int64_t, int64_t)> on_tile;
};

// About the peak activation bytes of one tile × tile call of `model` in `dtype`: three
// feature maps live at the output resolution, or the dense block's concatenations at the
// input resolution, whichever is larger.
uint64_t estimate_tile_bytes(const UpscaleModel& model, int64_t tile, DType dtype);
// The tile ImageUpscaleWithModel will use under `options`.
int64_t choose_tile(const UpscaleModel& model, DType dtype, const UpscaleOptions& options);

// ImageUpscaleWithModel: image [N, H, W, C] in [0, 1] → CPU f32 [N, H·s, W·s, C] in [0, 1].
Tensor upscale_image(const UpscaleModel& model, const Tensor& image, const UpscaleOptions& options);

}  // namespace darkroom::pipeline
