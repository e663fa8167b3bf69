// Layout and data-movement ops (concat, upsample, resize, timestep embedding, embedding,
// permute, slice, cast) against plain reference loops written here from each op's
// definition. Pure copies are compared bit for bit; arithmetic ops in double with the
// tolerances of test_util.h.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "backend/ops.h"
#include "core/half.h"
#include "test_util.h"

namespace darkroom {
namespace {

using test::expect_close;
using test::expect_error;
using test::label;
using test::random_tensor;
using test::to_doubles;
using test::Tolerance;

constexpr Tolerance kExact{0.0, 0.0};
const DType kComputeDtypes[] = {DType::F32, DType::BF16, DType::F16};

// A tensor of any dtype filled with random bytes (compared as bytes, never as values).
Tensor random_bytes(const Shape& shape, DType dtype, uint64_t seed) {
  Tensor t = Tensor::empty(shape, dtype);
  std::mt19937_64 rng(seed);
  uint8_t* p = t.data<uint8_t>();
  for (size_t i = 0; i < t.nbytes(); ++i) p[i] = static_cast<uint8_t>(rng());
  return t;
}

std::vector<uint8_t> bytes_of(const Tensor& t) {
  const uint8_t* p = t.data<uint8_t>();
  return std::vector<uint8_t>(p, p + t.nbytes());
}

int norm_axis(int axis, int rank) {
  return axis < 0 ? axis + rank : axis;
}

// ---------------------------------------------------------------- Concat

// out[o, :] = input0[o, :] ++ input1[o, :] ++ ... viewing each as [outer, dim(axis)·inner].
std::vector<double> concat_ref(const std::vector<Tensor>& inputs, int axis) {
  const int rank = inputs[0].ndim();
  const int ax = norm_axis(axis, rank);
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < ax; ++d) outer *= inputs[0].dim(d);
  for (int d = ax + 1; d < rank; ++d) inner *= inputs[0].dim(d);
  std::vector<std::vector<double>> values;
  for (const Tensor& t : inputs) values.push_back(to_doubles(t));
  std::vector<double> out;
  for (int64_t o = 0; o < outer; ++o)
    for (size_t i = 0; i < inputs.size(); ++i) {
      const int64_t run = inputs[i].dim(ax) * inner;
      for (int64_t j = 0; j < run; ++j) out.push_back(values[i][static_cast<size_t>(o * run + j)]);
    }
  return out;
}

TEST(Concat, MatchesReferenceOnEveryAxis) {
  for (DType dt : kComputeDtypes)
    for (int axis : {0, 1, 2, 3, -1, -3}) {
      // Sizes 2, 0, 3 along the axis (an empty input contributes nothing).
      std::vector<Tensor> inputs;
      uint64_t seed = 10;
      for (int64_t n : {2, 0, 3}) {
        std::vector<int64_t> dims = {2, 3, 4, 5};
        dims[static_cast<size_t>(norm_axis(axis, 4))] = n;
        inputs.push_back(random_tensor(Shape(dims), dt, seed++));
      }
      Tensor out = ops::concat(inputs, axis);
      std::vector<int64_t> want = {2, 3, 4, 5};
      want[static_cast<size_t>(norm_axis(axis, 4))] = 5;
      EXPECT_EQ(out.shape(), Shape(want));
      EXPECT_EQ(out.dtype(), dt);
      expect_close(out, concat_ref(inputs, axis), kExact,
                   "axis " + std::to_string(axis) + " " + std::string(dtype_name(dt)));
    }
}

TEST(Concat, SingleInputAndLargeThreaded) {
  Tensor a = random_tensor({3, 7}, DType::F32, 1);
  expect_close(ops::concat({a}, 1), to_doubles(a), kExact, "single input");
  // Channel concat of UNet skip connections: big enough to spread over the pool.
  std::vector<Tensor> skip = {random_tensor({2, 48, 48, 160}, DType::BF16, 2),
                              random_tensor({2, 48, 48, 96}, DType::BF16, 3)};
  expect_close(ops::concat(skip, -1), concat_ref(skip, -1), kExact, "channels");
  std::vector<Tensor> batch = {random_tensor({1, 64, 64, 64}, DType::F16, 4),
                               random_tensor({2, 64, 64, 64}, DType::F16, 5)};
  expect_close(ops::concat(batch, 0), concat_ref(batch, 0), kExact, "batch");
}

TEST(Concat, RejectsBadInput) {
  Tensor a = random_tensor({2, 3, 4}, DType::F32, 1);
  Tensor b = random_tensor({2, 5, 4}, DType::F32, 2);
  expect_error([&] { ops::concat({a, b}, 2); }, "[concat]");  // mismatch outside the axis
  expect_error([&] { ops::concat({a, random_tensor({2, 3}, DType::F32, 3)}, 0); }, "[concat]");
  expect_error([&] { ops::concat({a, random_tensor({2, 3, 4}, DType::BF16, 4)}, 0); }, "[concat]");
  expect_error([&] { ops::concat({a, a}, 3); }, "[concat]");
  expect_error([&] { ops::concat({}, 0); }, "[concat]");
  EXPECT_EQ(ops::concat({a, b}, 1).shape(), Shape({2, 8, 4}));
}

// ---------------------------------------------------------------- Upsample

TEST(Upsample, Nearest2xMatchesReference) {
  const Shape shapes[] = {{2, 3, 5, 7}, {1, 1, 1, 1}, {1, 4, 3, 320}, {2, 32, 32, 64}};
  for (DType dt : kComputeDtypes)
    for (const Shape& s : shapes) {
      Tensor x = random_tensor(s, dt, 7);
      Tensor out = ops::upsample_nearest2x(x);
      const int64_t n = s[0], h = s[1], w = s[2], c = s[3];
      ASSERT_EQ(out.shape(), Shape({n, 2 * h, 2 * w, c}));
      std::vector<double> xv = to_doubles(x), ref;
      for (int64_t b = 0; b < n; ++b)
        for (int64_t y = 0; y < 2 * h; ++y)
          for (int64_t xx = 0; xx < 2 * w; ++xx)
            for (int64_t ch = 0; ch < c; ++ch)
              ref.push_back(xv[static_cast<size_t>(((b * h + y / 2) * w + xx / 2) * c + ch)]);
      expect_close(out, ref, kExact, s.str() + " " + std::string(dtype_name(dt)));
    }
}

// ---------------------------------------------------------------- Resize

struct Tap {
  int64_t index;
  double weight;
};

// Keys' cubic convolution kernel with A = -0.75 (PyTorch's bicubic).
double keys_cubic(double x) {
  const double a = -0.75;
  x = std::fabs(x);
  if (x <= 1) return (a + 2) * x * x * x - (a + 3) * x * x + 1;
  if (x < 2) return a * x * x * x - 5 * a * x * x + 8 * a * x - 4 * a;
  return 0;
}

// Taps of output position o along an axis of `in` → `out`, F.interpolate with
// align_corners=False: src = (o + 0.5)·in/out − 0.5.
std::vector<Tap> ref_taps(int64_t o, int64_t in, int64_t out, ResizeMode mode) {
  double src =
      (static_cast<double>(o) + 0.5) * static_cast<double>(in) / static_cast<double>(out) - 0.5;
  std::vector<Tap> taps;
  if (mode == ResizeMode::Bilinear) {
    if (src < 0) src = 0;
    int64_t i0 = std::min<int64_t>(static_cast<int64_t>(std::floor(src)), in - 1);
    int64_t i1 = std::min<int64_t>(i0 + 1, in - 1);
    double l1 = src - static_cast<double>(i0);
    taps.push_back({i0, 1 - l1});
    taps.push_back({i1, l1});
  } else {
    const double f = std::floor(src);
    for (int k = -1; k <= 2; ++k) {
      const int64_t i = std::clamp<int64_t>(static_cast<int64_t>(f) + k, 0, in - 1);
      taps.push_back({i, keys_cubic(src - (f + k))});
    }
  }
  return taps;
}

std::vector<double> resize_ref(const Tensor& x, int64_t ho, int64_t wo, ResizeMode mode) {
  const int64_t n = x.dim(0), h = x.dim(1), w = x.dim(2), c = x.dim(3);
  std::vector<double> xv = to_doubles(x), out;
  for (int64_t b = 0; b < n; ++b)
    for (int64_t oy = 0; oy < ho; ++oy)
      for (int64_t ox = 0; ox < wo; ++ox)
        for (int64_t ch = 0; ch < c; ++ch) {
          double acc = 0;
          for (const Tap& ty : ref_taps(oy, h, ho, mode))
            for (const Tap& tx : ref_taps(ox, w, wo, mode))
              acc += ty.weight * tx.weight *
                     xv[static_cast<size_t>(((b * h + ty.index) * w + tx.index) * c + ch)];
          out.push_back(acc);
        }
  return out;
}

struct ResizeCase {
  Shape in;
  int64_t ho, wo;
};

TEST(Resize, MatchesPyTorchFormulas) {
  const ResizeCase cases[] = {
      {{2, 3, 5, 3}, 7, 11},    // upscale, non-square, batch 2
      {{1, 16, 12, 19}, 5, 7},  // downscale
      {{1, 1, 1, 2}, 4, 3},     // 1×1 input
      {{2, 6, 4, 5}, 1, 1},     // 1×1 output
      {{1, 5, 9, 8}, 10, 4},    // up in H, down in W
      {{1, 8, 8, 4}, 8, 8},     // same size
      {{2, 40, 40, 32}, 64, 56},
  };
  for (ResizeMode mode : {ResizeMode::Bilinear, ResizeMode::Bicubic})
    for (DType dt : {DType::F32, DType::BF16})
      for (const ResizeCase& rc : cases) {
        Tensor x = random_tensor(rc.in, dt, 21);
        Tensor out = ops::resize(x, rc.ho, rc.wo, mode);
        ASSERT_EQ(out.shape(), Shape({rc.in[0], rc.ho, rc.wo, rc.in[3]}));
        expect_close(out, resize_ref(x, rc.ho, rc.wo, mode),
                     rc.in.str() + " → " + std::to_string(rc.ho) + "x" + std::to_string(rc.wo) +
                         (mode == ResizeMode::Bilinear ? " bilinear " : " bicubic ") +
                         std::string(dtype_name(dt)));
      }
  for (ResizeMode mode : {ResizeMode::Bilinear, ResizeMode::Bicubic}) {
    Tensor x = random_tensor({1, 9, 6, 4}, DType::F16, 22);
    expect_close(ops::resize(x, 13, 4, mode), resize_ref(x, 13, 4, mode), "f16");
  }
}

TEST(Resize, SameSizeIsIdentity) {
  // Both kernels weigh the centre tap 1 and the others 0 when in == out.
  Tensor x = random_tensor({2, 5, 7, 3}, DType::F32, 3);
  for (ResizeMode mode : {ResizeMode::Bilinear, ResizeMode::Bicubic})
    expect_close(ops::resize(x, 5, 7, mode), to_doubles(x), "identity");
}

TEST(Resize, BilinearHandValues) {
  // [[0, 1], [2, 3]] → 4×4. Source coordinates per axis: 0 (clamped from −0.25), 0.25,
  // 0.75, 1.25 (upper tap clamped to index 1).
  Tensor x = Tensor::from_floats(std::vector<float>{0, 1, 2, 3}, {1, 2, 2, 1});
  const std::vector<double> want = {0,   0.25, 0.75, 1,   0.5, 0.75, 1.25, 1.5,
                                    1.5, 1.75, 2.25, 2.5, 2,   2.25, 2.75, 3};
  for (DType dt : kComputeDtypes)
    expect_close(ops::resize(ops::cast(x, dt), 4, 4, ResizeMode::Bilinear), want,
                 std::string(dtype_name(dt)));
}

TEST(Resize, BicubicHandValues) {
  // [0, 1] → 4 along W (H stays 1). Output 0 has src −0.25: floor −1, t = 0.75, taps
  // clamped to values 0, 0, 0, 1, so out = W(1.25) = −0.10546875; output 1 has src 0.25:
  // taps 0, 0, 1, 1 → W(0.75) + W(1.75) = 0.26171875 − 0.03515625. The rest by symmetry.
  Tensor x = Tensor::from_floats(std::vector<float>{0, 1}, {1, 1, 2, 1});
  expect_close(ops::resize(x, 1, 4, ResizeMode::Bicubic),
               {-0.10546875, 0.2265625, 0.7734375, 1.10546875}, "bicubic [0, 1]");
}

TEST(Resize, RejectsEmpty) {
  Tensor x = random_tensor({1, 4, 4, 3}, DType::F32, 1);
  expect_error([&] { ops::resize(x, 0, 4, ResizeMode::Bilinear); }, "[resize]");
  expect_error([&] { ops::resize(x, 4, 0, ResizeMode::Bicubic); }, "[resize]");
  expect_error(
      [&] {
        ops::resize(Tensor::empty({1, 0, 4, 3}, DType::F32), 4, 4, ResizeMode::Bilinear);
      },
      "[resize]");
  expect_error(
      [&] {
        ops::resize(random_tensor({4, 4, 3}, DType::F32, 2), 8, 8, ResizeMode::Bilinear);
      },
      "[resize]");
}

// ---------------------------------------------------------------- TimestepEmbedding

// [cos, sin] (flipped) or [sin, cos] of args[i], then a zero column when dim is odd.
std::vector<double> embedding_layout(const std::vector<std::vector<double>>& args, int dim,
                                     bool flip) {
  std::vector<double> out;
  for (const std::vector<double>& a : args) {
    for (double v : a) out.push_back(flip ? std::cos(v) : std::sin(v));
    for (double v : a) out.push_back(flip ? std::sin(v) : std::cos(v));
    if (dim % 2) out.push_back(0.0);
  }
  return out;
}

TEST(TimestepEmbedding, MatchesDefinitionForSmallT) {
  // t ≤ 1 keeps the f32 argument within ~1e-7 of the exact one, so the pure math in
  // double is the reference.
  const std::vector<float> ts = {0.0f, 0.25f, 0.5f, 1.0f};
  Tensor t = Tensor::from_floats(ts, {4});
  struct Case {
    int dim;
    bool flip;
    float shift, max_period;
  };
  const Case cases[] = {{320, true, 0, 10000},
                        {256, false, 1, 10000},
                        {7, true, 1, 10000},
                        {2, false, 0, 10000},
                        {33, false, 0, 100}};
  for (DType dt : kComputeDtypes)
    for (const Case& c : cases) {
      const int half = c.dim / 2;
      std::vector<std::vector<double>> args;
      for (float tv : ts) {
        std::vector<double> a;
        for (int i = 0; i < half; ++i)
          a.push_back(tv * std::exp(-std::log(static_cast<double>(c.max_period)) * i /
                                    (half - static_cast<double>(c.shift))));
        args.push_back(a);
      }
      Tensor out = ops::timestep_embedding(t, c.dim, c.flip, c.shift, c.max_period, dt);
      ASSERT_EQ(out.shape(), Shape({4, c.dim}));
      ASSERT_EQ(out.dtype(), dt);
      expect_close(out, embedding_layout(args, c.dim, c.flip),
                   "dim " + std::to_string(c.dim) + " " + std::string(dtype_name(dt)));
    }
}

TEST(TimestepEmbedding, MatchesDiffusersF32Rounding) {
  // For t up to 1000 diffusers' f32 exponent and argument differ from the exact math by
  // up to ~7e-4; the reference rounds the same steps to f32 (exponent, its exp, the
  // product t·freq) and evaluates sin and cos in double. A one-ulp difference between
  // f32 exp implementations moves the argument by ≤ ulp(1000) ≈ 6e-5, inside 1e-4.
  const std::vector<float> ts = {0.0f, 1.0f, 500.0f, 981.5f, 999.0f};
  Tensor t = Tensor::from_floats(ts, {5});
  for (int dim : {320, 1280, 9})
    for (bool flip : {true, false}) {
      const int half = dim / 2;
      const float shift = flip ? 0.0f : 1.0f;
      std::vector<std::vector<double>> args;
      for (float tv : ts) {
        std::vector<double> a;
        for (int i = 0; i < half; ++i) {
          float e = static_cast<float>(-std::log(10000.0)) * static_cast<float>(i);
          e = e / (static_cast<float>(half) - shift);
          const float freq = static_cast<float>(std::exp(static_cast<double>(e)));
          a.push_back(static_cast<double>(tv * freq));
        }
        args.push_back(a);
      }
      for (DType dt : {DType::F32, DType::BF16})
        expect_close(ops::timestep_embedding(t, dim, flip, shift, 10000.0f, dt),
                     embedding_layout(args, dim, flip),
                     "dim " + std::to_string(dim) + " " + std::string(dtype_name(dt)));
    }
}

TEST(TimestepEmbedding, RejectsBadInput) {
  Tensor t = Tensor::from_floats(std::vector<float>{1, 2}, {2});
  expect_error([&] { ops::timestep_embedding(t, 1); }, "[timestep_embedding]");
  expect_error([&] { ops::timestep_embedding(ops::cast(t, DType::BF16), 8); },
               "[timestep_embedding]");
  expect_error([&] { ops::timestep_embedding(t, 8, true, 0, 10000, DType::I32); },
               "[timestep_embedding]");
}

// ---------------------------------------------------------------- Embedding

template <class Id>
Tensor id_tensor(const std::vector<Id>& ids, const Shape& shape) {
  Tensor t = Tensor::empty(shape, sizeof(Id) == 4 ? DType::I32 : DType::I64);
  std::memcpy(t.raw(), ids.data(), ids.size() * sizeof(Id));
  return t;
}

template <class Id>
std::vector<double> embedding_ref(const std::vector<Id>& ids, const Tensor& table) {
  const std::vector<double> tv = to_doubles(table);
  const int64_t c = table.dim(1);
  std::vector<double> out;
  for (Id id : ids)
    for (int64_t j = 0; j < c; ++j) out.push_back(tv[static_cast<size_t>(id * c + j)]);
  return out;
}

TEST(Embedding, LooksUpRows) {
  const std::vector<int32_t> ids32 = {3, 0, 10, 3, 7, 1};
  const std::vector<int64_t> ids64(ids32.begin(), ids32.end());
  for (DType dt : kComputeDtypes) {
    Tensor table = random_tensor({11, 7}, dt, 5);
    Tensor a = ops::embedding(id_tensor(ids32, {2, 3}), table);
    ASSERT_EQ(a.shape(), Shape({2, 3, 7}));
    expect_close(a, embedding_ref(ids32, table), kExact, "i32");
    Tensor b = ops::embedding(id_tensor(ids64, {6}), table);
    ASSERT_EQ(b.shape(), Shape({6, 7}));
    expect_close(b, embedding_ref(ids64, table), kExact, "i64");
  }
  // CLIP-sized rows, enough ids to spread over the pool.
  Tensor table = random_tensor({500, 768}, DType::BF16, 6);
  std::vector<int64_t> ids(77);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int64_t>((i * 131) % 500);
  expect_close(ops::embedding(id_tensor(ids, {1, 77}), table), embedding_ref(ids, table), kExact,
               "77 tokens");
}

TEST(Embedding, RejectsOutOfRangeIds) {
  Tensor table = random_tensor({49408, 1}, DType::F32, 1);
  try {
    ops::embedding(id_tensor(std::vector<int64_t>{1, 50000}, {2}), table);
    ADD_FAILURE() << "no error for id 50000";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "[embedding] id 50000 is out of range for a table of 49408 rows");
  }
  Tensor small = random_tensor({11, 4}, DType::BF16, 2);
  expect_error(
      [&] {
        ops::embedding(id_tensor(std::vector<int32_t>{0, -1}, {2}), small);
      },
      "[embedding]");
  expect_error([&] { ops::embedding(id_tensor(std::vector<int32_t>{11}, {1}), small); },
               "[embedding]");
  expect_error([&] { ops::embedding(random_tensor({3}, DType::F32, 3), small); }, "[embedding]");
}

// ---------------------------------------------------------------- Permute

// out[i0, i1, ...] = x[...] with out axis k running over input axis axes[k], as bytes.
std::vector<uint8_t> permute_ref(const Tensor& x, const std::vector<int>& axes) {
  const int rank = x.ndim();
  const size_t es = dtype_size(x.dtype());
  std::vector<int64_t> in_stride(static_cast<size_t>(rank), 1), out_dims(static_cast<size_t>(rank));
  for (int a = rank - 2; a >= 0; --a)
    in_stride[static_cast<size_t>(a)] = in_stride[static_cast<size_t>(a) + 1] * x.dim(a + 1);
  for (int k = 0; k < rank; ++k)
    out_dims[static_cast<size_t>(k)] = x.dim(norm_axis(axes[static_cast<size_t>(k)], rank));
  const std::vector<uint8_t> in = bytes_of(x);
  std::vector<uint8_t> out(in.size());
  for (int64_t lin = 0; lin < x.numel(); ++lin) {
    int64_t rem = lin, off = 0;
    for (int k = rank - 1; k >= 0; --k) {
      const int64_t idx = rem % out_dims[static_cast<size_t>(k)];
      rem /= out_dims[static_cast<size_t>(k)];
      off += idx * in_stride[static_cast<size_t>(norm_axis(axes[static_cast<size_t>(k)], rank))];
    }
    std::memcpy(&out[static_cast<size_t>(lin) * es], &in[static_cast<size_t>(off) * es], es);
  }
  return out;
}

void check_permute(const Shape& shape, const std::vector<int>& axes, DType dt, uint64_t seed = 1) {
  Tensor x = random_bytes(shape, dt, seed);
  Tensor out = ops::permute(x, axes);
  std::string what = shape.str() + " axes {";
  for (int a : axes) what += std::to_string(a) + ",";
  what += "} " + std::string(dtype_name(dt));
  for (size_t k = 0; k < axes.size(); ++k)
    ASSERT_EQ(out.dim(static_cast<int>(k)), x.dim(norm_axis(axes[k], x.ndim()))) << what;
  ASSERT_EQ(out.dtype(), dt);
  EXPECT_TRUE(bytes_of(out) == permute_ref(x, axes)) << what;
}

TEST(Permute, EveryPermutationOfSmallTensors) {
  // All orders of 2- to 5-D tensors, for element sizes 1, 2, 4 and 8.
  const Shape shapes[] = {{5, 7}, {4, 5, 6}, {2, 3, 4, 5}, {2, 3, 4, 5, 6}};
  const DType dtypes[] = {DType::U8, DType::BF16, DType::F32, DType::I64};
  int i = 0;
  for (const Shape& s : shapes) {
    std::vector<int> axes(static_cast<size_t>(s.ndim()));
    std::iota(axes.begin(), axes.end(), 0);
    do {
      check_permute(s, axes, dtypes[i++ % 4]);
    } while (std::next_permutation(axes.begin(), axes.end()));
  }
}

TEST(Permute, LayoutConversions) {
  // NCHW ↔ NHWC with sizes that are not multiples of any tile, batch 2.
  check_permute({2, 37, 45, 67}, {0, 2, 3, 1}, DType::F32);
  check_permute({2, 37, 45, 67}, {0, 3, 1, 2}, DType::BF16);
  check_permute({1, 320, 64, 64}, {0, 2, 3, 1}, DType::F16);
  check_permute({1, 64, 64, 320}, {0, 3, 1, 2}, DType::F32);
  check_permute({3, 129, 250}, {2, 0, 1}, DType::F64);
  check_permute({1000, 3}, {1, 0}, DType::U8);
  // Attention heads: [B, T, H, D] → [B, H, T, D] keeps D contiguous.
  check_permute({2, 77, 8, 40}, {0, 2, 1, 3}, DType::BF16);
}

TEST(Permute, NegativeAxesSizeOneAndIdentity) {
  check_permute({2, 3, 4, 5}, {0, -2, -1, 1}, DType::F32);
  check_permute({2, 3, 4, 5}, {-1, -2, -3, -4}, DType::F16);
  check_permute({1, 5, 1, 3}, {3, 2, 1, 0}, DType::F32);
  check_permute({1, 1, 1}, {2, 0, 1}, DType::I64);
  check_permute({4, 6, 8}, {0, 1, 2}, DType::BF16);
  check_permute({9}, {0}, DType::U8);
  check_permute({2, 1, 7, 1, 3}, {4, 1, 2, 0, 3}, DType::F32);
}

TEST(Permute, RejectsBadAxes) {
  Tensor x = random_tensor({2, 3, 4}, DType::F32, 1);
  expect_error([&] { ops::permute(x, {0, 0, 1}); }, "[permute]");
  expect_error([&] { ops::permute(x, {0, 1}); }, "[permute]");
  expect_error([&] { ops::permute(x, {0, 1, 3}); }, "[permute]");
  expect_error([&] { ops::permute(x, {-4, 1, 2}); }, "[permute]");
  expect_error([&] { ops::permute(x, {2, -1, 0}); }, "[permute]");  // -1 is axis 2
}

// ---------------------------------------------------------------- Slice

// Python's x[..., start:end:step, ...] along `axis`, as bytes.
std::vector<uint8_t> slice_ref(const Tensor& x, int axis, int64_t start, int64_t end, int64_t step,
                               int64_t* out_len) {
  const int ax = norm_axis(axis, x.ndim());
  const int64_t n = x.dim(ax);
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<int64_t>(start, 0, n);
  end = std::clamp<int64_t>(end, 0, n);
  std::vector<int64_t> picked;
  for (int64_t i = start; i < end; i += step) picked.push_back(i);
  *out_len = static_cast<int64_t>(picked.size());
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < ax; ++d) outer *= x.dim(d);
  for (int d = ax + 1; d < x.ndim(); ++d) inner *= x.dim(d);
  const size_t es = dtype_size(x.dtype());
  const std::vector<uint8_t> in = bytes_of(x);
  std::vector<uint8_t> out;
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i : picked)
      for (int64_t j = 0; j < inner; ++j)
        for (size_t b = 0; b < es; ++b)
          out.push_back(in[static_cast<size_t>((o * n + i) * inner + j) * es + b]);
  return out;
}

void check_slice(const Shape& shape, int axis, int64_t start, int64_t end, int64_t step, DType dt) {
  Tensor x = random_bytes(shape, dt, 3);
  Tensor out = ops::slice(x, axis, start, end, step);
  int64_t len = 0;
  std::vector<uint8_t> ref = slice_ref(x, axis, start, end, step, &len);
  Shape want = shape;
  want[norm_axis(axis, shape.ndim())] = len;
  const std::string what = shape.str() + " axis " + std::to_string(axis) + " " +
                           std::to_string(start) + ":" + std::to_string(end) + ":" +
                           std::to_string(step) + " " + std::string(dtype_name(dt));
  ASSERT_EQ(out.shape(), want) << what;
  EXPECT_TRUE(bytes_of(out) == ref) << what;
}

TEST(Slice, MatchesPythonSlicing) {
  check_slice({4, 10, 3}, 1, 2, 9, 3, DType::F32);
  check_slice({5, 17}, -1, 1, -1, 2, DType::BF16);  // strided gather of single elements
  check_slice({7, 3, 2}, 0, -3, 7, 1, DType::I64);
  check_slice({3, 8}, 1, 0, 8, 1, DType::F16);       // everything
  check_slice({3, 10}, 1, 0, 100, 4, DType::F32);    // end past the size
  check_slice({3, 10, 2}, -2, 5, 2, 1, DType::F32);  // empty
  check_slice({6, 23}, 1, 2, 23, 5, DType::U8);
  check_slice({2, 3, 4, 5, 6}, 3, 1, 5, 2, DType::F64);
  check_slice({2, 3, 4, 5, 6}, -5, 1, 2, 1, DType::BF16);
  check_slice({1}, 0, 0, 1, 1, DType::F32);
}

TEST(Slice, LargeSlices) {
  // GEGLU-style halves of the last axis, and every other row of a big activation.
  check_slice({2, 1024, 1280}, -1, 0, 640, 1, DType::BF16);
  check_slice({2, 1024, 1280}, -1, 640, 1280, 1, DType::F32);
  check_slice({2, 4096, 64}, 1, 1, 4096, 2, DType::F16);
  check_slice({512, 1024}, 1, 3, 1024, 3, DType::F32);
}

TEST(Slice, RejectsBadInput) {
  Tensor x = random_tensor({4, 5}, DType::F32, 1);
  expect_error([&] { ops::slice(x, 0, 0, 4, 0); }, "[slice]");
  expect_error([&] { ops::slice(x, 2, 0, 4); }, "[slice]");
}

// ---------------------------------------------------------------- Cast

// Decodes a small float format from its definition: sign, `eb` exponent bits with bias
// 2^(eb−1) − 1, `mb` mantissa bits, subnormals; `ieee` formats reserve the top exponent
// for inf/NaN, while E4M3 ("fn") only makes S.1111.111 NaN.
double decode_minifloat(uint32_t bits, int eb, int mb, bool ieee) {
  const bool neg = (bits >> (eb + mb)) & 1;
  const uint32_t e = (bits >> mb) & ((1u << eb) - 1);
  const uint32_t m = bits & ((1u << mb) - 1);
  const int bias = (1 << (eb - 1)) - 1;
  const uint32_t top = (1u << eb) - 1;
  double v;
  if (ieee && e == top)
    v = m ? NAN : INFINITY;
  else if (!ieee && e == top && m == (1u << mb) - 1)
    v = NAN;
  else if (e == 0)
    v = std::ldexp(static_cast<double>(m), 1 - bias - mb);
  else
    v = std::ldexp(1.0 + std::ldexp(static_cast<double>(m), -mb), static_cast<int>(e) - bias);
  return neg ? -v : v;
}

// The nearest bf16 to f (ties to the even pattern), chosen by comparing distances in
// double to the two bf16 values around f; past the largest finite value, the upper
// neighbour counts as 2^128 (IEEE overflow rounding).
uint16_t nearest_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint16_t lo = static_cast<uint16_t>(u >> 16);  // toward zero
  const uint16_t hi = static_cast<uint16_t>(lo + 1);   // away from zero
  const double mag = std::fabs(static_cast<double>(f));
  const double vlo = std::fabs(decode_minifloat(lo, 8, 7, true));
  const double vhi =
      (hi & 0x7fff) == 0x7f80 ? std::ldexp(1.0, 128) : std::fabs(decode_minifloat(hi, 8, 7, true));
  const double dlo = mag - vlo, dhi = vhi - mag;
  if (dlo < dhi) return lo;
  if (dhi < dlo) return hi;
  return (lo & 1) ? hi : lo;
}

Tensor tensor_of_bits(const std::vector<uint32_t>& bits, DType dt) {
  Tensor t = Tensor::empty({static_cast<int64_t>(bits.size())}, dt);
  const size_t es = dtype_size(dt);
  for (size_t i = 0; i < bits.size(); ++i) {
    uint64_t v = bits[i];
    std::memcpy(t.data<uint8_t>() + i * es, &v, es);  // little endian: low bytes first
  }
  return t;
}

std::vector<uint32_t> bits_of(const Tensor& t) {
  const size_t es = dtype_size(t.dtype());
  std::vector<uint32_t> out(static_cast<size_t>(t.numel()));
  for (size_t i = 0; i < out.size(); ++i) {
    uint32_t v = 0;
    std::memcpy(&v, t.data<uint8_t>() + i * es, es);
    out[i] = v;
  }
  return out;
}

TEST(Cast, F32ToBf16RoundsToNearestEven) {
  struct Case {
    uint32_t f32, bf16;
  };
  const Case cases[] = {
      {0x3F808000, 0x3F80},                        // 1.00390625: tie, lower neighbour even
      {0x3F818000, 0x3F82},                        // 1.01171875: tie, upper neighbour even
      {0x3F808001, 0x3F81},                        // just above the tie
      {0x3F817FFF, 0x3F81},                        // just below the tie
      {0x3F800000, 0x3F80},                        // 1.0 exactly
      {0xBF808000, 0xBF80},                        // −1.00390625
      {0xBF818000, 0xBF82}, {0x80000000, 0x8000},  // −0
      {0x7F800000, 0x7F80},                        // inf
      {0x7F7FFFFF, 0x7F80},  // FLT_MAX rounds past bf16's largest finite value
      {0x00000001, 0x0000},  // smallest f32 subnormal
      {0x3EAAAAAB, 0x3EAB},  // 1/3
  };
  std::vector<uint32_t> in;
  for (const Case& c : cases) in.push_back(c.f32);
  std::vector<uint32_t> got = bits_of(ops::cast(tensor_of_bits(in, DType::F32), DType::BF16));
  for (size_t i = 0; i < in.size(); ++i)
    EXPECT_EQ(got[i], cases[i].bf16) << std::hex << "f32 0x" << cases[i].f32;

  // NaNs stay NaN, including one whose payload would round into the exponent.
  std::vector<uint32_t> nans = bits_of(
      ops::cast(tensor_of_bits({0x7F800001, 0xFFC00000, 0x7FFFFFFF}, DType::F32), DType::BF16));
  for (uint32_t b : nans) EXPECT_TRUE((b & 0x7F80) == 0x7F80 && (b & 0x7F)) << std::hex << b;
}

TEST(Cast, RandomF32ToBf16AndF16) {
  // Enough elements for several pool chunks; values spread over many binades.
  std::mt19937_64 rng(9);
  std::vector<uint32_t> in(300001);
  for (uint32_t& b : in) {
    float f = std::ldexp(std::uniform_real_distribution<float>(-1, 1)(rng),
                         static_cast<int>(rng() % 40) - 24);  // |f| < 2^15
    std::memcpy(&b, &f, 4);
  }
  Tensor x = tensor_of_bits(in, DType::F32);
  std::vector<uint32_t> got = bits_of(ops::cast(x, DType::BF16));
  size_t bad = 0;
  for (size_t i = 0; i < in.size(); ++i) {
    float f;
    std::memcpy(&f, &in[i], 4);
    bad += got[i] != nearest_bf16(f);
  }
  EXPECT_EQ(bad, 0u);

  // f16: within half an ulp of f16 (2^-11 relative for normals, 2^-25 absolute below).
  Tensor h = ops::cast(x, DType::F16);
  std::vector<double> ref(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    float f;
    std::memcpy(&f, &in[i], 4);
    ref[i] = f;
  }
  expect_close(h, ref, {std::ldexp(1.0, -25), std::ldexp(1.0, -11)}, "f32 → f16");
}

TEST(Cast, KnownF16Patterns) {
  const std::vector<float> values = {1.0f, 65504.0f, 0.1f, std::ldexp(1.0f, -24), 1e6f, -2.0f};
  const std::vector<uint32_t> want = {0x3C00, 0x7BFF, 0x2E66, 0x0001, 0x7C00, 0xC000};
  EXPECT_EQ(bits_of(ops::cast(Tensor::from_floats(values, {6}), DType::F16)), want);
}

TEST(Cast, RoundTripsAreExact) {
  // Every non-NaN f16 and bf16 pattern survives → f32 → back, and → f32 gives the
  // value its bits define.
  for (DType dt : {DType::F16, DType::BF16}) {
    const int eb = dt == DType::F16 ? 5 : 8, mb = dt == DType::F16 ? 10 : 7;
    std::vector<uint32_t> patterns;
    std::vector<double> values;
    for (uint32_t b = 0; b < 0x10000; ++b) {
      const double v = decode_minifloat(b, eb, mb, true);
      if (std::isnan(v)) continue;
      patterns.push_back(b);
      values.push_back(v);
    }
    Tensor x = tensor_of_bits(patterns, dt);
    Tensor f = ops::cast(x, DType::F32);
    // Compared with == rather than expect_close, whose |got − ref| is NaN for ±inf.
    std::vector<float> fv = f.to_floats();
    size_t bad = 0;
    for (size_t i = 0; i < values.size(); ++i) bad += static_cast<double>(fv[i]) != values[i];
    EXPECT_EQ(bad, 0u) << dtype_name(dt) << " → f32";
    EXPECT_EQ(bits_of(ops::cast(f, dt)), patterns) << dtype_name(dt) << " round trip";
  }
  // bf16 values within f16's normal range carry 8 significant bits, so bf16 → f16 → bf16
  // is exact too.
  Tensor b = random_tensor({4097}, DType::BF16, 4, -100.0f, 100.0f);
  Tensor h = ops::cast(b, DType::F16);
  expect_close(h, to_doubles(b), kExact, "bf16 → f16");
  EXPECT_EQ(bits_of(ops::cast(h, DType::BF16)), bits_of(b));
}

TEST(Cast, F16ToBf16RoundsToNearest) {
  Tensor h = random_tensor({5000}, DType::F16, 8, -30.0f, 30.0f);
  std::vector<float> hv = h.to_floats();
  std::vector<uint32_t> got = bits_of(ops::cast(h, DType::BF16));
  for (size_t i = 0; i < hv.size(); ++i) ASSERT_EQ(got[i], nearest_bf16(hv[i])) << hv[i];
}

TEST(Cast, Fp8Decode) {
  std::vector<uint32_t> codes(256);
  std::iota(codes.begin(), codes.end(), 0u);
  // E4M3: known codes first.
  Tensor e4 = tensor_of_bits(codes, DType::F8E4M3);
  std::vector<float> f = ops::cast(e4, DType::F32).to_floats();
  EXPECT_EQ(f[0x7E], 448.0f);
  EXPECT_EQ(f[0x01], std::ldexp(1.0f, -9));
  EXPECT_EQ(f[0x38], 1.0f);
  EXPECT_EQ(f[0xB8], -1.0f);
  EXPECT_TRUE(std::isnan(f[0x7F]) && std::isnan(f[0xFF]));
  // Every code in every compute dtype (all E4M3 values are exact in each of them).
  std::vector<uint32_t> finite;
  std::vector<double> want;
  for (uint32_t c : codes)
    if (!std::isnan(decode_minifloat(c, 4, 3, false))) {
      finite.push_back(c);
      want.push_back(decode_minifloat(c, 4, 3, false));
    }
  for (DType dt : kComputeDtypes)
    expect_close(ops::cast(tensor_of_bits(finite, DType::F8E4M3), dt), want, kExact,
                 "e4m3 → " + std::string(dtype_name(dt)));

  // E5M2: 0x3C = 1, 0x7B = 57344 (largest finite), 0x01 = 2^-16, 0x7C = inf.
  std::vector<float> g = ops::cast(tensor_of_bits(codes, DType::F8E5M2), DType::F32).to_floats();
  EXPECT_EQ(g[0x3C], 1.0f);
  EXPECT_EQ(g[0x7B], 57344.0f);
  EXPECT_EQ(g[0x01], std::ldexp(1.0f, -16));
  EXPECT_EQ(g[0x7C], INFINITY);
  EXPECT_EQ(g[0xFC], -INFINITY);
  EXPECT_TRUE(std::isnan(g[0x7D]));
  std::vector<uint32_t> finite5;
  std::vector<double> want5;
  for (uint32_t c : codes)
    if (std::isfinite(decode_minifloat(c, 5, 2, true))) {
      finite5.push_back(c);
      want5.push_back(decode_minifloat(c, 5, 2, true));
    }
  for (DType dt : {DType::F32, DType::BF16})
    expect_close(ops::cast(tensor_of_bits(finite5, DType::F8E5M2), dt), want5, kExact,
                 "e5m2 → " + std::string(dtype_name(dt)));
}

TEST(Cast, F64Narrows) {
  const std::vector<double> values = {1.0 / 3.0, -2.5, 1e-3, 1e30, 0.0, -65504.0};
  Tensor x = Tensor::empty({6}, DType::F64);
  std::memcpy(x.raw(), values.data(), values.size() * 8);
  // 1/3 → f32 0x3EAAAAAB (nearest) → bf16 0x3EAB.
  EXPECT_EQ(bits_of(ops::cast(x, DType::F32))[0], 0x3EAAAAABu);
  EXPECT_EQ(bits_of(ops::cast(x, DType::BF16))[0], 0x3EABu);
  expect_close(ops::cast(x, DType::F32), values, {0, std::ldexp(1.0, -24)}, "f64 → f32");
  Tensor h = ops::cast(x, DType::F16);
  std::vector<float> hv = h.to_floats();
  EXPECT_EQ(hv[3], INFINITY);
  EXPECT_EQ(hv[5], -65504.0f);
  EXPECT_NEAR(hv[0], 1.0 / 3.0, std::ldexp(1.0, -13));
}

TEST(Cast, SameDtypeAndRejects) {
  Tensor x = random_tensor({5}, DType::BF16, 1);
  EXPECT_EQ(ops::cast(x, DType::BF16).raw(), x.raw());  // no copy
  expect_error([&] { ops::cast(x, DType::F8E4M3); }, "[cast]");
  expect_error([&] { ops::cast(Tensor::empty({3}, DType::I32), DType::F32); }, "[cast]");
}

}  // namespace
}  // namespace darkroom
