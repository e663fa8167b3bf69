#include "models/unet_runner.h"

#include "backend/device.h"
#include "backend/ops.h"
#include "core/log.h"

namespace darkroom {
namespace {

// src (on the CPU, dst's device, or another one) into dst: same shape and dtype.
void copy_into(const Tensor& src, const Tensor& dst) {
  DR_ASSERT(src.shape() == dst.shape() && src.dtype() == dst.dtype(), "copy of ", src.shape(),
            " into ", dst.shape());
  const bool direct = src.device().type == DeviceType::Cpu || src.device() == dst.device();
  device_for(dst.device()).copy(direct ? src : ops::to_device(src, kCpu), dst);
}

Tensor buffer_like(const Tensor& t, DeviceId device) {
  return t.defined() ? Tensor::empty(t.shape(), t.dtype(), device) : Tensor();
}

// What a graph is specific to: each input's dtype and shape (y may be absent).
std::vector<int64_t> key_of(const Tensor& x, const Tensor& t, const Tensor& context,
                            const Tensor& y) {
  std::vector<int64_t> key;
  for (const Tensor* a : {&x, &t, &context, &y}) {
    if (!a->defined()) {
      key.push_back(-1);
      continue;
    }
    key.push_back(static_cast<int64_t>(a->dtype()));
    key.push_back(a->ndim());
    for (int i = 0; i < a->ndim(); ++i) key.push_back(a->dim(i));
  }
  return key;
}

}  // namespace

UNetRunner::UNetRunner(const UNet& unet, bool use_graphs) : unet_(&unet), use_graphs_(use_graphs) {}

UNetRunner::~UNetRunner() = default;

std::unique_ptr<UNetRunner::Captured> UNetRunner::capture(const Tensor& x, const Tensor& timesteps,
                                                          const Tensor& context,
                                                          const Tensor& y) const {
  const DeviceId device = unet_->device();
  Device& dev = device_for(device);
  auto c = std::make_unique<Captured>();
  c->x = buffer_like(x, device);
  c->t = buffer_like(timesteps, device);
  c->context = buffer_like(context, device);
  c->y = buffer_like(y, device);
  copy_into(x, c->x);
  copy_into(timesteps, c->t);
  copy_into(context, c->context);
  if (y.defined()) copy_into(y, c->y);
  // Warm-up on the very buffers the graph will read: every first-use cost (cuDNN's
  // timed algorithm search, which synchronises; KRSC weight copies; cuBLASLt's
  // choices, keyed by alignment) is paid here, so the captured forward only launches.
  // It also checks the shapes, so a bad call fails here like an eager one.
  {
    const Tensor warm = unet_->forward(c->x, c->t, c->context, c->y);
    c->out = Tensor::empty(warm.shape(), warm.dtype(), device);
  }
  dev.synchronize();
  GraphCapture cap = capture_graph(device, [&] {
    const Tensor eps = unet_->forward(c->x, c->t, c->context, c->y);  // graph memory
    dev.copy(eps, c->out);  // into the fixed output buffer; eps is freed in the graph
  });
  if (!cap.graph) {
    DR_LOG(Warn) << "darkroom: CUDA graph capture of the UNet step failed (" << cap.error
                 << "); running it eagerly";
    return std::make_unique<Captured>();  // no graph, no buffers
  }
  DR_LOG(Info) << "darkroom: UNet step captured into a CUDA graph (x " << x.shape() << ", context "
               << context.shape() << ", " << dtype_name(unet_->dtype()) << ")";
  c->graph = std::move(cap.graph);
  return c;
}

Tensor UNetRunner::forward(const Tensor& x, const Tensor& timesteps, const Tensor& context,
                           const Tensor& y, const ControlResiduals* control) {
  std::lock_guard<std::mutex> lock(mu_);
  last_replayed_ = false;
  const DeviceId device = unet_->device();
  if (!use_graphs_ || device.type != DeviceType::Cuda || control)
    return unet_->forward(x, timesteps, context, y, control);
  DR_CHECK(x.defined() && timesteps.defined() && context.defined(), "unet",
           "x, timesteps and context are required");
  const std::vector<int64_t> key = key_of(x, timesteps, context, y);
  auto it = captured_.find(key);
  if (it == captured_.end()) it = captured_.emplace(key, capture(x, timesteps, context, y)).first;
  Captured& c = *it->second;
  if (!c.graph) return unet_->forward(x, timesteps, context, y);

  copy_into(x, c.x);
  copy_into(timesteps, c.t);
  copy_into(context, c.context);
  if (y.defined()) copy_into(y, c.y);
  try {
    c.graph->replay();
  } catch (const Error& e) {
    DR_LOG(Warn) << "darkroom: replaying the UNet's CUDA graph failed (" << e.what()
                 << "); running it eagerly";
    c = Captured{};
    return unet_->forward(x, timesteps, context, y);
  }
  // A tensor of its own: the next replay overwrites c.out (stream-ordered after this copy).
  Tensor out = Tensor::empty(c.out.shape(), c.out.dtype(), device);
  device_for(device).copy(c.out, out);
  last_replayed_ = true;
  return out;
}

}  // namespace darkroom
