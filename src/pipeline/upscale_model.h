// UPSCALE_MODEL: an image-to-image super-resolution network loaded from a file, as
// ComfyUI's UpscaleModelLoader loads it through spandrel, and spandrel's
// ImageModelDescriptor call that runs it on one image (or tile).
//
// Files: .safetensors or torch.save (.pth, .pt, .ckpt), told apart by their bytes
// (CheckpointFile). The network is found under the first of these that the file holds,
// as spandrel's canonicalize_state_dict unwraps it: "state_dict." (CheckpointFile drops
// it), "model_state_dict.", "params_ema." (Real-ESRGAN's release files), "params-ema.",
// "params."; then a "module." or "netG." prefix that every name carries is dropped.
// spandrel's "model." / "net." unwrapping is not done: once the nesting is flattened into
// names it cannot be told from the old ESRGAN layout's own "model.N" names.
//
// Architectures: the ESRGAN / RRDBNet family (models/rrdbnet.h); others are refused with
// "[upscale] <path>: ...".
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/device_id.h"
#include "core/dtype.h"
#include "core/tensor.h"
#include "models/rrdbnet.h"

namespace darkroom::pipeline {

struct UpscaleModel {
  std::shared_ptr<const Rrdbnet> net;
  std::string source;  // the file, for messages
  uint64_t bytes = 0;  // the weights' size in their compute dtype (model cache budget)

  int scale() const { return net->config().scale(); }
  int image_channels() const { return net->config().image_channels(); }
  int out_channels() const { return net->config().out_channels; }
  // spandrel's SizeRequirements for ESRGAN: at least 2 pixels a side, and for pixel-
  // unshuffle models a multiple of 4 (so at least 4).
  int64_t min_size() const { return multiple_of() > 1 ? 4 : 2; }
  int64_t multiple_of() const { return net->config().unshuffle > 1 ? 4 : 1; }
};

// Reads, detects and uploads the network in `dtype` on `device`.
UpscaleModel load_upscale_model(const std::string& path, DType dtype, DeviceId device = kCpu);

// ImageModelDescriptor.__call__: image [N, H, W, C] (any device/dtype, values in [0, 1])
// padded at the bottom/right to the size requirements (reflect, then replicate), run,
// clamped to [0, 1] and cropped → CPU f32 [N, H·scale, W·scale, out].
Tensor upscale_call(const UpscaleModel& model, const Tensor& image);

}  // namespace darkroom::pipeline
