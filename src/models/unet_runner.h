// UNetRunner: UNet::forward for the sampler's repeated calls at one shape. On a CUDA
// device with graphs on, the first call at a new shape runs the UNet once eagerly on
// fixed input buffers (cuDNN's algorithm search, weight layouts and cuBLASLt choices
// are made then), captures a second forward into a CUDA graph (backend/device_graph.h)
// and replays it; later calls at that shape copy their inputs into the buffers and
// replay. A graph is kept per (x shape, context shape, y shape, dtypes): one per
// image size and batch, for this model. If capture fails, a log line says why and that
// shape runs eagerly from then on. Elsewhere (CPU, graphs off) it is UNet::forward.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "backend/device_graph.h"
#include "models/unet.h"

namespace darkroom {

class UNetRunner {
 public:
  // `unet` must outlive the runner.
  UNetRunner(const UNet& unet, bool use_graphs);
  ~UNetRunner();
  UNetRunner(const UNetRunner&) = delete;
  UNetRunner& operator=(const UNetRunner&) = delete;

  // As UNet::forward (inputs on the CPU or the UNet's device; timesteps f32): eps
  // [B, H, W, out] in x's dtype on the UNet's device, a tensor of its own. With ControlNet
  // residuals the step runs eagerly (their values change every step and are not part of
  // the captured buffers).
  Tensor forward(const Tensor& x, const Tensor& timesteps, const Tensor& context,
                 const Tensor& y = {}, const ControlResiduals* control = nullptr);

  bool graphs_enabled() const { return use_graphs_; }
  // How the last forward ran: true when it replayed a CUDA graph.
  bool last_replayed() const { return last_replayed_; }

 private:
  // One captured shape: the graph's fixed input and output buffers, on the device.
  struct Captured {
    Tensor x, t, context, y, out;
    std::unique_ptr<DeviceGraph> graph;  // null: capture failed, run eagerly
  };
  std::unique_ptr<Captured> capture(const Tensor& x, const Tensor& timesteps, const Tensor& context,
                                    const Tensor& y) const;

  const UNet* unet_;
  bool use_graphs_;
  bool last_replayed_ = false;
  std::mutex mu_;
  std::map<std::vector<int64_t>, std::unique_ptr<Captured>> captured_;
};

}  // namespace darkroom
