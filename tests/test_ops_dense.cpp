// linear, matmul, conv2d and attention against plain double-precision loops.
#include <cmath>
#include <limits>

#include "backend/ops.h"
#include "test_util.h"

namespace darkroom {
namespace {

using test::expect_close;
using test::random_tensor;
using test::to_doubles;

// bf16 dot products of length K: inputs are exact in the reference, so the error is the
// f32 accumulation plus one bf16 rounding of the output (2^-9 relative) — but outputs
// near zero after cancellation need an absolute term that grows like sqrt(K)·2^-9.
test::Tolerance dense_tolerance(DType dt, int64_t k) {
  if (dt == DType::F32) return {1e-4 * std::sqrt(static_cast<double>(k) / 64), 1e-4};
  return {4e-3 * std::sqrt(static_cast<double>(k) / 64), 8e-3};
}

class Dense : public ::testing::TestWithParam<DType> {};

std::vector<double> linear_ref(const std::vector<double>& x, const std::vector<double>& w,
                               const std::vector<double>* bias, int64_t m, int64_t k, int64_t n) {
  std::vector<double> out(static_cast<size_t>(m * n));
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double acc = bias ? (*bias)[j] : 0.0;
      for (int64_t p = 0; p < k; ++p) acc += x[i * k + p] * w[j * k + p];
      out[i * n + j] = acc;
    }
  return out;
}

TEST_P(Dense, LinearShapes) {
  const DType dt = GetParam();
  struct Case {
    Shape x;
    int64_t n;
    bool bias;
  };
  for (const Case& c : {Case{{2, 77, 64}, 48, true}, Case{{1, 1}, 1, false},
                        Case{{3, 5, 33}, 17, true}, Case{{130, 320}, 96, false}}) {
    const int64_t k = c.x[-1], m = c.x.numel() / k;
    Tensor x = random_tensor(c.x, dt, 1), w = random_tensor({c.n, k}, dt, 2);
    Tensor b = c.bias ? random_tensor({c.n}, dt, 3) : Tensor();
    Tensor y = ops::linear(x, w, b);
    Shape want = c.x;
    want[-1] = c.n;
    EXPECT_EQ(y.shape(), want);
    std::vector<double> bd = c.bias ? to_doubles(b) : std::vector<double>();
    expect_close(y, linear_ref(to_doubles(x), to_doubles(w), c.bias ? &bd : nullptr, m, k, c.n),
                 dense_tolerance(dt, k), "linear " + c.x.str());
  }
}

TEST_P(Dense, MatmulBatchedTransposedBroadcast) {
  const DType dt = GetParam();
  const int64_t bsz = 3, m = 7, k = 19, n = 11;
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (int64_t ba : {bsz, int64_t{1}}) {
        Tensor a = random_tensor(ta ? Shape{ba, k, m} : Shape{ba, m, k}, dt, 4);
        Tensor b = random_tensor(tb ? Shape{bsz, n, k} : Shape{bsz, k, n}, dt, 5);
        Tensor y = ops::matmul(a, b, ta, tb);
        ASSERT_EQ(y.shape(), (Shape{bsz, m, n}));
        auto ad = to_doubles(a), bd = to_doubles(b);
        std::vector<double> ref(static_cast<size_t>(bsz * m * n));
        for (int64_t z = 0; z < bsz; ++z)
          for (int64_t i = 0; i < m; ++i)
            for (int64_t j = 0; j < n; ++j) {
              double acc = 0;
              const int64_t za = ba == 1 ? 0 : z;
              for (int64_t p = 0; p < k; ++p)
                acc += ad[za * m * k + (ta ? p * m + i : i * k + p)] *
                       bd[z * k * n + (tb ? j * k + p : p * n + j)];
              ref[(z * m + i) * n + j] = acc;
            }
        expect_close(y, ref, dense_tolerance(dt, k),
                     std::string("matmul ta=") + (ta ? "1" : "0") + " tb=" + (tb ? "1" : "0"));
      }
}

// Reference convolution: x NHWC, w OIHW.
std::vector<double> conv_ref(const Tensor& x, const Tensor& w, const Tensor& bias, int stride,
                             int pad, const Shape& out_shape) {
  auto xd = to_doubles(x), wd = to_doubles(w);
  std::vector<double> bd = bias.defined() ? to_doubles(bias) : std::vector<double>();
  const int64_t n = x.dim(0), h = x.dim(1), wi = x.dim(2), c = x.dim(3);
  const int64_t o = w.dim(0), kh = w.dim(2), kw = w.dim(3);
  const int64_t ho = out_shape[1], wo = out_shape[2];
  std::vector<double> out(static_cast<size_t>(out_shape.numel()));
  for (int64_t b = 0; b < n; ++b)
    for (int64_t oy = 0; oy < ho; ++oy)
      for (int64_t ox = 0; ox < wo; ++ox)
        for (int64_t oc = 0; oc < o; ++oc) {
          double acc = bd.empty() ? 0.0 : bd[oc];
          for (int64_t ky = 0; ky < kh; ++ky)
            for (int64_t kx = 0; kx < kw; ++kx) {
              const int64_t iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
              if (iy < 0 || iy >= h || ix < 0 || ix >= wi) continue;
              for (int64_t ic = 0; ic < c; ++ic)
                acc +=
                    xd[((b * h + iy) * wi + ix) * c + ic] * wd[((oc * c + ic) * kh + ky) * kw + kx];
            }
          out[((b * ho + oy) * wo + ox) * o + oc] = acc;
        }
  return out;
}

TEST_P(Dense, Conv2dKernelsStridesPadding) {
  const DType dt = GetParam();
  struct Case {
    Shape x;
    int64_t o, k;
    int stride, pad;
    bool bias;
  };
  for (const Case& c :
       {Case{{2, 9, 7, 16}, 24, 3, 1, 1, true},  // 3×3 same, odd sizes, batch 2
        Case{{1, 8, 8, 32}, 16, 1, 1, 0, true},  // 1×1
        Case{{1, 9, 9, 8}, 8, 3, 2, 1, false},   // strided downsample
        Case{{1, 1, 1, 4}, 5, 1, 1, 0, true},    // 1×1 spatial
        Case{{2, 6, 10, 3}, 7, 3, 1, 0, true},   // valid padding, 3 channels in
        // Few input channels, as a VAE's conv_in (z = 4; RGB = 3).
        Case{{1, 8, 8, 4}, 32, 3, 1, 1, true}, Case{{1, 16, 16, 3}, 16, 3, 1, 1, true}}) {
    Tensor x = random_tensor(c.x, dt, 6),
           w = random_tensor({c.o, c.x[3], c.k, c.k}, dt, 7, -0.3f, 0.3f);
    Tensor b = c.bias ? random_tensor({c.o}, dt, 8) : Tensor();
    Tensor y = ops::conv2d(x, w, b, {c.stride, c.pad});
    const int64_t ho = (c.x[1] + 2 * c.pad - c.k) / c.stride + 1;
    const int64_t wo = (c.x[2] + 2 * c.pad - c.k) / c.stride + 1;
    ASSERT_EQ(y.shape(), (Shape{c.x[0], ho, wo, c.o}));
    expect_close(y, conv_ref(x, w, b, c.stride, c.pad, y.shape()),
                 dense_tolerance(dt, c.x[3] * c.k * c.k), "conv2d " + c.x.str());
    // The cached reordered weight must be reused correctly on a second call.
    Tensor y2 = ops::conv2d(x, w, b, {c.stride, c.pad});
    EXPECT_EQ(y.to_floats(), y2.to_floats());
  }
}

std::vector<double> attention_ref(const Tensor& q, const Tensor& k, const Tensor& v, int heads,
                                  const Tensor& mask) {
  auto qd = to_doubles(q), kd = to_doubles(k), vd = to_doubles(v);
  std::vector<double> md = mask.defined() ? to_doubles(mask) : std::vector<double>();
  const int64_t b = q.dim(0), nq = q.dim(1), nk = k.dim(1);
  const int64_t d = q.dim(2) / heads, dv = v.dim(2) / heads;
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  std::vector<double> out(static_cast<size_t>(b * nq * heads * dv));
  std::vector<double> s(static_cast<size_t>(nk));
  for (int64_t z = 0; z < b; ++z)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < nq; ++i) {
        double mx = -INFINITY;
        for (int64_t j = 0; j < nk; ++j) {
          double acc = 0;
          for (int64_t e = 0; e < d; ++e)
            acc +=
                qd[(z * nq + i) * heads * d + h * d + e] * kd[(z * nk + j) * heads * d + h * d + e];
          acc *= scale;
          if (!md.empty()) {
            const int64_t mz = mask.dim(0) == 1 ? 0 : z, mi = mask.dim(1) == 1 ? 0 : i;
            acc += md[(mz * mask.dim(1) + mi) * nk + j];
          }
          s[j] = acc;
          mx = std::max(mx, acc);
        }
        double sum = 0;
        for (int64_t j = 0; j < nk; ++j) sum += (s[j] = std::exp(s[j] - mx));
        for (int64_t e = 0; e < dv; ++e) {
          double acc = 0;
          for (int64_t j = 0; j < nk; ++j) acc += s[j] * vd[(z * nk + j) * heads * dv + h * dv + e];
          out[(z * nq + i) * heads * dv + h * dv + e] = acc / sum;
        }
      }
  return out;
}

// Attention outputs are convex combinations of V rows (|out| ≤ 1 here); bf16 rounds P
// to 8 bits before P·V, an error of up to 2^-9 per weight that averages out over keys.
test::Tolerance attention_tolerance(DType dt) {
  return dt == DType::F32 ? test::Tolerance{2e-5, 1e-4} : test::Tolerance{1e-2, 1e-2};
}

TEST_P(Dense, AttentionHeadSizes) {
  const DType dt = GetParam();
  struct Case {
    int64_t b, nq, nk;
    int heads;
    int64_t d;
  };
  // Head sizes of SD 1.5 (40), SDXL (64) and FLUX (128); cross-attention with 77 keys;
  // token counts that are not multiples of the tile sizes.
  for (const Case& c :
       {Case{2, 300, 77, 2, 40}, Case{1, 257, 1100, 2, 64}, Case{2, 33, 33, 1, 128},
        Case{1, 1, 1, 3, 8}, Case{1, 1100, 300, 1, 16},
        // One head over a feature map's tokens, as a VAE's mid attention.
        Case{1, 64, 64, 1, 32}, Case{1, 256, 256, 1, 512}}) {  // last: 2 query tiles
    Tensor q = random_tensor({c.b, c.nq, c.heads * c.d}, dt, 10, -2, 2);
    Tensor k = random_tensor({c.b, c.nk, c.heads * c.d}, dt, 11, -2, 2);
    Tensor v = random_tensor({c.b, c.nk, c.heads * c.d}, dt, 12);
    Tensor y = ops::attention(q, k, v, c.heads);
    ASSERT_EQ(y.shape(), q.shape());
    expect_close(y, attention_ref(q, k, v, c.heads, {}), attention_tolerance(dt),
                 "attention nq=" + std::to_string(c.nq) + " nk=" + std::to_string(c.nk) +
                     " d=" + std::to_string(c.d));
  }
}

TEST_P(Dense, AttentionMaskAndValueWidth) {
  const DType dt = GetParam();
  const int64_t b = 2, nq = 70, nk = 90, heads = 2, d = 16, dv = 24;
  Tensor q = random_tensor({b, nq, heads * d}, dt, 13, -2, 2);
  Tensor k = random_tensor({b, nk, heads * d}, dt, 14, -2, 2);
  Tensor v = random_tensor({b, nk, heads * dv}, dt, 15);
  // A padding mask per batch item ([B, 1, Nk]): -inf hides the last keys.
  std::vector<float> m(static_cast<size_t>(b * nk), 0.0f);
  for (int64_t j = 60; j < nk; ++j) m[j] = -std::numeric_limits<float>::infinity();
  for (int64_t j = 0; j < nk; ++j) m[nk + j] = static_cast<float>(j % 5) * -0.5f;
  Tensor mask = Tensor::from_floats(m, {b, 1, nk});
  Tensor y = ops::attention(q, k, v, heads, mask);
  ASSERT_EQ(y.shape(), (Shape{b, nq, heads * dv}));
  expect_close(y, attention_ref(q, k, v, heads, mask), attention_tolerance(dt), "masked attention");
}

INSTANTIATE_TEST_SUITE_P(AllDtypes, Dense, ::testing::Values(DType::F32, DType::BF16),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

TEST(DenseErrors, MessagesNameTheOp) {
  Tensor x = Tensor::zeros({2, 8}, DType::F32), w = Tensor::zeros({4, 7}, DType::F32);
  try {
    ops::linear(x, w);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("[linear] x has 8 features", 0), 0u) << e.what();
  }
  Tensor img = Tensor::zeros({1, 4, 4, 3}, DType::F32),
         cw = Tensor::zeros({8, 4, 3, 3}, DType::F32);
  EXPECT_THROW(ops::conv2d(img, cw), Error);
  Tensor q = Tensor::zeros({1, 4, 10}, DType::F32);
  EXPECT_THROW(ops::attention(q, q, q, 3), Error);  // 10 not divisible by 3 heads
  Tensor bf = Tensor::zeros({4, 8}, DType::BF16);
  EXPECT_THROW(ops::linear(x, bf), Error);  // mixed dtypes
}

}  // namespace
}  // namespace darkroom
