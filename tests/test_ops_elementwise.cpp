// Activations, GEGLU and broadcasting binary ops through the public ops, against
// double-precision loops written from each op's definition. Every case runs in f32,
// bf16 and f16 with test_util.h's tolerances.
#include <cmath>
#include <functional>
#include <numbers>
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

double ref_silu(double x) {
  return x / (1.0 + std::exp(-x));
}
double ref_gelu(double x) {
  return 0.5 * x * (1.0 + std::erf(x / std::numbers::sqrt2));
}
double ref_gelu_tanh(double x) {
  const double k = std::sqrt(2.0 / std::numbers::pi);
  return 0.5 * x * (1.0 + std::tanh(k * (x + 0.044715 * x * x * x)));
}
double ref_quick_gelu(double x) {
  return x / (1.0 + std::exp(-1.702 * x));
}
double ref_leaky_relu_02(double x) {
  return x < 0.0 ? 0.2 * x : x;
}
double ref_leaky_relu_default(double x) {
  return x < 0.0 ? 0.01 * x : x;
}

// ---------------------------------------------------------------- Unary

struct UnaryCase {
  const char* name;
  std::function<Tensor(const Tensor&)> op;
  double (*ref)(double);
};

const UnaryCase kUnary[] = {
    {"silu", [](const Tensor& x) { return ops::silu(x); }, ref_silu},
    {"gelu", [](const Tensor& x) { return ops::gelu(x); }, ref_gelu},
    {"gelu_tanh", [](const Tensor& x) { return ops::gelu(x, true); }, ref_gelu_tanh},
    {"quick_gelu", [](const Tensor& x) { return ops::quick_gelu(x); }, ref_quick_gelu},
    {"leaky_relu 0.2", [](const Tensor& x) { return ops::leaky_relu(x, 0.2f); }, ref_leaky_relu_02},
    {"leaky_relu", [](const Tensor& x) { return ops::leaky_relu(x); }, ref_leaky_relu_default},
};

void check_unary(const Shape& shape, float lo, float hi, const std::string& what) {
  for (const UnaryCase& u : kUnary) {
    for (DType t : kDtypes) {
      const Tensor x = random_tensor(shape, t, 41, lo, hi);
      const Tensor y = u.op(x);
      ASSERT_EQ(y.shape(), shape);
      ASSERT_EQ(y.dtype(), t);
      std::vector<double> ref = to_doubles(x);
      for (double& v : ref) v = u.ref(v);
      expect_close(y, ref, label(std::string(u.name) + " " + what, t));
    }
  }
}

TEST(Unary, OddShape) {
  check_unary({3, 7, 77}, -6.0f, 6.0f, "[3,7,77]");
}
TEST(Unary, SeveralTiles) {
  check_unary({5, 2001}, -6.0f, 6.0f, "[5,2001]");
}
TEST(Unary, SingleElement) {
  check_unary({1}, -2.0f, 2.0f, "[1]");
}
TEST(Unary, NearZero) {
  check_unary({4, 64}, -1e-3f, 1e-3f, "|x| < 1e-3");
}
TEST(Unary, LargeMagnitudes) {
  // Far into the tails, where exp overflows or underflows: results stay finite and
  // tend to x or 0.
  check_unary({4, 100}, -120.0f, 120.0f, "|x| < 120");
}

TEST(Unary, BadInput) {
  const Tensor ints = Tensor::zeros({4}, DType::I32);
  expect_error([&] { ops::silu(ints); }, "[silu]");
  expect_error([&] { ops::gelu(ints); }, "[gelu]");
  expect_error([&] { ops::quick_gelu(ints); }, "[quick_gelu]");
  expect_error([&] { ops::leaky_relu(ints, 0.2f); }, "[leaky_relu]");
  expect_error([&] { ops::gelu(Tensor()); }, "[gelu]");
}

// ---------------------------------------------------------------- Geglu

void check_geglu(const Shape& shape, const std::string& what) {
  const int64_t c2 = shape[-1], c = c2 / 2;
  Shape out_shape = shape;
  out_shape[-1] = c;
  for (DType t : kDtypes) {
    const Tensor x = random_tensor(shape, t, 51, -4.0f, 4.0f);
    const Tensor y = ops::geglu(x);
    ASSERT_EQ(y.shape(), out_shape);
    const std::vector<double> xd = to_doubles(x);
    std::vector<double> ref(static_cast<size_t>(out_shape.numel()));
    for (size_t r = 0; r < ref.size() / size_t(c); ++r)
      for (int64_t i = 0; i < c; ++i)
        ref[r * size_t(c) + i] = xd[r * size_t(c2) + i] * ref_gelu(xd[r * size_t(c2) + c + i]);
    expect_close(y, ref, label(what, t));
  }
}

TEST(Geglu, Batched) {
  check_geglu({2, 64, 2560}, "[2,64,2560]");
}
TEST(Geglu, OddWidth) {
  check_geglu({3, 7, 154}, "[3,7,154]");
}
TEST(Geglu, SingleRow) {
  check_geglu({1, 2}, "[1,2]");
}

TEST(Geglu, BadInput) {
  expect_error([&] { ops::geglu(random_tensor({4, 7}, DType::F32, 1)); }, "[geglu]");
}

// ---------------------------------------------------------------- Binary

struct BinaryKindCase {
  const char* name;
  Tensor (*op)(const Tensor&, const Tensor&);
  double (*ref)(double, double);
};

const BinaryKindCase kBinary[] = {
    {"add", ops::add, [](double a, double b) { return a + b; }},
    {"sub", ops::sub, [](double a, double b) { return a - b; }},
    {"mul", ops::mul, [](double a, double b) { return a * b; }},
    {"div", ops::div, [](double a, double b) { return a / b; }},
};

// out[i] = f(a[..], b[..]) by numpy rules: shapes right-aligned, size-1 dims repeat.
std::vector<double> ref_broadcast(const Shape& sa, const std::vector<double>& a, const Shape& sb,
                                  const std::vector<double>& b, const Shape& so,
                                  double (*f)(double, double)) {
  const int rank = so.ndim();
  std::vector<double> out(static_cast<size_t>(so.numel()));
  std::vector<int64_t> idx(static_cast<size_t>(rank));
  for (int64_t flat = 0; flat < so.numel(); ++flat) {
    int64_t rem = flat;
    for (int i = rank - 1; i >= 0; --i) {
      idx[i] = rem % so[i];
      rem /= so[i];
    }
    auto offset = [&](const Shape& s) {
      int64_t off = 0;
      for (int i = 0; i < s.ndim(); ++i) {
        const int64_t d = s[i], k = idx[rank - s.ndim() + i];
        off = off * d + (d == 1 ? 0 : k);
      }
      return off;
    };
    out[flat] = f(a[offset(sa)], b[offset(sb)]);
  }
  return out;
}

void check_binary(const Shape& sa, const Shape& sb, const Shape& expected,
                  const std::string& what) {
  for (const BinaryKindCase& k : kBinary) {
    for (DType t : kDtypes) {
      const Tensor a = random_tensor(sa, t, 61);
      // Divisors kept away from 0 so quotients stay well scaled.
      const bool is_div = std::string(k.name) == "div";
      const Tensor b = random_tensor(sb, t, 62, is_div ? 0.5f : -1.0f, is_div ? 2.0f : 1.0f);
      const Tensor y = k.op(a, b);
      ASSERT_EQ(y.shape(), expected) << k.name << " " << what;
      ASSERT_EQ(y.dtype(), t);
      expect_close(y, ref_broadcast(sa, to_doubles(a), sb, to_doubles(b), expected, k.ref),
                   label(std::string(k.name) + " " + what, t));
    }
  }
}

TEST(Binary, SameShape) {
  check_binary({3, 5, 77}, {3, 5, 77}, {3, 5, 77}, "same shape");
  check_binary({3, 5000}, {3, 5000}, {3, 5000}, "same shape, several tiles");
}

TEST(Binary, ChannelVector) {
  // A bias over tokens: [N, T, C] + [C] and + [1, 1, C].
  check_binary({2, 45, 32}, {32}, {2, 45, 32}, "[2,45,32] + [32]");
  check_binary({2, 45, 32}, {1, 1, 32}, {2, 45, 32}, "[2,45,32] + [1,1,32]");
  check_binary({32}, {2, 45, 32}, {2, 45, 32}, "[32] + [2,45,32]");
}

TEST(Binary, PerImageChannels) {
  // A time embedding added over NHWC: [N, H, W, C] + [N, 1, 1, C].
  check_binary({2, 6, 6, 40}, {2, 1, 1, 40}, {2, 6, 6, 40}, "[2,6,6,40] + [2,1,1,40]");
  check_binary({2, 1, 1, 40}, {2, 6, 6, 40}, {2, 6, 6, 40}, "[2,1,1,40] + [2,6,6,40]");
}

TEST(Binary, PerRowScalar) {
  check_binary({4, 9, 13}, {4, 9, 1}, {4, 9, 13}, "[4,9,13] + [4,9,1]");
  check_binary({4, 9, 1}, {4, 9, 13}, {4, 9, 13}, "[4,9,1] + [4,9,13]");
}

TEST(Binary, BothSidesBroadcast) {
  check_binary({5, 1}, {1, 6}, {5, 6}, "[5,1] + [1,6]");
  check_binary({3, 1, 5}, {1, 4, 1}, {3, 4, 5}, "[3,1,5] + [1,4,1]");
  check_binary({2, 1, 3, 1}, {1, 4, 1, 5}, {2, 4, 3, 5}, "[2,1,3,1] + [1,4,1,5]");
}

TEST(Binary, Scalars) {
  check_binary({1}, {3, 4}, {3, 4}, "[1] + [3,4]");
  check_binary({3, 4}, {1, 1}, {3, 4}, "[3,4] + [1,1]");
  check_binary({1}, {1}, {1}, "[1] + [1]");
}

TEST(Binary, LongRowsAcrossThreads) {
  // Rows longer than a tile, many of them: tasks start mid-row on every thread.
  check_binary({40, 3, 5000}, {40, 1, 5000}, {40, 3, 5000}, "[40,3,5000] + [40,1,5000]");
}

TEST(Binary, BadInput) {
  const Tensor a = random_tensor({2, 3}, DType::F32, 1);
  expect_error([&] { ops::add(a, random_tensor({4}, DType::F32, 2)); }, "[add]");
  expect_error([&] { ops::mul(a, random_tensor({3, 3}, DType::F32, 2)); }, "[mul]");
  expect_error([&] { ops::sub(a, random_tensor({2, 3}, DType::BF16, 2)); }, "[sub]");
  expect_error([&] { ops::div(a, Tensor()); }, "[div]");
}

}  // namespace
}  // namespace darkroom
