// Every op of the CUDA backend against the CPU backend, like ggml's test-backend-ops:
// random inputs, the CPU result in f32 as the reference (the CPU kernels are tested
// against double-precision references in tests/), the CUDA result in f32, f16 and bf16
// (inputs rounded to that dtype first, so the reference sees exactly the same values),
// compared by normalised mean squared error NMSE = Σ(got − ref)² / Σref².
//
// Thresholds (max_nmse): an f16/bf16 result carries at least one rounding of the
// output, relative error ≤ u (u = 2⁻¹¹ for f16, 2⁻⁸ for bf16), which alone gives an
// NMSE of about u²/3: 8e-8 for f16 and 5e-6 for bf16. Kernels accumulate in f32, so
// the other error sources are smaller; 1e-5 (f16) and 1e-4 (bf16) leave ~20× margin
// and still catch any real bug (a wrong index or a missed term gives NMSE ≳ 1e-3).
// f32 results differ from the CPU only in summation order (≈1e-7 relative per
// element, NMSE ≈ 1e-13); 1e-7 would still catch TF32 sneaking in for long sums.
// Ops that only move data (permute, slice, concat, upsample, embedding, cast) must
// be bit-exact.
//
// Needs a GPU: built only with the CUDA backend and not registered with CTest.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "backend/device.h"
#include "backend/ops.h"
#include "test_util.h"

namespace darkroom {
namespace {

constexpr DeviceId kGpu{DeviceType::Cuda, 0};
constexpr DType kDtypes[] = {DType::F32, DType::F16, DType::BF16};

double max_nmse(DType t) {
  switch (t) {
    case DType::F16:
      return 1e-5;
    case DType::BF16:
      return 1e-4;
    default:
      return 1e-7;
  }
}

double nmse(const std::vector<float>& got, const std::vector<float>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double d = static_cast<double>(got[i]) - ref[i];
    num += d * d;
    den += static_cast<double>(ref[i]) * ref[i];
  }
  return den > 0 ? num / den : num;
}

// `t` (any float dtype on the CPU) with its values rounded to `dtype`, stored as dtype.
Tensor as_dtype(const Tensor& t, DType dtype) {
  std::vector<float> v = t.to_floats();
  return Tensor::from_floats(v, t.shape(), dtype);
}

Tensor uniform(const Shape& shape, uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
  return test::random_tensor(shape, DType::F32, seed, lo, hi);
}

struct Input {
  Tensor t;          // on the CPU
  bool cast = true;  // a compute-dtype operand: rounded to and stored as the test dtype
};

// fn(inputs, dtype) runs the op on inputs that live on one device; dtype is the compute
// dtype of that run (for ops such as timestep_embedding that take it as a parameter).
using OpFn = std::function<Tensor(const std::vector<Tensor>&, DType)>;

// Runs fn on the CPU in f32 and on the GPU in `dtype` and compares by NMSE.
void compare(const std::string& what, const std::vector<Input>& inputs, const OpFn& fn, DType dtype,
             double limit = -1) {
  SCOPED_TRACE(what + " " + std::string(dtype_name(dtype)));
  std::vector<Tensor> cpu_in, gpu_in;
  for (const Input& in : inputs) {
    if (!in.cast) {
      cpu_in.push_back(in.t);
      gpu_in.push_back(ops::to_device(in.t, kGpu));
      continue;
    }
    const Tensor rounded = as_dtype(in.t, dtype);
    cpu_in.push_back(as_dtype(rounded, DType::F32));
    gpu_in.push_back(ops::to_device(rounded, kGpu));
  }
  const Tensor ref = fn(cpu_in, DType::F32);
  const Tensor got_gpu = fn(gpu_in, dtype);
  ASSERT_EQ(got_gpu.device(), kGpu);
  EXPECT_EQ(got_gpu.dtype(), dtype);
  const Tensor got = ops::to_device(got_gpu, kCpu);
  ASSERT_EQ(got.shape(), ref.shape());
  const double e = nmse(got.to_floats(), ref.to_floats());
  EXPECT_LE(e, limit >= 0 ? limit : max_nmse(dtype)) << what << " in " << dtype_name(dtype);
}

void compare_all(const std::string& what, const std::vector<Input>& inputs, const OpFn& fn) {
  for (DType t : kDtypes) compare(what, inputs, fn, t);
}

// Bit-exact comparison of a data-movement op run on both devices in `dtype`.
void compare_exact(const std::string& what, const std::vector<Input>& inputs, const OpFn& fn,
                   DType dtype) {
  SCOPED_TRACE(what + " " + std::string(dtype_name(dtype)));
  std::vector<Tensor> cpu_in, gpu_in;
  for (const Input& in : inputs) {
    const Tensor t = in.cast ? as_dtype(in.t, dtype) : in.t;
    cpu_in.push_back(t);
    gpu_in.push_back(ops::to_device(t, kGpu));
  }
  const Tensor ref = fn(cpu_in, dtype);
  const Tensor got = ops::to_device(fn(gpu_in, dtype), kCpu);
  ASSERT_EQ(got.shape(), ref.shape());
  ASSERT_EQ(got.dtype(), ref.dtype());
  EXPECT_EQ(std::memcmp(got.raw(), ref.raw(), ref.nbytes()), 0) << what << " is not bit-exact";
}

std::string shape_name(std::initializer_list<int64_t> dims) {
  std::string s;
  for (int64_t d : dims) {
    if (!s.empty()) s += 'x';
    s += std::to_string(d);
  }
  return s;
}

// ---- device and memory ----

TEST(CudaDevice, DescribesItselfAndComputesInBf16) {
  Device& d = device_for(kGpu);
  EXPECT_EQ(d.id(), kGpu);
  EXPECT_NE(d.description().find("cuda:0"), std::string::npos) << d.description();
  EXPECT_EQ(d.compute_dtype(), DType::BF16);  // every GPU this project targets is sm_80+
}

TEST(CudaAllocator, RoundTripsBytesExactly) {
  std::mt19937_64 rng(7);
  for (int64_t n :
       {int64_t{1}, int64_t{3}, int64_t{1000}, int64_t{1} << 20, (int64_t{1} << 22) + 5}) {
    Tensor host = Tensor::empty({n}, DType::U8);
    auto* p = host.data<uint8_t>();
    for (int64_t i = 0; i < n; ++i) p[i] = static_cast<uint8_t>(rng());
    const Tensor dev = ops::to_device(host, kGpu);
    EXPECT_EQ(dev.device(), kGpu);
    const Tensor back = ops::to_device(dev, kCpu);
    EXPECT_EQ(std::memcmp(back.raw(), host.raw(), static_cast<size_t>(n)), 0) << n << " bytes";
  }
}

TEST(CudaAllocator, AllocatesAndFreesManyBlocks) {
  std::mt19937_64 rng(11);
  std::vector<Tensor> live;
  for (int i = 0; i < 2000; ++i) {
    const int64_t n = 1 + static_cast<int64_t>(rng() % (1 << 16));
    live.push_back(Tensor::empty({n}, DType::F32, kGpu));
    EXPECT_EQ(reinterpret_cast<uintptr_t>(live.back().raw()) % kTensorAlignment, 0u);
    if (rng() % 3 == 0) live.erase(live.begin() + static_cast<long>(rng() % live.size()));
  }
  live.clear();
  // Still usable afterwards: a round trip through fresh memory.
  const Tensor x = uniform({4096}, 3);
  const Tensor back = ops::to_device(ops::to_device(x, kGpu), kCpu);
  EXPECT_EQ(std::memcmp(back.raw(), x.raw(), x.nbytes()), 0);
  device_for(kGpu).synchronize();
}

// ---- dense ----

TEST(CudaOps, Linear) {
  struct Case {
    int64_t m, k, n;
    bool bias;
  };
  for (const Case& c : std::vector<Case>{{2 * 1024, 320, 1280, true},
                                         {154, 768, 320, false},
                                         {4096, 1280, 320, true},
                                         {1, 1, 1, true},
                                         {5, 3, 7, true},
                                         {33, 40, 17, false}}) {
    std::vector<Input> in{{uniform({c.m, c.k}, 1)}, {uniform({c.n, c.k}, 2, -0.1f, 0.1f)}};
    if (c.bias) in.push_back({uniform({c.n}, 3)});
    compare_all("linear " + shape_name({c.m, c.k, c.n}), in,
                [&](const std::vector<Tensor>& t, DType) {
                  return ops::linear(t[0], t[1], t.size() > 2 ? t[2] : Tensor());
                });
  }
  // A leading batch dimension folds into rows.
  compare_all("linear 3-D", {{uniform({2, 77, 768}, 4)}, {uniform({320, 768}, 5, -0.1f, 0.1f)}},
              [](const std::vector<Tensor>& t, DType) { return ops::linear(t[0], t[1]); });
}

TEST(CudaOps, Matmul) {
  struct Case {
    Shape a, b;
    bool ta, tb;
  };
  const std::vector<Case> cases{
      {{2, 64, 40}, {2, 40, 77}, false, false},     // batched
      {{16, 256, 64}, {16, 256, 64}, false, true},  // q·kᵀ
      {{3, 40, 33}, {3, 40, 17}, true, false},      // aᵀ·b
      {{2, 7, 5}, {2, 9, 7}, true, true},           // both transposed, odd sizes
      {{4, 100, 64}, {64, 48}, false, false},       // 2-D b broadcast over a's batch
      {{4, 64, 100}, {64, 48}, true, false},        // ... with a transposed
      {{1, 50, 32}, {3, 32, 20}, false, false},     // a broadcast
      {{300, 200}, {200, 100}, false, false},       // plain 2-D
      {{1, 1}, {1, 1}, false, false}};
  for (const Case& c : cases) {
    const std::string name =
        "matmul " + c.a.str() + (c.ta ? "T" : "") + " " + c.b.str() + (c.tb ? "T" : "");
    compare_all(
        name, {{uniform(c.a, 10)}, {uniform(c.b, 11)}},
        [&](const std::vector<Tensor>& t, DType) { return ops::matmul(t[0], t[1], c.ta, c.tb); });
  }
}

TEST(CudaOps, Conv2d) {
  struct Case {
    Shape x;  // NHWC
    int64_t out, k;
    int stride, pad;
    bool bias;
  };
  const std::vector<Case> cases{{{1, 32, 32, 320}, 320, 3, 1, 1, true},  // UNet resnet conv
                                {{2, 16, 16, 4}, 320, 3, 1, 1, true},    // conv_in
                                {{2, 32, 32, 128}, 128, 3, 2, 1, true},  // downsample
                                {{2, 16, 16, 640}, 320, 1, 1, 0, true},  // 1×1 shortcut
                                {{1, 7, 9, 5}, 3, 1, 1, 0, false},
                                {{2, 13, 11, 6}, 8, 3, 2, 1, false},  // odd sizes, stride 2
                                {{1, 1, 1, 8}, 4, 1, 1, 0, true},
                                {{1, 5, 5, 3}, 2, 5, 1, 2, true}};
  for (const Case& c : cases) {
    std::vector<Input> in{{uniform(c.x, 20)},
                          {uniform({c.out, c.x[3], c.k, c.k}, 21, -0.1f, 0.1f)}};
    if (c.bias) in.push_back({uniform({c.out}, 22)});
    const std::string name = "conv2d " + c.x.str() + " → " + std::to_string(c.out) + " k" +
                             std::to_string(c.k) + " s" + std::to_string(c.stride);
    compare_all(name, in, [&](const std::vector<Tensor>& t, DType) {
      return ops::conv2d(t[0], t[1], t.size() > 2 ? t[2] : Tensor(), {c.stride, c.pad});
    });
  }
}

TEST(CudaOps, Conv2dWeightCacheFollowsTheWeight) {
  // Two different weights in turn: a stale cache entry would reuse the first.
  const Tensor x = ops::to_device(uniform({1, 8, 8, 16}, 30), kGpu);
  for (uint64_t seed : {31, 32, 31}) {
    const Tensor w = uniform({8, 16, 3, 3}, seed);
    const Tensor ref = ops::conv2d(ops::to_device(x, kCpu), w, {}, {1, 1});
    const Tensor got = ops::to_device(ops::conv2d(x, ops::to_device(w, kGpu), {}, {1, 1}), kCpu);
    EXPECT_LE(nmse(got.to_floats(), ref.to_floats()), 1e-7) << "seed " << seed;
  }
}

TEST(CudaOps, Attention) {
  struct Case {
    int64_t b, nq, nk;
    int heads, d, dv;
  };
  const std::vector<Case> cases{
      {2, 1024, 1024, 8, 40, 40},  // SD 1.5 self-attention (64×64 latent / 2)
      {2, 1024, 77, 8, 40, 40},    // cross-attention with 77 text tokens
      {2, 256, 256, 10, 64, 64},   // SDXL head dim
      {1, 64, 77, 4, 128, 128},
      {1, 100, 100, 2, 160, 160},  // SD 1.5 deepest level head dim
      {1, 33, 47, 3, 24, 24},      // odd sizes
      {1, 20, 30, 2, 64, 32},      // Dv ≠ D
      {3, 1, 1, 1, 8, 8},
      // The tensor-core kernel (f16/bf16, Dv = D ≤ 128) works on 64-query × 64-key
      // tiles with the head dim padded to 48/64/80/128: ragged Nq and Nk over several
      // tiles, B·H above the SM count, every padded width, and head dims that are
      // not a multiple of 8 (scalar loads instead of 16-byte ones).
      {2, 130, 200, 80, 8, 8},    // 160 (batch, head) pairs
      {1, 96, 300, 2, 80, 80},    // SD 2.x/SDXL-style head dim 80
      {1, 65, 129, 2, 128, 128},  // one row and one key past a tile edge
      {2, 64, 64, 3, 48, 48},     // exactly one tile, no padding
      {1, 70, 90, 3, 20, 20},     // d % 8 ≠ 0, padded to 48
      {1, 50, 70, 2, 100, 100},   // d % 8 ≠ 0, padded to 128
      {1, 200, 77, 4, 64, 64}};   // cross-attention tail of 13 keys
  for (const Case& c : cases) {
    const std::string name = "attention b" + std::to_string(c.b) + " " + std::to_string(c.nq) +
                             "×" + std::to_string(c.nk) + " h" + std::to_string(c.heads) + " d" +
                             std::to_string(c.d) + "/" + std::to_string(c.dv);
    compare_all(name,
                {{uniform({c.b, c.nq, c.heads * int64_t{c.d}}, 40)},
                 {uniform({c.b, c.nk, c.heads * int64_t{c.d}}, 41)},
                 {uniform({c.b, c.nk, c.heads * int64_t{c.dv}}, 42)}},
                [&](const std::vector<Tensor>& t, DType) {
                  return ops::attention(t[0], t[1], t[2], c.heads);
                });
  }
  // Scores large enough that a softmax without max-subtraction would overflow.
  compare_all("attention sharp",
              {{uniform({1, 64, 8 * 64}, 43, -3, 3)},
               {uniform({1, 64, 8 * 64}, 44, -3, 3)},
               {uniform({1, 64, 8 * 64}, 45)}},
              [](const std::vector<Tensor>& t, DType) {
                return ops::attention(t[0], t[1], t[2], 8, {}, 1.0f);
              });
}

TEST(CudaOps, AttentionWithMasks) {
  // CLIP's causal mask: −inf above the diagonal, [1, 77, 77] broadcast over the batch.
  std::vector<float> causal(77 * 77);
  for (int i = 0; i < 77; ++i)
    for (int j = 0; j < 77; ++j) causal[static_cast<size_t>(i * 77 + j)] = j > i ? -INFINITY : 0.0f;
  const Tensor causal_mask = Tensor::from_floats(causal, {1, 77, 77});
  compare_all("attention causal 77",
              {{uniform({2, 77, 12 * 64}, 50)},
               {uniform({2, 77, 12 * 64}, 51)},
               {uniform({2, 77, 12 * 64}, 52)},
               {causal_mask, false}},
              [](const std::vector<Tensor>& t, DType) {
                return ops::attention(t[0], t[1], t[2], 12, t[3]);
              });
  // A per-batch additive mask with one query row: [B, 1, Nk].
  compare_all("attention key mask",
              {{uniform({2, 40, 4 * 40}, 53)},
               {uniform({2, 77, 4 * 40}, 54)},
               {uniform({2, 77, 4 * 40}, 55)},
               {uniform({2, 1, 77}, 56, -4, 0), false}},
              [](const std::vector<Tensor>& t, DType) {
                return ops::attention(t[0], t[1], t[2], 4, t[3]);
              });
  // Rows whose first 100 keys (the whole first 64-key tile and part of the next) are
  // masked out, and rows masked out entirely (expected output: zeros).
  {
    const int64_t nq = 100, nk = 150;
    std::vector<float> mv(static_cast<size_t>(2 * nq * nk));
    std::mt19937 rng(61);
    std::uniform_real_distribution<float> dist(-2.0f, 2.0f);
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t i = 0; i < nq; ++i)
        for (int64_t j = 0; j < nk; ++j) {
          float x = dist(rng);
          if ((i + b) % 7 == 0 || ((i + b) % 3 == 0 && j < 100)) x = -INFINITY;
          mv[static_cast<size_t>((b * nq + i) * nk + j)] = x;
        }
    compare_all("attention masked key tiles",
                {{uniform({2, nq, 2 * 64}, 62)},
                 {uniform({2, nk, 2 * 64}, 63)},
                 {uniform({2, nk, 2 * 64}, 64)},
                 {Tensor::from_floats(mv, {2, nq, nk}), false}},
                [](const std::vector<Tensor>& t, DType) {
                  return ops::attention(t[0], t[1], t[2], 2, t[3]);
                });
  }
  // A full [B, Nq, Nk] mask.
  compare_all("attention full mask",
              {{uniform({2, 30, 2 * 32}, 57)},
               {uniform({2, 50, 2 * 32}, 58)},
               {uniform({2, 50, 2 * 32}, 59)},
               {uniform({2, 30, 50}, 60, -2, 2), false}},
              [](const std::vector<Tensor>& t, DType) {
                return ops::attention(t[0], t[1], t[2], 2, t[3]);
              });
}

// ---- normalisation ----

TEST(CudaOps, GroupNorm) {
  struct Case {
    Shape x;
    int groups;
    bool affine, silu;
    float lo, hi;
  };
  const std::vector<Case> cases{
      {{2, 32, 32, 320}, 32, true, true, -1, 1},   {{2, 64, 64, 128}, 32, true, false, -1, 1},
      {{1, 7, 9, 64}, 8, false, false, -1, 1},     {{2, 3, 32}, 16, true, true, -1, 1},
      {{2, 16, 16, 320}, 32, true, false, 10, 11},  // |mean| ≫ std: cancellation test
      {{1, 1, 1, 6}, 3, true, false, -1, 1}};
  for (const Case& c : cases) {
    const int64_t ch = c.x[-1];
    std::vector<Input> in{{uniform(c.x, 60, c.lo, c.hi)}, {uniform({ch}, 61)}, {uniform({ch}, 62)}};
    compare_all(
        "group_norm " + c.x.str() + " g" + std::to_string(c.groups) + (c.silu ? " silu" : ""), in,
        [&](const std::vector<Tensor>& t, DType) {
          return ops::group_norm(t[0], c.groups, c.affine ? t[1] : Tensor(),
                                 c.affine ? t[2] : Tensor(), 1e-5f, c.silu);
        });
  }
}

TEST(CudaOps, LayerNormAndRmsNorm) {
  for (const Shape& s :
       std::vector<Shape>{{2, 1024, 320}, {154, 768}, {5, 7}, {1, 1280}, {3, 2049}}) {
    const int64_t c = s[-1];
    std::vector<Input> in{{uniform(s, 70, -2, 3)}, {uniform({c}, 71)}, {uniform({c}, 72)}};
    compare_all("layer_norm " + s.str(), in, [](const std::vector<Tensor>& t, DType) {
      return ops::layer_norm(t[0], t[1], t[2]);
    });
    compare_all("layer_norm plain " + s.str(), in, [](const std::vector<Tensor>& t, DType) {
      return ops::layer_norm(t[0], {}, {}, 1e-6f);
    });
    compare_all("rms_norm " + s.str(), in,
                [](const std::vector<Tensor>& t, DType) { return ops::rms_norm(t[0], t[1]); });
    compare_all("rms_norm plain " + s.str(), in,
                [](const std::vector<Tensor>& t, DType) { return ops::rms_norm(t[0], {}, 1e-5f); });
  }
}

TEST(CudaOps, Softmax) {
  for (const Shape& s : std::vector<Shape>{{8 * 64, 4096}, {5, 77}, {3, 1}, {2, 3, 1001}}) {
    compare_all("softmax " + s.str(), {{uniform(s, 80, -8, 8)}},
                [](const std::vector<Tensor>& t, DType) { return ops::softmax(t[0]); });
  }
}

// ---- elementwise ----

TEST(CudaOps, Unary) {
  const std::vector<Input> in{{uniform({3, 1001}, 90, -6, 6)}};
  compare_all("silu", in, [](const std::vector<Tensor>& t, DType) { return ops::silu(t[0]); });
  compare_all("gelu", in, [](const std::vector<Tensor>& t, DType) { return ops::gelu(t[0]); });
  compare_all("gelu tanh", in,
              [](const std::vector<Tensor>& t, DType) { return ops::gelu(t[0], true); });
  compare_all("quick_gelu", in,
              [](const std::vector<Tensor>& t, DType) { return ops::quick_gelu(t[0]); });
  compare_all("leaky_relu 0.2", in,
              [](const std::vector<Tensor>& t, DType) { return ops::leaky_relu(t[0], 0.2f); });
  compare_all("silu big", {{uniform({2, 64, 64, 320}, 91, -6, 6)}},
              [](const std::vector<Tensor>& t, DType) { return ops::silu(t[0]); });
}

TEST(CudaOps, Geglu) {
  for (const Shape& s : std::vector<Shape>{{2, 256, 2 * 1280}, {3, 10}, {1, 2}}) {
    compare_all("geglu " + s.str(), {{uniform(s, 100, -4, 4)}},
                [](const std::vector<Tensor>& t, DType) { return ops::geglu(t[0]); });
  }
}

TEST(CudaOps, BinaryWithBroadcasting) {
  struct Case {
    Shape a, b;
  };
  const std::vector<Case> cases{{{2, 64, 64, 320}, {2, 64, 64, 320}},
                                {{2, 32, 32, 320}, {2, 1, 1, 320}},  // per-channel (time embedding)
                                {{2, 4096, 320}, {320}},             // bias over rows
                                {{3, 1, 5}, {1, 4, 1}},              // both broadcast
                                {{7}, {1}},
                                {{1}, {2, 3}}};
  const std::pair<const char*, Tensor (*)(const Tensor&, const Tensor&)> kinds[] = {
      {"add", &ops::add}, {"sub", &ops::sub}, {"mul", &ops::mul}, {"div", &ops::div}};
  for (const Case& c : cases)
    for (const auto& [name, fn] : kinds) {
      // b away from zero so that div is well conditioned.
      compare_all(std::string(name) + " " + c.a.str() + " " + c.b.str(),
                  {{uniform(c.a, 110)}, {uniform(c.b, 111, 0.5f, 1.5f)}},
                  [fn = fn](const std::vector<Tensor>& t, DType) { return fn(t[0], t[1]); });
    }
}

// ---- resampling and embeddings ----

TEST(CudaOps, Resize) {
  struct Case {
    Shape x;
    int64_t h, w;
  };
  const std::vector<Case> cases{{{1, 13, 17, 3}, 26, 34},
                                {{2, 64, 64, 4}, 37, 50},
                                {{1, 1, 1, 3}, 4, 5},
                                {{1, 8, 8, 320}, 16, 16},
                                {{1, 10, 6, 2}, 3, 13}};
  for (const Case& c : cases)
    for (ResizeMode mode : {ResizeMode::Bilinear, ResizeMode::Bicubic}) {
      compare_all(std::string(mode == ResizeMode::Bilinear ? "bilinear " : "bicubic ") + c.x.str() +
                      " → " + std::to_string(c.h) + "x" + std::to_string(c.w),
                  {{uniform(c.x, 120)}}, [&](const std::vector<Tensor>& t, DType) {
                    return ops::resize(t[0], c.h, c.w, mode);
                  });
    }
}

TEST(CudaOps, TimestepEmbedding) {
  const Tensor t = Tensor::from_floats(std::vector<float>{0.0f, 1.0f, 500.0f, 999.5f}, {4});
  struct Case {
    int dim;
    bool flip;
    float shift;
  };
  for (const Case& c : std::vector<Case>{
           {320, true, 0.0f}, {1280, false, 1.0f}, {7, true, 0.0f}, {256, true, 1.0f}})
    compare_all("timestep_embedding " + std::to_string(c.dim), {{t, false}},
                [&](const std::vector<Tensor>& in, DType dtype) {
                  return ops::timestep_embedding(in[0], c.dim, c.flip, c.shift, 10000.0f, dtype);
                });
}

TEST(CudaOps, EmbeddingIsExact) {
  std::vector<float> id_values;
  std::mt19937 rng(5);
  for (int i = 0; i < 2 * 77; ++i) id_values.push_back(static_cast<float>(rng() % 1000));
  for (DType id_type : {DType::I32, DType::I64}) {
    Tensor ids = Tensor::empty({2, 77}, id_type);
    for (size_t i = 0; i < id_values.size(); ++i) {
      if (id_type == DType::I32)
        ids.data<int32_t>()[i] = static_cast<int32_t>(id_values[i]);
      else
        ids.data<int64_t>()[i] = static_cast<int64_t>(id_values[i]);
    }
    for (DType t : kDtypes)
      compare_exact(
          "embedding", {{ids, false}, {uniform({1000, 768}, 130)}},
          [](const std::vector<Tensor>& in, DType) { return ops::embedding(in[0], in[1]); }, t);
  }
  // An id out of range is an error, not a wild read.
  Tensor bad = Tensor::empty({1}, DType::I32);
  bad.data<int32_t>()[0] = 1000;
  const Tensor table = ops::to_device(uniform({1000, 8}, 131), kGpu);
  EXPECT_THROW(ops::embedding(ops::to_device(bad, kGpu), table), Error);
}

// ---- layout ----

TEST(CudaOps, LayoutOpsAreExact) {
  for (DType t : kDtypes) {
    compare_exact(
        "permute 0312", {{uniform({2, 3, 4, 5}, 140)}},
        [](const std::vector<Tensor>& in, DType) {
          return ops::permute(in[0], {0, 3, 1, 2});
        },
        t);
    compare_exact(
        "permute reverse", {{uniform({2, 64, 7, 40}, 141)}},
        [](const std::vector<Tensor>& in, DType) {
          return ops::permute(in[0], {3, 2, 1, 0});
        },
        t);
    compare_exact(
        "permute heads", {{uniform({2, 77, 8, 40}, 142)}},
        [](const std::vector<Tensor>& in, DType) {
          return ops::permute(in[0], {0, 2, 1, 3});
        },
        t);
    compare_exact(
        "slice step 2", {{uniform({2, 9, 5, 3}, 143)}},
        [](const std::vector<Tensor>& in, DType) { return ops::slice(in[0], 1, 1, 8, 2); }, t);
    compare_exact(
        "slice last", {{uniform({4, 2 * 1280}, 144)}},
        [](const std::vector<Tensor>& in, DType) { return ops::slice(in[0], -1, 1280, 2 * 1280); },
        t);
    compare_exact(
        "slice first", {{uniform({3, 4}, 145)}},
        [](const std::vector<Tensor>& in, DType) { return ops::slice(in[0], 0, -1, 3); }, t);
    compare_exact(
        "concat channels", {{uniform({2, 8, 8, 320}, 146)}, {uniform({2, 8, 8, 640}, 147)}},
        [](const std::vector<Tensor>& in, DType) {
          return ops::concat({in[0], in[1]}, -1);
        },
        t);
    compare_exact(
        "concat tokens",
        {{uniform({2, 77, 64}, 148)}, {uniform({2, 3, 64}, 149)}, {uniform({2, 1, 64}, 150)}},
        [](const std::vector<Tensor>& in, DType) {
          return ops::concat({in[0], in[1], in[2]}, 1);
        },
        t);
    compare_exact(
        "concat batch", {{uniform({1, 5, 3}, 151)}, {uniform({2, 5, 3}, 152)}},
        [](const std::vector<Tensor>& in, DType) {
          return ops::concat({in[0], in[1]}, 0);
        },
        t);
    compare_exact(
        "upsample", {{uniform({2, 8, 8, 320}, 153)}},
        [](const std::vector<Tensor>& in, DType) { return ops::upsample_nearest2x(in[0]); }, t);
    compare_exact(
        "upsample odd", {{uniform({1, 3, 5, 7}, 154)}},
        [](const std::vector<Tensor>& in, DType) { return ops::upsample_nearest2x(in[0]); }, t);
  }
}

TEST(CudaOps, CastIsExact) {
  for (DType from : kDtypes)
    for (DType to : kDtypes) {
      if (from == to) continue;
      // Values spanning many binades, so that rounding and subnormals are exercised.
      std::vector<float> v;
      std::mt19937 rng(9);
      std::uniform_real_distribution<float> e(-30, 30);
      for (int i = 0; i < 4099; ++i)
        v.push_back(std::ldexp(e(rng) / 30.0f + 0.01f, static_cast<int>(e(rng) / 2)));
      const Tensor x = Tensor::from_floats(v, {static_cast<int64_t>(v.size())}, from);
      compare_exact(
          std::string("cast to ") + std::string(dtype_name(to)), {{x, false}},
          [to = to](const std::vector<Tensor>& in, DType) { return ops::cast(in[0], to); }, from);
    }
}

TEST(CudaOps, CastFromFp8MatchesCpu) {
  for (DType from : {DType::F8E4M3, DType::F8E5M2}) {
    Tensor x = Tensor::empty({256}, from);
    for (int i = 0; i < 256; ++i) x.data<uint8_t>()[i] = static_cast<uint8_t>(i);
    for (DType to : kDtypes) {
      const Tensor ref = ops::cast(x, to);
      const Tensor got = ops::to_device(ops::cast(ops::to_device(x, kGpu), to), kCpu);
      const std::vector<float> r = ref.to_floats(), g = got.to_floats();
      for (int i = 0; i < 256; ++i) {
        if (std::isnan(r[static_cast<size_t>(i)])) {
          EXPECT_TRUE(std::isnan(g[static_cast<size_t>(i)])) << "code " << i;
        } else {
          EXPECT_EQ(g[static_cast<size_t>(i)], r[static_cast<size_t>(i)])
              << dtype_name(from) << " code " << i << " to " << dtype_name(to);
        }
      }
    }
  }
}

}  // namespace
}  // namespace darkroom

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  darkroom::init_cuda_backend();
  if (darkroom::cuda_device_count() == 0 && !GTEST_FLAG_GET(list_tests)) {
    std::fprintf(stderr, "darkroom_cuda_tests: no CUDA device; these tests need a GPU\n");
    return 1;
  }
  return RUN_ALL_TESTS();
}
