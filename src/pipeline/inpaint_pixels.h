// The pixel-side preparation of ComfyUI's inpainting nodes (nodes.py), shared by
// VAEEncodeForInpaint and InpaintModelConditioning:
//
//   mask    reshape((-1, 1, H', W')), bilinear to the image's H×W
//   crop    image and mask cut (centred, offsets (H % m) // 2, (W % m) // 2) to multiples
//           of m: the VAE's ratio (VAEEncodeForInpaint) or 8 (InpaintModelConditioning)
//   blank   RGB pixels where round(mask) = 1 become 0.5: (p - 0.5)·(1 - round(mask)) + 0.5
//
// and VAEEncodeForInpaint's mask growth.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace darkroom::pipeline {

struct MaskedPixels {
  Tensor pixels;  // CPU f32 [N, h, w, 3]: cropped, masked part set to 0.5
  Tensor mask;    // CPU f32 [M, h, w]: resized and cropped, not rounded
};

// pixels [N, H, W, C≥3] in [0, 1]; mask [M, H', W'] (or [H', W']) with M = N or 1 (the
// mask broadcasts over the images as torch's in-place multiply lets it).
MaskedPixels mask_pixels(const Tensor& pixels, const Tensor& mask, int64_t multiple,
                         const char* op);

// VAEEncodeForInpaint's noise mask: round(mask) convolved with a grow×grow kernel of ones
// (padding ceil((grow - 1) / 2), so even sizes grow one pixel more to the bottom/right),
// clamped to [0, 1], cut back to h×w and rounded; grow 0 only rounds. [M, h, w] → [M, h, w].
Tensor grow_mask(const Tensor& mask, int grow);

}  // namespace darkroom::pipeline
