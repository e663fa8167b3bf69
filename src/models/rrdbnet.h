// RRDBNet, the generator of ESRGAN (Wang et al. 2018) and Real-ESRGAN, as spandrel (what
// ComfyUI's upscale nodes run) builds it:
//
//   [pixel-unshuffle by r]  Real-ESRGAN x2plus (r 2) and x1 (r 4) models only, after
//                           reflect-padding H and W to multiples of r (bottom/right)
//   conv_first              3×3, in → nf
//   body                    `blocks` RRDBs, each 3 residual dense blocks (RDB):
//                             x1..x4 = lrelu(conv_k(cat(x, x1, .., x_{k-1})))  (gc wide)
//                             x5 = conv5(cat(x, x1..x4)) (nf wide);  RDB(x) = 0.2·x5 + x
//                           RRDB(x) = 0.2·RDB3(RDB2(RDB1(x))) + x
//   conv_body               3×3, added to conv_first's output (the long skip)
//   upsampling              per ×2: nearest 2× → conv_up → lrelu
//   conv_hr → lrelu → conv_last (nf → out)
//   [crop]                  to H·scale × W·scale when padded
//
// lrelu is LeakyReLU(0.2). Three key layouts name the same tensors:
//   BasicSR (Real-ESRGAN)  conv_first, body.N.rdbK.convJ, conv_body, conv_up1/2, conv_hr,
//                          conv_last
//   ESRGAN (old arch,      model.0, model.1.sub.N.RDBK.convJ.0, model.1.sub.<blocks>,
//   4x-UltraSharp & co.)   model.3, model.6 (one per ×2 at 3·u), model.<3n+2>, model.<3n+4>
//   BSRGAN / RealSR        conv_first, RRDB_trunk.N.RDBK.convJ, trunk_conv, upconv1/2,
//                          HRconv, conv_last
// Everything else is read from the shapes (as spandrel does): features nf and the input
// width from conv_first, growth gc from the first dense conv, blocks and upsamplings by
// counting, and the unshuffle factor from in = out·r² (r = 2 or 4). Real-ESRGAN's ×2 and
// ×1 models keep the ×4 trunk (two upsamplings) behind the unshuffle.
//
// Activations NHWC: x [N, H, W, C].
#pragma once

#include <string>
#include <vector>

#include "models/layers.h"
#include "models/weights.h"

namespace darkroom {

enum class RrdbnetLayout { BasicSr, Esrgan, Bsrgan };

struct RrdbnetConfig {
  RrdbnetLayout layout = RrdbnetLayout::BasicSr;
  int in_channels = 3;   // conv_first's input: image channels · unshuffle²
  int out_channels = 3;  // conv_last's output
  int features = 64;     // nf
  int growth = 32;       // gc
  int blocks = 23;       // RRDBs
  int upsamplings = 2;   // nearest ×2 + conv each
  int unshuffle = 1;     // pixel-unshuffle factor before conv_first: 1, 2 or 4

  // From the tensor names and shapes under `w`'s prefix; darkroom::Error "[rrdbnet] ..."
  // when they are not an RRDBNet's (ESRGAN+'s extra 1×1 convs are refused by name).
  static RrdbnetConfig detect(const Weights& w);

  // Output pixels per input pixel: 2^upsamplings / unshuffle (4 for x4plus, 2 for x2plus).
  int scale() const { return (1 << upsamplings) / unshuffle; }
  // Channels of the image it takes.
  int image_channels() const { return in_channels / (unshuffle * unshuffle); }
  // The file's name of a layer ("conv_first", "model.1.sub.0.RDB1.conv1.0", ...), without
  // ".weight".
  std::string first_name() const;
  std::string dense_name(int block, int rdb, int conv) const;  // all 0-based
  std::string body_conv_name() const;
  std::string up_name(int u) const;  // 0-based
  std::string hr_name() const;
  std::string last_name() const;
};

class Rrdbnet {
 public:
  // `w` holds the network under its own prefix (e.g. "" or "params_ema.").
  static Rrdbnet load(const Weights& w, const RrdbnetConfig& config);

  // x [N, H, W, image_channels] → [N, H·scale, W·scale, out_channels], not clamped.
  // x is cast to the weights' dtype and device; the output has x's dtype, on the
  // weights' device. H and W ≥ 2 for unshuffle models (reflect padding needs a neighbour).
  Tensor forward(const Tensor& x) const;

  const RrdbnetConfig& config() const { return config_; }
  DType dtype() const { return conv_first_.weight.dtype(); }
  DeviceId device() const { return conv_first_.weight.device(); }

 private:
  struct DenseBlock {
    layers::Conv2d conv[5];
  };
  struct Rrdb {
    DenseBlock rdb[3];
  };
  Tensor dense_block(const DenseBlock& b, const Tensor& x) const;
  Tensor rrdb(const Rrdb& b, const Tensor& x) const;
  Tensor lrelu(const Tensor& x) const;

  RrdbnetConfig config_;
  layers::Conv2d conv_first_;
  std::vector<Rrdb> body_;
  layers::Conv2d conv_body_;
  std::vector<layers::Conv2d> up_;
  layers::Conv2d conv_hr_, conv_last_;
  Tensor residual_scale_;  // [1] 0.2 in the weights' dtype and device
};

// Pads x [N, H, W, C] at the bottom and right by pad_h rows and pad_w columns: mirrored
// without repeating the edge (torch's "reflect") as far as the image allows (size - 1),
// then repeating the last row/column (torch's "replicate") — spandrel's pad_tensor.
Tensor pad_reflect_replicate(const Tensor& x, int64_t pad_h, int64_t pad_w);

// torch.nn.functional.pixel_unshuffle in NHWC: x [N, H, W, C] → [N, H/r, W/r, C·r·r], the
// output channel c·r² + i·r + j holding x[.., y·r + i, x·r + j, c].
Tensor pixel_unshuffle(const Tensor& x, int r);

}  // namespace darkroom
