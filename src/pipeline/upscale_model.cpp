// Loading upscale models and spandrel's descriptor call (see upscale_model.h).
#include "pipeline/upscale_model.h"

#include <algorithm>
#include <string_view>
#include <vector>

#include "backend/ops.h"
#include "core/error.h"
#include "pipeline/checkpoint.h"

namespace darkroom::pipeline {
namespace {

const char* kOp = "upscale";

bool starts_with(std::string_view s, std::string_view p) {
  return s.substr(0, p.size()) == p;
}

// The prefix the network's names live under (see the header for the rules).
std::string network_prefix(const CheckpointFile& file) {
  std::string prefix;
  for (const char* wrapper : {"model_state_dict.", "params_ema.", "params-ema.", "params."}) {
    const bool found = std::any_of(file.tensors().begin(), file.tensors().end(),
                                   [&](const auto& t) { return starts_with(t.first, wrapper); });
    if (found) {
      prefix = wrapper;
      break;
    }
  }
  for (const char* common : {"module.", "netG."}) {
    bool all = false;
    for (const auto& [name, shape] : file.tensors()) {
      if (!starts_with(name, prefix)) continue;
      all = starts_with(std::string_view(name).substr(prefix.size()), common);
      if (!all) break;
    }
    if (all) prefix += common;
  }
  return prefix;
}

uint64_t weights_bytes(const Weights& w, DType dtype) {
  uint64_t total = 0;
  const size_t skip = w.prefix().size();
  for (const std::string& name : w.available())
    total += static_cast<uint64_t>(w.shape(std::string_view(name).substr(skip)).numel()) *
             dtype_size(dtype);
  return total;
}

// The smallest size ≥ n that is ≥ minimum and a multiple of `multiple`.
int64_t required_size(int64_t n, int64_t minimum, int64_t multiple) {
  const int64_t m = std::max(n, minimum);
  return (m + multiple - 1) / multiple * multiple;
}

}  // namespace

UpscaleModel load_upscale_model(const std::string& path, DType dtype, DeviceId device) {
  const CheckpointFile file = CheckpointFile::open(path);
  const std::string prefix = network_prefix(file);
  const Weights w = file.weights(prefix, device, dtype);
  UpscaleModel m;
  m.source = path;
  try {
    const RrdbnetConfig config = RrdbnetConfig::detect(w);
    m.net = std::make_shared<const Rrdbnet>(Rrdbnet::load(w, config));
  } catch (const Error& e) {
    fail(kOp, path,
         ": not a supported upscale model (darkroom runs the ESRGAN/RRDBNet family: "
         "ESRGAN, Real-ESRGAN, BSRGAN and models trained on them, such as 4x-UltraSharp): ",
         e.what());
  }
  m.bytes = weights_bytes(w, dtype);
  return m;
}

Tensor upscale_call(const UpscaleModel& model, const Tensor& image) {
  DR_CHECK(image.ndim() == 4 && image.dim(3) == model.image_channels(), kOp, model.source,
           ": expected an image [N, H, W, ", model.image_channels(), "], got ", image.shape());
  const int64_t h = image.dim(1), w = image.dim(2);
  const int64_t ph = required_size(h, model.min_size(), model.multiple_of()) - h;
  const int64_t pw = required_size(w, model.min_size(), model.multiple_of()) - w;
  Tensor x = ops::to_device(image, kCpu);
  if (x.dtype() != DType::F32) x = ops::cast(x, DType::F32);
  if (ph > 0 || pw > 0) x = pad_reflect_replicate(x, ph, pw);
  Tensor y = ops::to_device(model.net->forward(x), kCpu);  // [N, H'·s, W'·s, out] f32
  const int64_t s = model.scale();
  if (ph > 0) y = ops::slice(y, 1, 0, h * s);
  if (pw > 0) y = ops::slice(y, 2, 0, w * s);
  // A fresh tensor: the clamp writes in place.
  std::vector<float> v = y.to_floats();
  for (float& f : v) f = std::clamp(f, 0.0f, 1.0f);
  return Tensor::from_floats(v, y.shape());
}

}  // namespace darkroom::pipeline
