// RRDBNet (ESRGAN / Real-ESRGAN): configuration from the weights, loading under the three
// key layouts, and the forward pass (see rrdbnet.h).
#include "models/rrdbnet.h"

#include <algorithm>
#include <charconv>
#include <string_view>
#include <utility>
#include <vector>

#include "backend/ops.h"
#include "core/error.h"

namespace darkroom {
namespace {

const char* kOp = "rrdbnet";
constexpr float kSlope = 0.2f;          // LeakyReLU's negative slope throughout
constexpr float kResidualScale = 0.2f;  // RDB and RRDB residual scaling

std::string num(int i) {
  return std::to_string(i);
}

// 1 + the largest N of the names "model.N.*" (spandrel's get_seq_len(state, "model")).
int esrgan_sequence_length(const Weights& w) {
  const std::string head = w.prefix() + "model.";
  int len = 0;
  for (const std::string& name : w.available()) {
    if (name.compare(0, head.size(), head) != 0) continue;
    const std::string_view rest = std::string_view(name).substr(head.size());
    int index = 0;
    const auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), index);
    if (ec == std::errc() && end != rest.data() && *end == '.') len = std::max(len, index + 1);
  }
  return len;
}

}  // namespace

// ---- names --------------------------------------------------------------------------------

std::string RrdbnetConfig::first_name() const {
  return layout == RrdbnetLayout::Esrgan ? "model.0" : "conv_first";
}

std::string RrdbnetConfig::dense_name(int block, int rdb, int conv) const {
  const std::string b = num(block), k = num(rdb + 1), j = num(conv + 1);
  switch (layout) {
    case RrdbnetLayout::BasicSr:
      return "body." + b + ".rdb" + k + ".conv" + j;
    case RrdbnetLayout::Esrgan:
      return "model.1.sub." + b + ".RDB" + k + ".conv" + j + ".0";
    case RrdbnetLayout::Bsrgan:
      return "RRDB_trunk." + b + ".RDB" + k + ".conv" + j;
  }
  return {};
}

std::string RrdbnetConfig::body_conv_name() const {
  switch (layout) {
    case RrdbnetLayout::BasicSr:
      return "conv_body";
    case RrdbnetLayout::Esrgan:
      return "model.1.sub." + num(blocks);
    case RrdbnetLayout::Bsrgan:
      return "trunk_conv";
  }
  return {};
}

std::string RrdbnetConfig::up_name(int u) const {
  switch (layout) {
    case RrdbnetLayout::BasicSr:
      return "conv_up" + num(u + 1);
    case RrdbnetLayout::Esrgan:
      return "model." + num(3 * (u + 1));  // after [Upsample, Conv, LeakyReLU] triples
    case RrdbnetLayout::Bsrgan:
      return "upconv" + num(u + 1);
  }
  return {};
}

std::string RrdbnetConfig::hr_name() const {
  switch (layout) {
    case RrdbnetLayout::BasicSr:
      return "conv_hr";
    case RrdbnetLayout::Esrgan:
      return "model." + num(3 * upsamplings + 2);
    case RrdbnetLayout::Bsrgan:
      return "HRconv";
  }
  return {};
}

std::string RrdbnetConfig::last_name() const {
  return layout == RrdbnetLayout::Esrgan ? "model." + num(3 * upsamplings + 4) : "conv_last";
}

// ---- detection ----------------------------------------------------------------------------

RrdbnetConfig RrdbnetConfig::detect(const Weights& w) {
  RrdbnetConfig c;
  DR_CHECK(!w.has("model.1.sub.0.RDB1.conv1x1.weight"), kOp,
           "ESRGAN+ models (extra conv1x1 paths in the dense blocks) are not supported");
  if (w.has("conv_first.weight") && w.has("body.0.rdb1.conv1.weight"))
    c.layout = RrdbnetLayout::BasicSr;
  else if (w.has("model.0.weight") && w.has("model.1.sub.0.RDB1.conv1.0.weight"))
    c.layout = RrdbnetLayout::Esrgan;
  else if (w.has("conv_first.weight") && w.has("RRDB_trunk.0.RDB1.conv1.weight"))
    c.layout = RrdbnetLayout::Bsrgan;
  else
    fail(kOp, "not an ESRGAN/RRDBNet upscaler under '", w.prefix(),
         "': expected conv_first.weight and body.0.rdb1.conv1.weight (BasicSR / Real-ESRGAN), "
         "model.0.weight and model.1.sub.0.RDB1.conv1.0.weight (ESRGAN), or conv_first.weight "
         "and RRDB_trunk.0.RDB1.conv1.weight (BSRGAN)");

  c.blocks = 0;
  while (w.has(c.dense_name(c.blocks, 0, 0) + ".weight")) ++c.blocks;

  c.upsamplings = 0;
  if (c.layout == RrdbnetLayout::Esrgan) {
    // conv_first, the shortcut block, [Upsample, Conv, LeakyReLU] per ×2, conv_hr,
    // LeakyReLU, conv_last: 5 + 3·n entries (spandrel's scale rule).
    const int len = esrgan_sequence_length(w);
    DR_CHECK(len >= 5 && (len - 5) % 3 == 0, kOp, "'", w.prefix(), "model.*' has ", len,
             " entries; an ESRGAN sequence has 5 + 3 per ×2 upsampling");
    c.upsamplings = (len - 5) / 3;
  } else {
    while (w.has(c.up_name(c.upsamplings) + ".weight")) ++c.upsamplings;
  }

  const Shape first = w.shape(c.first_name() + ".weight");         // [nf, in, 3, 3]
  const Shape dense = w.shape(c.dense_name(0, 0, 0) + ".weight");  // [gc, nf, 3, 3]
  const Shape last = w.shape(c.last_name() + ".weight");           // [out, nf, 3, 3]
  DR_CHECK(first.ndim() == 4 && dense.ndim() == 4 && last.ndim() == 4, kOp,
           "conv weights must be [out, in, kh, kw]; got ", first, ", ", dense, ", ", last);
  c.features = static_cast<int>(first[0]);
  c.in_channels = static_cast<int>(first[1]);
  c.growth = static_cast<int>(dense[0]);
  c.out_channels = static_cast<int>(last[0]);
  // Pixel unshuffle (Real-ESRGAN x2plus: 12 = 3·2², x1: 48 = 3·4²), as spandrel decides.
  if (c.in_channels == 4 * c.out_channels)
    c.unshuffle = 2;
  else if (c.in_channels == 16 * c.out_channels)
    c.unshuffle = 4;
  else
    c.unshuffle = 1;
  DR_CHECK((1 << c.upsamplings) % c.unshuffle == 0, kOp, c.upsamplings,
           " upsamplings cannot undo a pixel unshuffle by ", c.unshuffle);
  return c;
}

// ---- loading ------------------------------------------------------------------------------

Rrdbnet Rrdbnet::load(const Weights& w, const RrdbnetConfig& config) {
  const RrdbnetConfig& c = config;
  Rrdbnet n;
  n.config_ = c;
  const int64_t nf = c.features, gc = c.growth;
  n.conv_first_ = layers::Conv2d::load(w, c.first_name(), c.in_channels, nf, 3);
  n.body_.resize(static_cast<size_t>(c.blocks));
  for (int b = 0; b < c.blocks; ++b)
    for (int k = 0; k < 3; ++k) {
      DenseBlock& d = n.body_[static_cast<size_t>(b)].rdb[k];
      for (int j = 0; j < 5; ++j)  // input nf + j·gc; output gc, nf for the last
        d.conv[j] = layers::Conv2d::load(w, c.dense_name(b, k, j), nf + j * gc, j < 4 ? gc : nf, 3);
    }
  n.conv_body_ = layers::Conv2d::load(w, c.body_conv_name(), nf, nf, 3);
  for (int u = 0; u < c.upsamplings; ++u)
    n.up_.push_back(layers::Conv2d::load(w, c.up_name(u), nf, nf, 3));
  n.conv_hr_ = layers::Conv2d::load(w, c.hr_name(), nf, nf, 3);
  n.conv_last_ = layers::Conv2d::load(w, c.last_name(), nf, c.out_channels, 3);
  const float scale = kResidualScale;
  n.residual_scale_ = ops::to_device(Tensor::from_floats({&scale, 1}, {1}, w.dtype()), w.device());
  return n;
}

// ---- forward ------------------------------------------------------------------------------

Tensor Rrdbnet::lrelu(const Tensor& x) const {
  return ops::leaky_relu(x, kSlope);
}

// x [N, h, w, nf] → [N, h, w, nf]
Tensor Rrdbnet::dense_block(const DenseBlock& b, const Tensor& x) const {
  std::vector<Tensor> feats{x};  // x, x1, .., x4: [N, h, w, nf], then gc each
  for (int j = 0; j < 4; ++j) {
    const Tensor in = j == 0 ? x : ops::concat(feats, 3);  // [N, h, w, nf + j·gc]
    feats.push_back(lrelu(b.conv[j](in)));
  }
  const Tensor x5 = b.conv[4](ops::concat(feats, 3));  // [N, h, w, nf]
  return ops::add(ops::mul(x5, residual_scale_), x);
}

// x [N, h, w, nf] → [N, h, w, nf]
Tensor Rrdbnet::rrdb(const Rrdb& b, const Tensor& x) const {
  Tensor h = x;
  for (const DenseBlock& d : b.rdb) h = dense_block(d, h);
  return ops::add(ops::mul(h, residual_scale_), x);
}

Tensor Rrdbnet::forward(const Tensor& x) const {
  const RrdbnetConfig& c = config_;
  DR_CHECK(x.ndim() == 4 && x.dim(3) == c.image_channels(), kOp, "expected an image [N, H, W, ",
           c.image_channels(), "], got ", x.shape());
  const Tensor& wt = conv_first_.weight;
  Tensor h = ops::to_device(x, wt.device());
  if (h.dtype() != wt.dtype()) h = ops::cast(h, wt.dtype());
  const int64_t height = x.dim(1), width = x.dim(2);
  const int r = c.unshuffle;
  if (r > 1) {
    // spandrel's RRDBNet.forward: reflect-pad to multiples of r, unshuffle.
    const int64_t ph = (r - height % r) % r, pw = (r - width % r) % r;
    DR_CHECK(ph < height && pw < width, kOp, "an image of ", height, "x", width,
             " is too small to reflect-pad to a multiple of ", r);
    h = pixel_unshuffle(pad_reflect_replicate(h, ph, pw), r);  // [N, H/r, W/r, 3·r²]
  }
  Tensor fea = conv_first_(h);  // [N, h, w, nf]
  Tensor trunk = fea;
  for (const Rrdb& b : body_) trunk = rrdb(b, trunk);
  fea = ops::add(fea, conv_body_(trunk));
  for (const layers::Conv2d& up : up_)
    fea = lrelu(up(ops::upsample_nearest2x(fea)));  // [N, 2h, 2w, nf] per step
  Tensor out = conv_last_(lrelu(conv_hr_(fea)));    // [N, h·2^n, w·2^n, out]
  if (out.dim(1) != height * c.scale()) out = ops::slice(out, 1, 0, height * c.scale());
  if (out.dim(2) != width * c.scale()) out = ops::slice(out, 2, 0, width * c.scale());
  return out.dtype() == x.dtype() ? out : ops::cast(out, x.dtype());
}

// ---- layout helpers -----------------------------------------------------------------------

Tensor pad_reflect_replicate(const Tensor& x, int64_t pad_h, int64_t pad_w) {
  DR_CHECK(x.ndim() == 4 && pad_h >= 0 && pad_w >= 0, kOp, "cannot pad ", x.shape(), " by ", pad_h,
           "x", pad_w);
  Tensor out = x;
  for (const auto& [axis, pad] : {std::pair{1, pad_h}, std::pair{2, pad_w}}) {
    if (pad == 0) continue;
    const int64_t n = out.dim(axis);
    std::vector<Tensor> parts{out};
    const int64_t reflect = std::min(pad, n - 1);
    for (int64_t i = 0; i < reflect; ++i)  // rows n-2, n-3, ...: mirrored about the edge
      parts.push_back(ops::slice(out, axis, n - 2 - i, n - 1 - i));
    const Tensor edge = reflect > 0 ? parts.back() : ops::slice(out, axis, n - 1, n);
    for (int64_t i = reflect; i < pad; ++i) parts.push_back(edge);
    out = ops::concat(parts, axis);
  }
  return out;
}

Tensor pixel_unshuffle(const Tensor& x, int r) {
  DR_CHECK(x.ndim() == 4 && r >= 1 && x.dim(1) % r == 0 && x.dim(2) % r == 0, kOp,
           "pixel unshuffle by ", r, " needs [N, H, W, C] with H and W multiples of it, got ",
           x.shape());
  const int64_t n = x.dim(0), h = x.dim(1) / r, w = x.dim(2) / r, c = x.dim(3);
  const Tensor split = x.reshape({n, h, r, w, r, c});  // [N, h, i, w, j, C]
  // → [N, h, w, C, i, j]: channel c·r² + i·r + j, as torch's NCHW pixel_unshuffle
  return ops::permute(split, {0, 1, 3, 5, 2, 4}).reshape({n, h, w, c * r * r});
}

}  // namespace darkroom
