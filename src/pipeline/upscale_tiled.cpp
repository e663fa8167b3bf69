// comfy.utils.tiled_scale and ImageUpscaleWithModel (see upscale_tiled.h).
#include "pipeline/upscale_tiled.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/ops.h"
#include "core/error.h"

namespace darkroom::pipeline {
namespace {

const char* kOp = "upscale";

// Tile starts along one axis of n pixels (tiled_scale_multidim's positions).
std::vector<int64_t> tile_starts(int64_t n, int64_t tile, int64_t overlap) {
  if (n <= tile) return {0};
  std::vector<int64_t> starts;
  for (int64_t p = 0; p < n - overlap; p += tile - overlap)
    starts.push_back(std::max<int64_t>(0, std::min(n - overlap, p)));
  return starts;
}

// The mask of one axis of an output tile of `len` pixels.
std::vector<float> feather_axis(int64_t len, int64_t feather) {
  std::vector<float> m(static_cast<size_t>(len), 1.0f);
  if (feather >= len) return m;
  for (int64_t t = 0; t < feather; ++t) {
    const auto a = static_cast<float>(static_cast<double>(t + 1) / static_cast<double>(feather));
    m[static_cast<size_t>(t)] *= a;
    m[static_cast<size_t>(len - 1 - t)] *= a;
  }
  return m;
}

Tensor as_cpu_f32(const Tensor& t) {
  Tensor c = ops::to_device(t, kCpu);
  return c.dtype() == DType::F32 ? c : ops::cast(c, DType::F32);
}

}  // namespace

int64_t tiled_scale_steps(int64_t height, int64_t width, int64_t tile, int64_t overlap) {
  return static_cast<int64_t>(tile_starts(height, tile, overlap).size() *
                              tile_starts(width, tile, overlap).size());
}

Tensor tiled_scale(const Tensor& images, int64_t scale, int64_t out_channels,
                   const std::function<Tensor(const Tensor&)>& fn, const TiledScaleOptions& o) {
  DR_CHECK(images.ndim() == 4, kOp, "expected images [N, H, W, C], got ", images.shape());
  DR_CHECK(o.tile > o.overlap && o.overlap >= 0 && scale >= 1, kOp, "bad tiling: tile ", o.tile,
           ", overlap ", o.overlap, ", scale ", scale);
  const Tensor src = as_cpu_f32(images);
  const int64_t n = src.dim(0), h = src.dim(1), w = src.dim(2), c = src.dim(3);
  const int64_t H = h * scale, W = w * scale, oc = out_channels;
  const std::vector<int64_t> ys = tile_starts(h, o.tile, o.overlap);
  const std::vector<int64_t> xs = tile_starts(w, o.tile, o.overlap);
  const int64_t total = n * static_cast<int64_t>(ys.size() * xs.size());
  int64_t done = 0;
  auto run = [&](const Tensor& tile, int64_t th, int64_t tw) {
    Tensor out = as_cpu_f32(fn(tile));
    DR_CHECK(out.shape() == Shape({1, th * scale, tw * scale, oc}), kOp, "a ", th, "x", tw,
             " tile gave ", out.shape(), "; expected [1, ", th * scale, ", ", tw * scale, ", ", oc,
             "]");
    if (o.on_tile) o.on_tile(++done, total);
    return out;
  };

  Tensor result = Tensor::empty({n, H, W, oc}, DType::F32);
  float* dst = result.data<float>();
  const size_t plane = static_cast<size_t>(H * W * oc);
  for (int64_t b = 0; b < n; ++b) {
    const Tensor item = src.narrow0(b, b + 1);
    if (h <= o.tile && w <= o.tile) {  // the whole image in one tile
      const Tensor out = run(item, h, w);
      std::copy_n(out.data<float>(), plane, dst + static_cast<size_t>(b) * plane);
      continue;
    }
    std::vector<float> acc(plane, 0.0f), div(plane, 0.0f);
    const float* in = item.data<float>();
    const int64_t feather = std::llround(static_cast<double>(o.overlap * scale));
    for (int64_t y0 : ys) {
      for (int64_t x0 : xs) {
        const int64_t th = std::min(o.tile, h - y0), tw = std::min(o.tile, w - x0);
        Tensor tile = Tensor::empty({1, th, tw, c}, DType::F32);  // [1, th, tw, C]
        for (int64_t y = 0; y < th; ++y)
          std::copy_n(in + ((y0 + y) * w + x0) * c, tw * c, tile.data<float>() + y * tw * c);
        const Tensor out = run(tile, th, tw);  // [1, th·s, tw·s, oc]
        const int64_t ph = th * scale, pw = tw * scale;
        const std::vector<float> my = feather_axis(ph, feather), mx = feather_axis(pw, feather);
        const float* p = out.data<float>();
        for (int64_t y = 0; y < ph; ++y)
          for (int64_t x = 0; x < pw; ++x) {
            const float m = 1.0f * my[static_cast<size_t>(y)] * mx[static_cast<size_t>(x)];
            const size_t at = static_cast<size_t>(((y0 * scale + y) * W + x0 * scale + x) * oc);
            for (int64_t k = 0; k < oc; ++k) {
              acc[at + static_cast<size_t>(k)] += p[(y * pw + x) * oc + k] * m;
              div[at + static_cast<size_t>(k)] += m;
            }
          }
      }
    }
    float* d = dst + static_cast<size_t>(b) * plane;
    for (size_t i = 0; i < plane; ++i) d[i] = acc[i] / div[i];
  }
  return result;
}

uint64_t estimate_tile_bytes(const UpscaleModel& model, int64_t tile, DType dtype) {
  const RrdbnetConfig& c = model.net->config();
  const auto in_side = static_cast<uint64_t>((tile + c.unshuffle - 1) / c.unshuffle);
  const uint64_t out_side = in_side << c.upsamplings;
  const auto nf = static_cast<uint64_t>(c.features), gc = static_cast<uint64_t>(c.growth);
  // Dense block: its inputs x..x4 and the concatenation of them (nf + 4·gc wide), twice.
  const uint64_t low = in_side * in_side * 2 * (nf + 4 * gc);
  const uint64_t high = out_side * out_side * 3 * nf;
  return std::max(low, high) * dtype_size(dtype);
}

int64_t choose_tile(const UpscaleModel& model, DType dtype, const UpscaleOptions& o) {
  int64_t tile = o.tile;
  while (tile / 2 >= std::max<int64_t>(o.min_tile, o.overlap + 1) &&
         estimate_tile_bytes(model, tile, dtype) > o.tile_budget_bytes)
    tile /= 2;
  return tile;
}

Tensor upscale_image(const UpscaleModel& model, const Tensor& image, const UpscaleOptions& o) {
  DR_CHECK(image.ndim() == 4 && image.dim(3) == model.image_channels(), kOp, model.source,
           ": expected an image [N, H, W, ", model.image_channels(), "], got ", image.shape());
  const DType dtype = model.net->dtype();
  TiledScaleOptions t;
  t.tile = choose_tile(model, dtype, o);
  t.overlap = o.overlap;
  t.on_tile = o.on_tile;
  Tensor out = tiled_scale(
      image, model.scale(), model.out_channels(),
      [&](const Tensor& tile) { return upscale_call(model, tile); }, t);
  float* v = out.data<float>();
  for (int64_t i = 0; i < out.numel(); ++i) v[i] = std::clamp(v[i], 0.0f, 1.0f);
  return out;
}

}  // namespace darkroom::pipeline
