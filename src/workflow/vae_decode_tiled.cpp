// Tiled VAE decoding with feathered blending (see vae_decode_tiled.h).
#include "workflow/vae_decode_tiled.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/ops.h"
#include "core/error.h"

namespace darkroom::workflow {
namespace {

// Tile starts along one axis: range(0, n - overlap, tile - overlap) when n > tile, else {0},
// each pulled back to at most n - overlap (tiled_scale_multidim's positions).
std::vector<int64_t> tile_starts(int64_t n, int64_t tile, int64_t overlap) {
  if (n <= tile) return {0};
  DR_CHECK(tile > overlap, "VAEDecodeTiled", "tile (", tile, ") must exceed the overlap (", overlap,
           ")");
  std::vector<int64_t> starts;
  for (int64_t p = 0; p < n - overlap; p += tile - overlap)
    starts.push_back(std::max<int64_t>(0, std::min(n - overlap, p)));
  return starts;
}

// The feather weights of one axis of a decoded tile of `len` pixels.
std::vector<float> feather_axis(int64_t len, int64_t feather) {
  std::vector<float> m(static_cast<size_t>(len), 1.0f);
  if (feather >= len) return m;  // as ComfyUI: no feathering when the ramp does not fit
  for (int64_t t = 0; t < feather; ++t) {
    const float a = static_cast<float>(t + 1) / static_cast<float>(feather);
    m[static_cast<size_t>(t)] *= a;
    m[static_cast<size_t>(len - 1 - t)] *= a;
  }
  return m;
}

// One latent image z1 [1, h, w, C] on the CPU → decoded [1, H, W, 3] raw (about [-1, 1]).
Tensor decode_cpu(const Vae& vae, const Tensor& z1) {
  Tensor out = ops::to_device(vae.decode(z1), kCpu);
  if (out.dtype() != DType::F32) {
    std::vector<float> f = out.to_floats();
    out = Tensor::from_floats(f, out.shape());
  }
  return out;
}

// tiled_scale_multidim for one latent image: zb [1, h, w, C] → [H, W, 3] raw values.
std::vector<float> tiled_pass(const Vae& vae, const Tensor& zb, int64_t tile_y, int64_t tile_x,
                              int64_t overlap, int64_t scale, int64_t& done, int64_t total,
                              const TiledDecodeOptions& o) {
  const int64_t h = zb.dim(1), w = zb.dim(2), c = zb.dim(3);
  const int64_t H = h * scale, W = w * scale;
  std::vector<float> acc(static_cast<size_t>(H * W * 3), 0.0f);
  if (h <= tile_y && w <= tile_x) {
    const Tensor img = decode_cpu(vae, zb);
    std::copy_n(img.data<float>(), acc.size(), acc.data());
    if (o.on_tile) o.on_tile(++done, total);
    return acc;
  }
  std::vector<float> div(static_cast<size_t>(H * W * 3), 0.0f);
  const std::vector<float> zf = zb.to_floats();
  const int64_t feather = overlap * scale;
  for (int64_t y0 : tile_starts(h, tile_y, overlap)) {
    for (int64_t x0 : tile_starts(w, tile_x, overlap)) {
      const int64_t th = std::min(tile_y, h - y0), tw = std::min(tile_x, w - x0);
      // The latent tile [1, th, tw, C].
      std::vector<float> tile(static_cast<size_t>(th * tw * c));
      for (int64_t y = 0; y < th; ++y)
        std::copy_n(&zf[static_cast<size_t>(((y0 + y) * w + x0) * c)], tw * c,
                    &tile[static_cast<size_t>(y * tw * c)]);
      const Tensor img = decode_cpu(vae, Tensor::from_floats(tile, {1, th, tw, c}));
      const int64_t ph = img.dim(1), pw = img.dim(2);
      DR_ASSERT(ph == th * scale && pw == tw * scale && img.dim(3) == 3);
      const std::vector<float> my = feather_axis(ph, feather), mx = feather_axis(pw, feather);
      const float* p = img.data<float>();
      for (int64_t y = 0; y < ph; ++y)
        for (int64_t x = 0; x < pw; ++x) {
          const float m = my[static_cast<size_t>(y)] * mx[static_cast<size_t>(x)];
          const size_t at = static_cast<size_t>(((y0 * scale + y) * W + x0 * scale + x) * 3);
          for (int k = 0; k < 3; ++k) {
            acc[at + k] += p[(y * pw + x) * 3 + k] * m;
            div[at + k] += m;
          }
        }
      if (o.on_tile) o.on_tile(++done, total);
    }
  }
  for (size_t i = 0; i < acc.size(); ++i) acc[i] /= div[i];
  return acc;
}

int64_t count_tiles(int64_t h, int64_t w, int64_t ty, int64_t tx, int64_t overlap) {
  if (h <= ty && w <= tx) return 1;
  return static_cast<int64_t>(tile_starts(h, ty, overlap).size() *
                              tile_starts(w, tx, overlap).size());
}

}  // namespace

Tensor vae_decode_tiled(const Vae& vae, const Tensor& z, const TiledDecodeOptions& o) {
  DR_CHECK(z.ndim() == 4 && z.dim(3) == vae.config().z_channels, "VAEDecodeTiled",
           "expected a latent [N, h, w, ", vae.config().z_channels, "], got ", z.shape());
  DR_CHECK(o.tile_x > 0 && o.tile_y > 0 && o.overlap >= 0, "VAEDecodeTiled", "bad tiling ",
           o.tile_x, "x", o.tile_y, " overlap ", o.overlap);
  const int64_t scale = int64_t{1} << (vae.config().levels() - 1);
  const int64_t n = z.dim(0), h = z.dim(1), w = z.dim(2);
  const int64_t H = h * scale, W = w * scale;
  const Tensor zc = ops::to_device(z, kCpu);
  // The three tilings of VAE.decode_tiled_, in its order.
  const int64_t tilings[3][2] = {
      {o.tile_y * 2, o.tile_x / 2}, {o.tile_y / 2, o.tile_x * 2}, {o.tile_y, o.tile_x}};
  for (const auto& t : tilings)
    DR_CHECK(t[0] > 0 && t[1] > 0, "VAEDecodeTiled", "tile ", o.tile_x, "x", o.tile_y,
             " is too small to halve");
  int64_t total = 0, done = 0;
  for (const auto& t : tilings) total += n * count_tiles(h, w, t[0], t[1], o.overlap);
  Tensor out = Tensor::empty({n, H, W, 3}, DType::F32);
  float* dst = out.data<float>();
  for (int64_t b = 0; b < n; ++b) {
    Tensor zb = zc.narrow0(b, b + 1);
    if (zb.dtype() != DType::F32) zb = Tensor::from_floats(zb.to_floats(), zb.shape());
    std::vector<float> sum(static_cast<size_t>(H * W * 3), 0.0f);
    for (const auto& t : tilings) {
      const std::vector<float> pass =
          tiled_pass(vae, zb, t[0], t[1], o.overlap, scale, done, total, o);
      for (size_t i = 0; i < sum.size(); ++i) sum[i] += pass[i];
    }
    // process_output: clamp((x + 1) / 2, 0, 1) of the three passes' mean.
    for (size_t i = 0; i < sum.size(); ++i)
      dst[static_cast<size_t>(b) * sum.size() + i] =
          std::clamp((sum[i] / 3.0f + 1.0f) / 2.0f, 0.0f, 1.0f);
  }
  return out;
}

}  // namespace darkroom::workflow
