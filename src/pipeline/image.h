// The pixel values that flow between ComfyUI nodes. Both are plain CPU f32 tensors, laid
// out as ComfyUI's are (so the NHWC convention of darkroom needs no permute):
//
//   IMAGE  [N, H, W, 3] (or 4 with alpha), values in [0, 1]
//   MASK   [N, H, W], values in [0, 1] (1 = the masked, i.e. affected, part)
#pragma once

#include "core/tensor.h"

namespace darkroom::pipeline {

// IMAGE: CPU f32 [N, H, W, C], C = 3 (RGB) or 4 (RGBA), in [0, 1].
using Image = Tensor;
// MASK: CPU f32 [N, H, W] in [0, 1].
using Mask = Tensor;

}  // namespace darkroom::pipeline
