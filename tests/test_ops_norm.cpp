// GroupNorm, LayerNorm, RmsNorm and Softmax through the public ops, against
// double-precision loops written from each op's definition (PyTorch semantics: biased
// variance). Every case runs in f32, bf16 and f16 with test_util.h's tolerances.
#include <cmath>
#include <string>
#include <vector>

#include "backend/ops.h"
#include "test_util.h"

namespace darkroom {
namespace {

using test::expect_close;
using test::expect_error;
using test::label;
using test::random_tensor;
using test::to_doubles;

constexpr DType kDtypes[] = {DType::F32, DType::BF16, DType::F16};

double silu(double v) {
  return v / (1.0 + std::exp(-v));
}

// ---------------------------------------------------------------- GroupNorm

// x [N, S, C]; w, b empty when absent.
std::vector<double> ref_group_norm(const std::vector<double>& x, int64_t n_batch, int64_t s_len,
                                   int64_t c, int64_t groups, const std::vector<double>& w,
                                   const std::vector<double>& b, double eps, bool with_silu) {
  std::vector<double> out(x.size());
  const int64_t cg = c / groups;
  for (int64_t n = 0; n < n_batch; ++n) {
    for (int64_t g = 0; g < groups; ++g) {
      double sum = 0;
      for (int64_t s = 0; s < s_len; ++s)
        for (int64_t i = g * cg; i < (g + 1) * cg; ++i) sum += x[(n * s_len + s) * c + i];
      const double mean = sum / double(s_len * cg);
      double sq = 0;
      for (int64_t s = 0; s < s_len; ++s)
        for (int64_t i = g * cg; i < (g + 1) * cg; ++i) {
          const double d = x[(n * s_len + s) * c + i] - mean;
          sq += d * d;
        }
      const double rstd = 1.0 / std::sqrt(sq / double(s_len * cg) + eps);
      for (int64_t s = 0; s < s_len; ++s)
        for (int64_t i = g * cg; i < (g + 1) * cg; ++i) {
          const int64_t k = (n * s_len + s) * c + i;
          double y = (x[k] - mean) * rstd;
          if (!w.empty()) y *= w[i];
          if (!b.empty()) y += b[i];
          out[k] = with_silu ? silu(y) : y;
        }
    }
  }
  return out;
}

struct GroupNormCase {
  Shape shape;  // [N, ..., C]
  int groups;
  bool weight, bias, silu;
  float lo = -1.0f, hi = 1.0f;  // input range
  float eps = 1e-5f;
};

void check_group_norm(const GroupNormCase& tc, const std::string& what) {
  const int64_t n_batch = tc.shape[0], c = tc.shape[-1];
  const int64_t s_len = tc.shape.numel() / (n_batch * c);
  for (DType t : kDtypes) {
    const Tensor x = random_tensor(tc.shape, t, 1, tc.lo, tc.hi);
    const Tensor w = tc.weight ? random_tensor({c}, t, 2, 0.5f, 1.5f) : Tensor();
    const Tensor b = tc.bias ? random_tensor({c}, t, 3) : Tensor();
    const Tensor y = ops::group_norm(x, tc.groups, w, b, tc.eps, tc.silu);
    ASSERT_EQ(y.shape(), tc.shape);
    ASSERT_EQ(y.dtype(), t);
    const auto ref =
        ref_group_norm(to_doubles(x), n_batch, s_len, c, tc.groups,
                       w.defined() ? to_doubles(w) : std::vector<double>{},
                       b.defined() ? to_doubles(b) : std::vector<double>{}, tc.eps, tc.silu);
    expect_close(y, ref, label(what, t));
  }
}

TEST(GroupNorm, AffineBatchOfTwo) {
  // S = 13·11 = 143 positions: more than one block of positions, the last one partial.
  check_group_norm({{2, 13, 11, 96}, 32, true, true, false}, "[2,13,11,96] g32");
}

TEST(GroupNorm, StableDiffusionShape) {
  // The UNet's first GroupNorm: 320 channels in 32 groups over a 64×64 latent.
  check_group_norm({{2, 64, 64, 320}, 32, true, true, true}, "[2,64,64,320] g32 silu");
}

TEST(GroupNorm, OddSizes) {
  check_group_norm({{3, 7, 5, 77}, 7, true, true, false}, "[3,7,5,77] g7");
}

TEST(GroupNorm, OneByOneSpatial) {
  check_group_norm({{3, 1, 1, 64}, 32, true, true, false}, "[3,1,1,64] g32");
}

TEST(GroupNorm, OneGroup) {
  check_group_norm({{2, 9, 9, 48}, 1, true, true, false}, "[2,9,9,48] g1");
}

TEST(GroupNorm, GroupPerChannel) {
  check_group_norm({{2, 6, 5, 40}, 40, true, true, false}, "[2,6,5,40] g40");
}

TEST(GroupNorm, WithoutAffine) {
  check_group_norm({{2, 8, 8, 64}, 32, false, false, false}, "no affine");
  check_group_norm({{2, 8, 8, 64}, 32, false, false, true}, "no affine, silu");
}

TEST(GroupNorm, WeightOrBiasAlone) {
  check_group_norm({{2, 8, 8, 64}, 16, true, false, false}, "weight only");
  check_group_norm({{2, 8, 8, 64}, 16, false, true, false}, "bias only");
}

TEST(GroupNorm, FusedSilu) {
  check_group_norm({{1, 12, 10, 128}, 32, true, true, true}, "[1,12,10,128] g32 silu");
}

TEST(GroupNorm, TokensAndVectors) {
  // [N, T, C] and [N, C] (a single position) are accepted as well as NHWC.
  check_group_norm({{2, 77, 64}, 8, true, true, false}, "[2,77,64] g8");
  check_group_norm({{4, 64}, 16, true, true, false}, "[4,64] g16");
}

TEST(GroupNorm, LargeMeanSmallSpread) {
  // Values in [100, 101]: the variance (~0.08) is 1e-5 of the mean square, so a
  // Σx² − (Σx)²/n formula in f32 would lose it; the reference has no such trouble.
  check_group_norm({{2, 16, 16, 64}, 32, true, true, false, 100.0f, 101.0f}, "mean 100 spread 1");
}

TEST(GroupNorm, Eps) {
  // Constant groups have zero variance, so the output is bias exactly as eps sets rstd.
  check_group_norm({{2, 4, 4, 32}, 8, true, true, false, 0.5f, 0.5f, 1e-2f}, "constant input");
  check_group_norm({{2, 4, 4, 32}, 8, true, true, false, -1.0f, 1.0f, 0.5f}, "eps 0.5");
}

TEST(GroupNorm, BadInput) {
  const Tensor x = random_tensor({2, 4, 4, 30}, DType::F32, 1);
  expect_error([&] { ops::group_norm(x, 4, {}, {}); }, "[group_norm]");  // 30 % 4 != 0
  expect_error([&] { ops::group_norm(x, 0, {}, {}); }, "[group_norm]");
  const Tensor w = random_tensor({32}, DType::F32, 2);
  expect_error([&] { ops::group_norm(x, 5, w, {}); }, "[group_norm]");  // weight [32] vs C 30
  const Tensor b16 = random_tensor({30}, DType::BF16, 3);
  expect_error([&] { ops::group_norm(x, 5, {}, b16); }, "[group_norm]");  // dtype mismatch
  expect_error([&] { ops::group_norm(random_tensor({30}, DType::F32, 4), 5, {}, {}); },
               "[group_norm]");  // rank 1
}

// ---------------------------------------------------------------- LayerNorm / RmsNorm

// x [M, C]; w, b empty when absent.
std::vector<double> ref_layer_norm(const std::vector<double>& x, int64_t c,
                                   const std::vector<double>& w, const std::vector<double>& b,
                                   double eps) {
  std::vector<double> out(x.size());
  for (size_t r = 0; r < x.size() / size_t(c); ++r) {
    const double* row = x.data() + r * size_t(c);
    double sum = 0, sq = 0;
    for (int64_t i = 0; i < c; ++i) sum += row[i];
    const double mean = sum / double(c);
    for (int64_t i = 0; i < c; ++i) sq += (row[i] - mean) * (row[i] - mean);
    const double rstd = 1.0 / std::sqrt(sq / double(c) + eps);
    for (int64_t i = 0; i < c; ++i) {
      double y = (row[i] - mean) * rstd;
      if (!w.empty()) y *= w[i];
      if (!b.empty()) y += b[i];
      out[r * size_t(c) + i] = y;
    }
  }
  return out;
}

void check_layer_norm(const Shape& shape, bool weight, bool bias, const std::string& what,
                      float lo = -1.0f, float hi = 1.0f) {
  const int64_t c = shape[-1];
  for (DType t : kDtypes) {
    const Tensor x = random_tensor(shape, t, 11, lo, hi);
    const Tensor w = weight ? random_tensor({c}, t, 12, 0.5f, 1.5f) : Tensor();
    const Tensor b = bias ? random_tensor({c}, t, 13) : Tensor();
    const Tensor y = ops::layer_norm(x, w, b, 1e-5f);
    ASSERT_EQ(y.shape(), shape);
    expect_close(
        y,
        ref_layer_norm(to_doubles(x), c, w.defined() ? to_doubles(w) : std::vector<double>{},
                       b.defined() ? to_doubles(b) : std::vector<double>{}, 1e-5),
        label(what, t));
  }
}

TEST(LayerNorm, Batched) {
  check_layer_norm({2, 77, 768}, true, true, "[2,77,768]");
}
TEST(LayerNorm, OddWidth) {
  check_layer_norm({5, 77}, true, true, "[5,77]");
}
TEST(LayerNorm, SingleRow) {
  check_layer_norm({1, 320}, true, true, "[1,320]");
}
TEST(LayerNorm, SingleColumn) {
  check_layer_norm({6, 1}, true, true, "[6,1]: output = bias");
}
TEST(LayerNorm, WithoutAffine) {
  check_layer_norm({4, 9, 33}, false, false, "no affine");
  check_layer_norm({4, 9, 33}, true, false, "weight only");
  check_layer_norm({4, 9, 33}, false, true, "bias only");
}
TEST(LayerNorm, LargeMeanSmallSpread) {
  check_layer_norm({8, 1024}, true, true, "mean 100 spread 1", 100.0f, 101.0f);
}

TEST(LayerNorm, BadInput) {
  const Tensor x = random_tensor({3, 16}, DType::F32, 1);
  expect_error([&] { ops::layer_norm(x, random_tensor({15}, DType::F32, 2), {}); }, "[layer_norm]");
  expect_error([&] { ops::layer_norm(x, {}, random_tensor({16}, DType::F16, 2)); }, "[layer_norm]");
}

// x [M, C]; w empty when absent.
std::vector<double> ref_rms_norm(const std::vector<double>& x, int64_t c,
                                 const std::vector<double>& w, double eps) {
  std::vector<double> out(x.size());
  for (size_t r = 0; r < x.size() / size_t(c); ++r) {
    const double* row = x.data() + r * size_t(c);
    double sq = 0;
    for (int64_t i = 0; i < c; ++i) sq += row[i] * row[i];
    const double rstd = 1.0 / std::sqrt(sq / double(c) + eps);
    for (int64_t i = 0; i < c; ++i) out[r * size_t(c) + i] = row[i] * rstd * (w.empty() ? 1 : w[i]);
  }
  return out;
}

void check_rms_norm(const Shape& shape, bool weight, float eps, const std::string& what) {
  const int64_t c = shape[-1];
  for (DType t : kDtypes) {
    const Tensor x = random_tensor(shape, t, 21);
    const Tensor w = weight ? random_tensor({c}, t, 22, 0.5f, 1.5f) : Tensor();
    const Tensor y = ops::rms_norm(x, w, eps);
    ASSERT_EQ(y.shape(), shape);
    expect_close(
        y, ref_rms_norm(to_doubles(x), c, w.defined() ? to_doubles(w) : std::vector<double>{}, eps),
        label(what, t));
  }
}

TEST(RmsNorm, Batched) {
  check_rms_norm({2, 77, 256}, true, 1e-6f, "[2,77,256]");
}
TEST(RmsNorm, OddWidth) {
  check_rms_norm({5, 77}, true, 1e-6f, "[5,77]");
}
TEST(RmsNorm, SingleRow) {
  check_rms_norm({1, 4096}, true, 1e-6f, "[1,4096]");
}
TEST(RmsNorm, WithoutWeight) {
  check_rms_norm({3, 7, 40}, false, 1e-6f, "no weight");
}
TEST(RmsNorm, Eps) {
  check_rms_norm({4, 10}, true, 0.3f, "eps 0.3");
}

TEST(RmsNorm, BadInput) {
  const Tensor x = random_tensor({3, 16}, DType::BF16, 1);
  expect_error([&] { ops::rms_norm(x, random_tensor({3, 16}, DType::BF16, 2)); }, "[rms_norm]");
  expect_error([&] { ops::rms_norm(x, random_tensor({16}, DType::F32, 2)); }, "[rms_norm]");
}

// ---------------------------------------------------------------- Softmax

std::vector<double> ref_softmax(const std::vector<double>& x, int64_t c) {
  std::vector<double> out(x.size());
  for (size_t r = 0; r < x.size() / size_t(c); ++r) {
    const double* row = x.data() + r * size_t(c);
    double mx = row[0];
    for (int64_t i = 1; i < c; ++i) mx = std::max(mx, row[i]);
    double sum = 0;
    for (int64_t i = 0; i < c; ++i) sum += std::exp(row[i] - mx);
    for (int64_t i = 0; i < c; ++i) out[r * size_t(c) + i] = std::exp(row[i] - mx) / sum;
  }
  return out;
}

void check_softmax(const Shape& shape, float lo, float hi, const std::string& what) {
  for (DType t : kDtypes) {
    const Tensor x = random_tensor(shape, t, 31, lo, hi);
    const Tensor y = ops::softmax(x);
    ASSERT_EQ(y.shape(), shape);
    expect_close(y, ref_softmax(to_doubles(x), shape[-1]), label(what, t));
  }
}

TEST(Softmax, Rows) {
  check_softmax({6, 77}, -4.0f, 4.0f, "[6,77]");
}
TEST(Softmax, Rank3) {
  check_softmax({2, 8, 1000}, -4.0f, 4.0f, "[2,8,1000]");
}
TEST(Softmax, SingleRow) {
  check_softmax({1, 33}, -4.0f, 4.0f, "[1,33]");
}
TEST(Softmax, SingleColumn) {
  check_softmax({5, 1}, -4.0f, 4.0f, "[5,1]: all ones");
}
TEST(Softmax, LargeLogits) {
  // exp(200) overflows f32: only a max-subtracted softmax gets these right.
  check_softmax({4, 50}, 100.0f, 200.0f, "logits in [100, 200)");
  check_softmax({4, 50}, -200.0f, -100.0f, "logits in [-200, -100)");
}

TEST(Softmax, MaskedEntriesAreZero) {
  // A -inf score (an attention mask) gets probability exactly 0.
  const float inf = INFINITY;
  const Tensor x = Tensor::from_floats(std::vector<float>{1.0f, -inf, 2.0f, -inf}, {1, 4});
  const std::vector<float> y = ops::softmax(x).to_floats();
  const double e = std::exp(-1.0);
  EXPECT_NEAR(y[0], e / (1 + e), 1e-6);
  EXPECT_EQ(y[1], 0.0f);
  EXPECT_NEAR(y[2], 1 / (1 + e), 1e-6);
  EXPECT_EQ(y[3], 0.0f);
}

TEST(Softmax, BadInput) {
  expect_error([&] { ops::softmax(Tensor::empty({3, 0}, DType::F32)); }, "[softmax]");
  expect_error([&] { ops::softmax(Tensor::zeros({3, 4}, DType::I32)); }, "[softmax]");
}

}  // namespace
}  // namespace darkroom
