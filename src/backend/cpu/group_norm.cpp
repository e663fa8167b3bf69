// GroupNorm over channels-last activations: x [N, S, C], C split into G groups of Cg
// channels; statistics per (n, g) over S × Cg values (biased variance, as PyTorch).
//
// A group's values are strided in memory (Cg of every C), so rather than walking one
// group at a time, both passes stream whole rows of C channels, where the inner loop
// over channels is contiguous and vectorises:
//  1. per block of positions, per channel: Σ(x - K) and Σ(x - K)² in f32, with the shift
//     K = x[n, 0, c]. The shift keeps the sums small when a channel's mean is large next
//     to its spread, where Σx² - (Σx)²/S would cancel catastrophically.
//  2. blocks and channels combine into group mean and variance in double, folded with
//     weight and bias into a per-channel y = x·a + b (then SiLU if asked).
//  3. a second stream over the rows applies it.
// Work is split over (n, block of positions), so even N = 1 with one group keeps every
// thread busy.
#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/cpu/kernels.h"
#include "backend/cpu/vec_math.h"
#include "core/thread_pool.h"

namespace darkroom::cpu {
namespace {

// Positions per block: long enough to amortise a task, short enough that the f32
// partial sums stay accurate and that there are many blocks to spread over threads.
constexpr int64_t kBlock = 64;

// One position: out[:] = x[:]·a + b (then SiLU); a, b [C].
void apply_row(const float* x, const float* a, const float* b, float* out, int64_t c, bool silu) {
  if (silu) {
    for (int64_t i = 0; i < c; ++i) out[i] = silu_f32(std::fma(x[i], a[i], b[i]));
  } else {
    for (int64_t i = 0; i < c; ++i) out[i] = std::fma(x[i], a[i], b[i]);
  }
}

}  // namespace

void group_norm(const GroupNormArgs& args) {
  const Tensor& x = args.x;  // [N, S, C]
  const Tensor& out = args.out;
  const int64_t n_batch = x.dim(0), s_len = x.dim(1), c = x.dim(2);
  const int64_t groups = args.groups, cg = c / groups;
  if (x.numel() == 0) return;
  const int64_t blocks = (s_len + kBlock - 1) / kBlock;
  const int64_t tasks = n_batch * blocks;
  ThreadPool& pool = ThreadPool::global();

  // shift [N, C] = x[:, 0, :]
  std::vector<float> shift(static_cast<size_t>(n_batch * c));
  for (int64_t n = 0; n < n_batch; ++n) {
    float* dst = shift.data() + n * c;
    const float* row = f32_in(x, n * s_len * c, c, dst);
    if (row != dst) std::copy(row, row + c, dst);
  }

  // Pass 1. sum1, sum2 [N, blocks, C]: shifted sums per block and channel.
  std::vector<float> sum1(static_cast<size_t>(tasks * c)), sum2(sum1.size());
  pool.parallel_for(tasks, [&](int64_t t0, int64_t t1) {
    std::vector<float> buf(static_cast<size_t>(c));
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t n = t / blocks, s0 = (t % blocks) * kBlock;
      const int64_t s1 = std::min(s_len, s0 + kBlock);
      const float* k = shift.data() + n * c;
      float* acc1 = sum1.data() + t * c;
      float* acc2 = sum2.data() + t * c;
      std::fill(acc1, acc1 + c, 0.0f);
      std::fill(acc2, acc2 + c, 0.0f);
      for (int64_t s = s0; s < s1; ++s) {
        const float* row = f32_in(x, (n * s_len + s) * c, c, buf.data());
        for (int64_t i = 0; i < c; ++i) {
          const float d = row[i] - k[i];
          acc1[i] += d;
          acc2[i] += d * d;
        }
      }
    }
  });

  // Pass 2. scale, offset [N, C]: the normalisation and affine transform folded together.
  std::vector<float> w(static_cast<size_t>(c), 1.0f), bias(static_cast<size_t>(c), 0.0f);
  if (args.weight.defined()) load_f32(args.weight.raw(), args.weight.dtype(), w.data(), c);
  if (args.bias.defined()) load_f32(args.bias.raw(), args.bias.dtype(), bias.data(), c);
  std::vector<float> scale(static_cast<size_t>(n_batch * c)), offset(scale.size());
  pool.parallel_for(n_batch * groups, [&](int64_t g0, int64_t g1) {
    std::vector<double> m1(static_cast<size_t>(cg)), m2(m1.size());
    for (int64_t ng = g0; ng < g1; ++ng) {
      const int64_t n = ng / groups, c0 = (ng % groups) * cg;
      const float* k = shift.data() + n * c + c0;
      std::fill(m1.begin(), m1.end(), 0.0);
      std::fill(m2.begin(), m2.end(), 0.0);
      for (int64_t b = 0; b < blocks; ++b) {
        const float* p1 = sum1.data() + (n * blocks + b) * c + c0;
        const float* p2 = sum2.data() + (n * blocks + b) * c + c0;
        for (int64_t i = 0; i < cg; ++i) {
          m1[static_cast<size_t>(i)] += p1[i];
          m2[static_cast<size_t>(i)] += p2[i];
        }
      }
      // mean = Σ over channels of (S·K + Σ(x-K)) / (S·Cg); then Σ(x-mean)² per channel
      // is Σ(x-K)² - 2(mean-K)Σ(x-K) + S(mean-K)².
      const double count = double(s_len) * double(cg);
      double total = 0;
      for (int64_t i = 0; i < cg; ++i) total += double(s_len) * k[i] + m1[static_cast<size_t>(i)];
      const double mean = total / count;
      double m2_total = 0;
      for (int64_t i = 0; i < cg; ++i) {
        const double dk = mean - k[i];
        m2_total += m2[static_cast<size_t>(i)] - 2.0 * dk * m1[static_cast<size_t>(i)] +
                    double(s_len) * dk * dk;
      }
      const double var = std::max(m2_total / count, 0.0);
      const double rstd = 1.0 / std::sqrt(var + double(args.eps));
      for (int64_t i = c0; i < c0 + cg; ++i) {
        const double a = rstd * w[static_cast<size_t>(i)];
        scale[static_cast<size_t>(n * c + i)] = static_cast<float>(a);
        offset[static_cast<size_t>(n * c + i)] =
            static_cast<float>(bias[static_cast<size_t>(i)] - mean * a);
      }
    }
  });

  // Pass 3. out[n, s, :] = x[n, s, :]·scale[n] + offset[n] (+ SiLU).
  pool.parallel_for(tasks, [&](int64_t t0, int64_t t1) {
    std::vector<float> in_buf(static_cast<size_t>(c)), out_buf(in_buf.size());
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t n = t / blocks, s0 = (t % blocks) * kBlock;
      const int64_t s1 = std::min(s_len, s0 + kBlock);
      for (int64_t s = s0; s < s1; ++s) {
        const int64_t at = (n * s_len + s) * c;
        const float* row = f32_in(x, at, c, in_buf.data());
        float* dst = f32_out(out, at, out_buf.data());
        apply_row(row, scale.data() + n * c, offset.data() + n * c, dst, c, args.silu);
        f32_out_done(out, at, dst, c);
      }
    }
  });
}

}  // namespace darkroom::cpu
