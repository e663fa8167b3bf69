// torch.nn.functional.interpolate and Pillow's resize, restated (see image_resize.h).
#include "workflow/image_resize.h"

#include <algorithm>
#include <array>
#include <cfenv>
#include <cmath>

#include "core/error.h"

namespace darkroom::workflow {
namespace {

// ---- torch ----------------------------------------------------------------------------

// One output coordinate of a separable torch interpolation: taps and weights.
struct Taps {
  std::array<int64_t, 4> index{};
  std::array<float, 4> weight{};
  int n = 0;
};

// torch's area_pixel_compute_source_index in float (the op math type of f32 inputs).
float source_index(float scale, int64_t dst, bool cubic) {
  const float src = scale * (static_cast<float>(dst) + 0.5f) - 0.5f;
  return (!cubic && src < 0) ? 0.f : src;
}

std::vector<Taps> linear_taps(int64_t in, int64_t out) {
  const float scale = static_cast<float>(in) / static_cast<float>(out);
  std::vector<Taps> taps(static_cast<size_t>(out));
  for (int64_t o = 0; o < out; ++o) {
    const float real = source_index(scale, o, false);
    const int64_t i0 = std::min(static_cast<int64_t>(std::floor(real)), in - 1);
    const float l1 = std::min(std::max(real - static_cast<float>(i0), 0.f), 1.f);
    Taps& t = taps[static_cast<size_t>(o)];
    t.n = 2;
    t.index = {i0, i0 + (i0 < in - 1 ? 1 : 0), 0, 0};
    t.weight = {1.f - l1, l1, 0, 0};
  }
  return taps;
}

std::vector<Taps> cubic_taps(int64_t in, int64_t out) {
  constexpr float A = -0.75f;
  auto near = [](float x) { return ((A + 2) * x - (A + 3)) * x * x + 1; };       // |x| ≤ 1
  auto far = [](float x) { return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A; };  // 1 < |x| < 2
  const float scale = static_cast<float>(in) / static_cast<float>(out);
  std::vector<Taps> taps(static_cast<size_t>(out));
  for (int64_t o = 0; o < out; ++o) {
    const float real = source_index(scale, o, true);
    const int64_t i = static_cast<int64_t>(std::floor(real));
    const float t = real - static_cast<float>(i);
    Taps& tp = taps[static_cast<size_t>(o)];
    tp.n = 4;
    tp.weight = {far(t + 1), near(t), near(1 - t), far(2 - t)};
    for (int k = 0; k < 4; ++k) tp.index[k] = std::clamp<int64_t>(i - 1 + k, 0, in - 1);
  }
  return taps;
}

// Separable pass along one axis: src viewed as [outer, in, inner] → [outer, out, inner].
std::vector<float> apply_taps(const std::vector<float>& src, int64_t outer, int64_t in,
                              int64_t inner, const std::vector<Taps>& taps) {
  const int64_t out = static_cast<int64_t>(taps.size());
  std::vector<float> dst(static_cast<size_t>(outer * out * inner));
  for (int64_t a = 0; a < outer; ++a)
    for (int64_t o = 0; o < out; ++o) {
      const Taps& t = taps[static_cast<size_t>(o)];
      for (int64_t b = 0; b < inner; ++b) {
        float s = 0;
        for (int k = 0; k < t.n; ++k)
          s += t.weight[k] * src[static_cast<size_t>((a * in + t.index[k]) * inner + b)];
        dst[static_cast<size_t>((a * out + o) * inner + b)] = s;
      }
    }
  return dst;
}

// ---- bislerp --------------------------------------------------------------------------

// comfy.utils.bislerp's generate_bilinear_data for one axis: torch's bilinear
// interpolation of the ramps 0…in-1 (giving the first source index, truncated, and the
// ratio, its fraction) and 1…in with the last entry kept at in-1 (the second index). The
// second ramp is interpolated on its own, so its index can land on the first one.
struct SlerpTaps {
  std::vector<int64_t> first, second;
  std::vector<float> ratio;
};

SlerpTaps slerp_taps(int64_t in, int64_t out) {
  const std::vector<Taps> taps = linear_taps(in, out);
  std::vector<float> ramp1(static_cast<size_t>(in)), ramp2(static_cast<size_t>(in));
  for (int64_t i = 0; i < in; ++i) {
    ramp1[static_cast<size_t>(i)] = static_cast<float>(i);
    ramp2[static_cast<size_t>(i)] = static_cast<float>(std::min(i + 1, in - 1));
  }
  const std::vector<float> c1 = apply_taps(ramp1, 1, in, 1, taps);
  const std::vector<float> c2 = apply_taps(ramp2, 1, in, 1, taps);
  SlerpTaps t;
  for (int64_t o = 0; o < out; ++o) {
    const float v1 = c1[static_cast<size_t>(o)], v2 = c2[static_cast<size_t>(o)];
    t.ratio.push_back(v1 - std::floor(v1));
    t.first.push_back(static_cast<int64_t>(v1));  // .to(torch.int64) truncates
    t.second.push_back(static_cast<int64_t>(v2));
  }
  return t;
}

// bislerp's slerp of two channel vectors b1, b2 [c] at ratio r: the directions slerped,
// the length interpolated linearly; b1 itself where the directions (nearly) agree, a
// plain lerp where they are (nearly) opposite. A zero vector's direction counts as 0.
void slerp(const float* b1, const float* b2, float r, int64_t c, float* out) {
  double s1 = 0, s2 = 0;
  for (int64_t k = 0; k < c; ++k) {
    s1 += static_cast<double>(b1[k]) * b1[k];
    s2 += static_cast<double>(b2[k]) * b2[k];
  }
  const float n1 = static_cast<float>(std::sqrt(s1)), n2 = static_cast<float>(std::sqrt(s2));
  auto unit = [](float v, float n) { return n == 0.0f ? 0.0f : v / n; };
  float dot = 0;
  for (int64_t k = 0; k < c; ++k) dot += unit(b1[k], n1) * unit(b2[k], n2);
  // torch compares the f32 dot with the Python doubles rounded to f32.
  if (dot > static_cast<float>(1.0 - 1e-5)) {
    std::copy_n(b1, c, out);
    return;
  }
  if (dot < static_cast<float>(1e-5 - 1.0)) {
    for (int64_t k = 0; k < c; ++k) out[k] = b1[k] * (1.0f - r) + b2[k] * r;
    return;
  }
  const float omega = std::acos(dot);
  const float so = std::sin(omega);
  const float w1 = std::sin((1.0f - r) * omega) / so, w2 = std::sin(r * omega) / so;
  const float length = n1 * (1.0f - r) + n2 * r;
  for (int64_t k = 0; k < c; ++k) out[k] = (w1 * unit(b1[k], n1) + w2 * unit(b2[k], n2)) * length;
}

// ---- Pillow ---------------------------------------------------------------------------

constexpr int kPrecisionBits = 32 - 8 - 2;

double pil_filter(PilFilter f, double x) {
  switch (f) {
    case PilFilter::Bilinear:
      x = std::fabs(x);
      return x < 1.0 ? 1.0 - x : 0.0;
    case PilFilter::Bicubic: {
      constexpr double a = -0.5;
      x = std::fabs(x);
      if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
      if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
      return 0.0;
    }
    case PilFilter::Lanczos: {
      auto sinc = [](double v) {
        if (v == 0.0) return 1.0;
        v *= M_PI;
        return std::sin(v) / v;
      };
      return (-3.0 <= x && x < 3.0) ? sinc(x) * sinc(x / 3) : 0.0;
    }
  }
  return 0.0;
}

double pil_support(PilFilter f) {
  return f == PilFilter::Bilinear ? 1.0 : f == PilFilter::Bicubic ? 2.0 : 3.0;
}

// Pillow's precompute_coeffs + normalize_coeffs_8bpc for the full input range.
struct PilCoeffs {
  int64_t ksize = 0;
  std::vector<int64_t> bounds;  // per output: xmin, count
  std::vector<int32_t> k;       // [out, ksize] fixed point
};

PilCoeffs pil_coeffs(int64_t in, int64_t out, PilFilter f) {
  const double scale = static_cast<double>(in) / static_cast<double>(out);
  const double filterscale = std::max(scale, 1.0);
  const double support = pil_support(f) * filterscale;
  PilCoeffs c;
  c.ksize = static_cast<int64_t>(std::ceil(support)) * 2 + 1;
  c.bounds.resize(static_cast<size_t>(out) * 2);
  c.k.assign(static_cast<size_t>(out * c.ksize), 0);
  std::vector<double> w(static_cast<size_t>(c.ksize));
  for (int64_t o = 0; o < out; ++o) {
    const double center = (static_cast<double>(o) + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    int64_t xmin = static_cast<int64_t>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int64_t xmax = static_cast<int64_t>(center + support + 0.5);
    if (xmax > in) xmax = in;
    xmax -= xmin;
    double ww = 0.0;
    for (int64_t x = 0; x < xmax; ++x) {
      w[static_cast<size_t>(x)] =
          pil_filter(f, (static_cast<double>(x + xmin) - center + 0.5) * ss);
      ww += w[static_cast<size_t>(x)];
    }
    for (int64_t x = 0; x < xmax; ++x) {
      double v = ww != 0.0 ? w[static_cast<size_t>(x)] / ww : w[static_cast<size_t>(x)];
      c.k[static_cast<size_t>(o * c.ksize + x)] =
          v < 0 ? static_cast<int32_t>(-0.5 + v * (1 << kPrecisionBits))
                : static_cast<int32_t>(0.5 + v * (1 << kPrecisionBits));
    }
    c.bounds[static_cast<size_t>(o) * 2] = xmin;
    c.bounds[static_cast<size_t>(o) * 2 + 1] = xmax;
  }
  return c;
}

uint8_t clip8(int64_t v) {
  return static_cast<uint8_t>(std::clamp<int64_t>(v >> kPrecisionBits, 0, 255));
}

// One Pillow pass along an axis: src [outer, in, inner] → [outer, out, inner].
std::vector<uint8_t> pil_pass(const std::vector<uint8_t>& src, int64_t outer, int64_t in,
                              int64_t inner, int64_t out, PilFilter f) {
  const PilCoeffs c = pil_coeffs(in, out, f);
  std::vector<uint8_t> dst(static_cast<size_t>(outer * out * inner));
  for (int64_t a = 0; a < outer; ++a)
    for (int64_t o = 0; o < out; ++o) {
      const int64_t xmin = c.bounds[static_cast<size_t>(o) * 2];
      const int64_t n = c.bounds[static_cast<size_t>(o) * 2 + 1];
      const int32_t* k = &c.k[static_cast<size_t>(o * c.ksize)];
      for (int64_t b = 0; b < inner; ++b) {
        int64_t ss = int64_t{1} << (kPrecisionBits - 1);
        for (int64_t x = 0; x < n; ++x)
          ss += int64_t{src[static_cast<size_t>((a * in + xmin + x) * inner + b)]} * k[x];
        dst[static_cast<size_t>((a * out + o) * inner + b)] = clip8(ss);
      }
    }
  return dst;
}

}  // namespace

int64_t round_half_even(double v) {
  // nearbyint rounds with the current mode; the default, FE_TONEAREST, is Python's.
  return static_cast<int64_t>(std::nearbyint(v));
}

std::vector<float> interpolate(std::span<const float> src, int64_t h, int64_t w, int64_t c,
                               int64_t oh, int64_t ow, const std::string& method) {
  DR_CHECK(h > 0 && w > 0 && oh > 0 && ow > 0, "upscale", "bad size ", h, "x", w, " → ", oh, "x",
           ow);
  const std::vector<float> in(src.begin(), src.end());
  if (method == "nearest-exact") {
    // torch: src = min(floor((dst + 0.5) · scale), in - 1), scale = in / out, all in
    // float (10/23 · 11.5 is 5 in float, 4.99999 in double).
    auto idx = [](int64_t in_n, int64_t out_n, int64_t o) {
      const float scale = static_cast<float>(in_n) / static_cast<float>(out_n);
      return std::min(static_cast<int64_t>(std::floor((static_cast<float>(o) + 0.5f) * scale)),
                      in_n - 1);
    };
    std::vector<float> dst(static_cast<size_t>(oh * ow * c));
    for (int64_t y = 0; y < oh; ++y)
      for (int64_t x = 0; x < ow; ++x)
        for (int64_t k = 0; k < c; ++k)
          dst[static_cast<size_t>((y * ow + x) * c + k)] =
              in[static_cast<size_t>((idx(h, oh, y) * w + idx(w, ow, x)) * c + k)];
    return dst;
  }
  if (method == "bilinear" || method == "bicubic") {
    const bool cubic = method == "bicubic";
    // Width first, then height; both passes are linear, so the order changes only the
    // float rounding.
    std::vector<float> t = apply_taps(in, h, w, c, cubic ? cubic_taps(w, ow) : linear_taps(w, ow));
    return apply_taps(t, 1, h, ow * c, cubic ? cubic_taps(h, oh) : linear_taps(h, oh));
  }
  if (method == "area") {
    // adaptive_avg_pool2d: output o averages [floor(o·in/out), ceil((o+1)·in/out)).
    auto start = [](int64_t o, int64_t in_n, int64_t out_n) { return (o * in_n) / out_n; };
    auto end = [](int64_t o, int64_t in_n, int64_t out_n) {
      return ((o + 1) * in_n + out_n - 1) / out_n;
    };
    std::vector<float> dst(static_cast<size_t>(oh * ow * c));
    for (int64_t y = 0; y < oh; ++y)
      for (int64_t x = 0; x < ow; ++x) {
        const int64_t y0 = start(y, h, oh), y1 = end(y, h, oh);
        const int64_t x0 = start(x, w, ow), x1 = end(x, w, ow);
        for (int64_t k = 0; k < c; ++k) {
          float s = 0;
          for (int64_t yy = y0; yy < y1; ++yy)
            for (int64_t xx = x0; xx < x1; ++xx)
              s += in[static_cast<size_t>((yy * w + xx) * c + k)];
          dst[static_cast<size_t>((y * ow + x) * c + k)] =
              s / static_cast<float>((y1 - y0) * (x1 - x0));
        }
      }
    return dst;
  }
  fail("upscale", "unknown upscale_method '", method, "'");
}

std::vector<float> bislerp(std::span<const float> src, int64_t h, int64_t w, int64_t c, int64_t oh,
                           int64_t ow) {
  DR_CHECK(h > 0 && w > 0 && c > 0 && oh > 0 && ow > 0, "upscale", "bad size ", h, "x", w, " → ",
           oh, "x", ow);
  DR_ASSERT(static_cast<int64_t>(src.size()) == h * w * c, "bislerp: wrong source size");
  // Along the width first, then along the height of that result, as ComfyUI does.
  const SlerpTaps tx = slerp_taps(w, ow);
  std::vector<float> mid(static_cast<size_t>(h * ow * c));
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < ow; ++x) {
      const size_t i = static_cast<size_t>(x);
      slerp(&src[static_cast<size_t>((y * w + tx.first[i]) * c)],
            &src[static_cast<size_t>((y * w + tx.second[i]) * c)], tx.ratio[i], c,
            &mid[static_cast<size_t>((y * ow + x) * c)]);
    }
  const SlerpTaps ty = slerp_taps(h, oh);
  std::vector<float> dst(static_cast<size_t>(oh * ow * c));
  for (int64_t y = 0; y < oh; ++y) {
    const size_t i = static_cast<size_t>(y);
    for (int64_t x = 0; x < ow; ++x)
      slerp(&mid[static_cast<size_t>((ty.first[i] * ow + x) * c)],
            &mid[static_cast<size_t>((ty.second[i] * ow + x) * c)], ty.ratio[i], c,
            &dst[static_cast<size_t>((y * ow + x) * c)]);
  }
  return dst;
}

std::vector<uint8_t> pil_resize(std::span<const uint8_t> src, int64_t h, int64_t w, int64_t c,
                                int64_t oh, int64_t ow, PilFilter filter) {
  DR_CHECK(h > 0 && w > 0 && oh > 0 && ow > 0, "resize", "bad size ", h, "x", w, " → ", oh, "x",
           ow);
  std::vector<uint8_t> img(src.begin(), src.end());
  // Two passes, each rounded to 8 bits. Pillow runs the horizontal one first, except when
  // the image shrinks vertically and grows horizontally (then the vertical one, which
  // keeps the intermediate image small); the order was measured against Pillow 13 on
  // every combination of growing and shrinking (the rounding makes it visible).
  if (oh < h && ow > w) {
    img = pil_pass(img, 1, h, w * c, oh, filter);
    return pil_pass(img, oh, w, c, ow, filter);
  }
  if (ow != w) img = pil_pass(img, h, w, c, ow, filter);
  if (oh != h) img = pil_pass(img, 1, h, ow * c, oh, filter);
  return img;
}

Tensor common_upscale(const Tensor& x, int64_t width, int64_t height, const std::string& method,
                      const std::string& crop) {
  DR_CHECK(x.ndim() == 4 && x.dtype() == DType::F32 && x.device() == kCpu, "upscale",
           "expected a CPU f32 [N, H, W, C] tensor, got ", x.shape());
  DR_CHECK(width > 0 && height > 0, "upscale", "bad target size ", width, "x", height);
  const int64_t n = x.dim(0), h = x.dim(1), w = x.dim(2), c = x.dim(3);
  // crop "center": cut the sides (or top and bottom) to the target aspect ratio.
  int64_t cx = 0, cy = 0;
  if (crop == "center") {
    const double old_aspect = static_cast<double>(w) / static_cast<double>(h);
    const double new_aspect = static_cast<double>(width) / static_cast<double>(height);
    if (old_aspect > new_aspect)
      cx = round_half_even((w - w * (new_aspect / old_aspect)) / 2);
    else if (old_aspect < new_aspect)
      cy = round_half_even((h - h * (old_aspect / new_aspect)) / 2);
  } else {
    DR_CHECK(crop == "disabled", "upscale", "unknown crop '", crop, "'");
  }
  const int64_t ch = h - 2 * cy, cw = w - 2 * cx;
  DR_CHECK(ch > 0 && cw > 0, "upscale", "center crop of ", h, "x", w, " leaves nothing");
  Tensor out = Tensor::empty({n, height, width, c}, DType::F32);
  const float* src = x.data<float>();
  float* dst = out.data<float>();
  std::vector<float> plane(static_cast<size_t>(ch * cw * c));
  for (int64_t b = 0; b < n; ++b) {
    for (int64_t y = 0; y < ch; ++y)
      std::copy_n(src + ((b * h + y + cy) * w + cx) * c, cw * c, plane.data() + y * cw * c);
    std::vector<float> res;
    if (method == "lanczos") {
      // comfy.utils.lanczos: clip(255·x) truncated to uint8, Pillow LANCZOS, / 255.
      std::vector<uint8_t> u8(plane.size());
      for (size_t i = 0; i < plane.size(); ++i)
        u8[i] = static_cast<uint8_t>(std::clamp(255.f * plane[i], 0.f, 255.f));
      const std::vector<uint8_t> r = pil_resize(u8, ch, cw, c, height, width, PilFilter::Lanczos);
      res.resize(r.size());
      for (size_t i = 0; i < r.size(); ++i) res[i] = static_cast<float>(r[i]) / 255.0f;
    } else if (method == "bislerp") {
      res = bislerp(plane, ch, cw, c, height, width);
    } else {
      res = interpolate(plane, ch, cw, c, height, width, method);
    }
    std::copy(res.begin(), res.end(), dst + b * height * width * c);
  }
  return out;
}

}  // namespace darkroom::workflow
