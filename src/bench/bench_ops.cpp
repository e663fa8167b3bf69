// `darkroom bench ops`: GFLOP/s of our conv2d, linear and attention at Stable Diffusion
// shapes, each beside the same oneDNN primitive called directly in the same run
// (weights pre-reordered, buffers preallocated: the best a caller of oneDNN can do).
// Runs alternate ours / reference so machine noise hits both; the median is reported.
#include "bench/bench_ops.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>

#include "backend/cpu/attention_plan.h"
#include "backend/cpu/onednn_utils.h"
#include "backend/device.h"
#include "backend/ops.h"
#include "core/arena.h"
#include "core/half.h"
#include "core/thread_pool.h"

namespace darkroom::bench {
namespace {

using dnnl::memory;
using tag = memory::format_tag;
namespace dn = cpu::onednn;

struct Result {
  std::string op, dtype, shape, reference;
  double ours_gflops, reference_gflops;
  int64_t scratch_bytes;
};

double seconds_of(const std::function<void()>& fn) {
  auto t0 = std::chrono::steady_clock::now();
  fn();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Times both, interleaved, after one warm-up each; returns median seconds.
std::pair<double, double> time_pair(const std::function<void()>& ours,
                                    const std::function<void()>& ref, int repeat) {
  ours();
  ref();
  std::vector<double> a, b;
  for (int i = 0; i < repeat; ++i) {
    a.push_back(seconds_of(ours));
    b.push_back(seconds_of(ref));
  }
  return {median(a), median(b)};
}

Tensor random(const Shape& s, DType dt, uint64_t seed, float scale = 1.0f) {
  std::vector<float> v(static_cast<size_t>(s.numel()));
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (float& f : v) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    f = scale * (static_cast<float>(x >> 40) / static_cast<float>(1 << 24) - 0.5f);
  }
  return Tensor::from_floats(v, s, dt);
}

dnnl::memory reordered(const memory::desc& plain, const memory::desc& wanted, const Tensor& w) {
  memory src(plain, dn::engine(), w.raw()), dst(wanted, dn::engine());
  dnnl::reorder(src, dst).execute(dn::stream(), src, dst);
  dn::stream().wait();
  return dst;
}

Result bench_conv(DType dt, int64_t n, int64_t hw, int64_t c, int64_t o, int64_t k, int repeat) {
  const int64_t pad = k / 2;
  Tensor x = random({n, hw, hw, c}, dt, 1), w = random({o, c, k, k}, dt, 2, 0.1f),
         b = random({o}, dt, 3);
  const auto t = dn::to_dnnl(dt);
  memory::desc src({n, c, hw, hw}, t, tag::nhwc), dst({n, o, hw, hw}, t, tag::nhwc),
      bias({o}, t, tag::a), w_plain({o, c, k, k}, t, tag::oihw), w_any({o, c, k, k}, t, tag::any);
  dnnl::convolution_forward::primitive_desc pd(
      dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference,
                                      dnnl::algorithm::convolution_direct, src, w_any, bias, dst,
                                      {1, 1}, {pad, pad}, {pad, pad}),
      dn::engine());
  dnnl::convolution_forward prim(pd);
  memory wm = reordered(w_plain, pd.weights_desc(), w);
  Tensor out_ref = Tensor::empty({n, hw, hw, o}, dt);
  memory sm(src, dn::engine(), x.raw()), bm(bias, dn::engine(), b.raw()),
      dm(dst, dn::engine(), out_ref.raw());
  Arena arena;
  auto [ours, ref] = time_pair(
      [&] {
        ArenaScope scope(arena);
        ops::conv2d(x, w, b, {1, static_cast<int>(pad)});
      },
      [&] {
        prim.execute(
            dn::stream(),
            {{DNNL_ARG_SRC, sm}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_BIAS, bm}, {DNNL_ARG_DST, dm}});
        dn::stream().wait();
      },
      repeat);
  const double flops = 2.0 * n * hw * hw * o * c * k * k;
  char shape[96];
  std::snprintf(shape, sizeof shape, "%ldx%ld %ldx%ldx%ldx%ld->%ld", k, k, n, hw, hw, c, o);
  return {"conv2d",           std::string(dtype_name(dt)), shape, pd.impl_info_str(),
          flops / ours / 1e9, flops / ref / 1e9,           0};
}

Result bench_linear(DType dt, int64_t m, int64_t k, int64_t nout, int repeat) {
  Tensor x = random({m, k}, dt, 4), w = random({nout, k}, dt, 5, 0.1f), b = random({nout}, dt, 6);
  const auto t = dn::to_dnnl(dt);
  memory::desc src({m, k}, t, tag::ab), dst({m, nout}, t, tag::ab), bias({1, nout}, t, tag::ab),
      w_plain({k, nout}, t, tag::ba), w_any({k, nout}, t, tag::any);
  dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src, w_any, bias, dst), dn::engine());
  dnnl::matmul prim(pd);
  memory wm = reordered(w_plain, pd.weights_desc(), w);
  Tensor out_ref = Tensor::empty({m, nout}, dt);
  memory sm(src, dn::engine(), x.raw()), bm(bias, dn::engine(), b.raw()),
      dm(dst, dn::engine(), out_ref.raw());
  Arena arena;
  auto [ours, ref] = time_pair(
      [&] {
        ArenaScope scope(arena);
        ops::linear(x, w, b);
      },
      [&] {
        prim.execute(
            dn::stream(),
            {{DNNL_ARG_SRC, sm}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_BIAS, bm}, {DNNL_ARG_DST, dm}});
        dn::stream().wait();
      },
      repeat);
  const double flops = 2.0 * m * k * nout;
  char shape[96];
  std::snprintf(shape, sizeof shape, "%ldx%ld * %ldx%ld", m, k, k, nout);
  return {"matmul",           std::string(dtype_name(dt)), shape, pd.impl_info_str(),
          flops / ours / 1e9, flops / ref / 1e9,           0};
}

// Reference: the unfused computation on the same oneDNN matmul primitive type —
// S = scale·Q·Kᵀ for all tokens at once ([B, H, N, N] f32, the tokens² memory that our
// tiling avoids), oneDNN's softmax primitive, then P·V.
Result bench_attention(DType dt, int64_t b, int64_t h, int64_t n, int64_t d, int repeat) {
  Tensor q = random({b, n, h * d}, dt, 7, 4.0f), k = random({b, n, h * d}, dt, 8, 4.0f),
         v = random({b, n, h * d}, dt, 9);
  const auto t = dn::to_dnnl(dt);
  const auto f32 = memory::data_type::f32;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  memory::desc qd({b, h, n, d}, t, {n * h * d, d, h * d, 1}),
      kd({b, h, d, n}, t, {n * h * d, d, 1, h * d}), sd({b, h, n, n}, f32, tag::abcd),
      pdsc({b, h, n, n}, t, tag::abcd), vd({b, h, n, d}, t, {n * h * d, d, h * d, 1}),
      od({b, h, n, d}, t, {n * h * d, d, h * d, 1});
  dnnl::primitive_attr attr;
  attr.set_output_scales(0, {scale});
  dnnl::matmul qk(dnnl::matmul::primitive_desc(dnnl::matmul::desc(qd, kd, sd), attr, dn::engine()));
  dnnl::matmul pv(dnnl::matmul::primitive_desc(dnnl::matmul::desc(pdsc, vd, od), dn::engine()));
  Tensor s = Tensor::empty({b * h * n, n}, DType::F32);
  Tensor p = dt == DType::F32 ? s : Tensor::empty({b * h * n, n}, dt);
  Tensor o = Tensor::empty({b, n, h * d}, dt);
  memory qm(qd, dn::engine(), q.raw()), km(kd, dn::engine(), k.raw()),
      sm(sd, dn::engine(), s.raw()), pm(pdsc, dn::engine(), p.raw()), vm(vd, dn::engine(), v.raw()),
      om(od, dn::engine(), o.raw());
  dnnl::softmax_forward softmax(dnnl::softmax_forward::primitive_desc(
      dnnl::softmax_forward::desc(dnnl::prop_kind::forward_inference, sd, 3), dn::engine()));
  dnnl::reorder to_p(sm, pm);
  auto reference = [&] {
    qk.execute(dn::stream(), {{DNNL_ARG_SRC, qm}, {DNNL_ARG_WEIGHTS, km}, {DNNL_ARG_DST, sm}});
    softmax.execute(dn::stream(), {{DNNL_ARG_SRC, sm}, {DNNL_ARG_DST, sm}});
    if (dt != DType::F32) to_p.execute(dn::stream(), sm, pm);
    pv.execute(dn::stream(), {{DNNL_ARG_SRC, pm}, {DNNL_ARG_WEIGHTS, vm}, {DNNL_ARG_DST, om}});
    dn::stream().wait();
  };
  Arena arena;
  auto ours_fn = [&] {
    ArenaScope scope(arena);
    ops::attention(q, k, v, static_cast<int>(h));
  };
  auto [ours, ref] = time_pair(ours_fn, reference, repeat);
  // Scratch measured, not predicted: everything our call took from a fresh arena,
  // minus its output.
  Arena fresh;
  {
    ArenaScope scope(fresh);
    ops::attention(q, k, v, static_cast<int>(h));
  }
  const int64_t scratch =
      static_cast<int64_t>(fresh.high_water()) - static_cast<int64_t>(q.nbytes());
  const double flops = 4.0 * b * h * n * n * d;
  char shape[96];
  std::snprintf(shape, sizeof shape, "%ldx%ldh x %ld tok x %ld", b, h, n, d);
  return {"attention",
          std::string(dtype_name(dt)),
          shape,
          "oneDNN matmul+softmax+matmul, N^2 scores",
          flops / ours / 1e9,
          flops / ref / 1e9,
          scratch};
}

}  // namespace

int run_ops(const std::vector<std::string>& args) {
  bool json = false;
  int repeat = 5;
  std::vector<DType> dtypes{DType::F32, DType::BF16};
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--json") {
      json = true;
    } else if (args[i] == "--repeat" && i + 1 < args.size()) {
      repeat = std::max(1, std::stoi(args[++i]));
    } else if (args[i] == "--dtype" && i + 1 < args.size()) {
      dtypes = {parse_dtype(args[++i])};
    } else {
      fail("bench ops", "unknown option '", args[i],
           "' (use --json, --repeat N, --dtype f32|bf16)");
    }
  }
  if (!json)
    std::printf(
        "# %s; %d threads\n# ours vs the same oneDNN primitive called directly; median "
        "of %d interleaved runs\n",
        cpu_device().description().c_str(), ThreadPool::global().size(), repeat);
  if (!json)
    std::printf("%-10s %-5s %-30s %12s %12s %7s %12s  %s\n", "op", "dtype", "shape", "ours GF/s",
                "ref GF/s", "ratio", "scratch", "reference");
  for (DType dt : dtypes) {
    std::vector<Result> rs;
    rs.push_back(bench_conv(dt, 2, 64, 320, 320, 3, repeat));
    rs.push_back(bench_conv(dt, 2, 32, 640, 640, 3, repeat));
    rs.push_back(bench_linear(dt, 2 * 4096, 320, 1280, repeat));
    rs.push_back(bench_linear(dt, 2 * 4096, 1280, 320, repeat));
    rs.push_back(bench_attention(dt, 2, 8, 4096, 40, repeat));
    for (const Result& r : rs) {
      if (json) {
        std::printf(
            "{\"op\":\"%s\",\"dtype\":\"%s\",\"shape\":\"%s\",\"ours_gflops\":%.2f,"
            "\"reference_gflops\":%.2f,\"scratch_bytes\":%ld,\"reference\":\"%s\"}\n",
            r.op.c_str(), r.dtype.c_str(), r.shape.c_str(), r.ours_gflops, r.reference_gflops,
            r.scratch_bytes, r.reference.c_str());
      } else {
        std::printf("%-10s %-5s %-30s %12.1f %12.1f %6.0f%% %12ld  %s\n", r.op.c_str(),
                    r.dtype.c_str(), r.shape.c_str(), r.ours_gflops, r.reference_gflops,
                    100.0 * r.ours_gflops / r.reference_gflops, r.scratch_bytes,
                    r.reference.c_str());
      }
      std::fflush(stdout);
    }
  }
  return 0;
}

}  // namespace darkroom::bench
