// Sinusoidal timestep embedding as diffusers' get_timestep_embedding computes it:
//   exponent[i] = −ln(max_period) · i / (half − shift)     (f32, i < half = dim/2)
//   arg[b, i]   = t[b] · exp(exponent[i])                   (f32)
//   out[b]      = [cos(arg), sin(arg)] if flip_sin_to_cos else [sin(arg), cos(arg)]
// plus one zero column when dim is odd. The exponent and argument are rounded to f32
// step by step as PyTorch does, because at t ≈ 1000 an f32 argument differs from the
// exact one by ~1e-4 and matching the reference models matters more than exactness.
// t [B] f32 → out [B, dim]; tiny, so single-threaded.
#include <cmath>
#include <vector>

#include "backend/cpu/kernels.h"
#include "backend/cpu/vec.h"

namespace darkroom::cpu {

void timestep_embedding(const TimestepEmbeddingArgs& args) {
  const Tensor& out = args.out;
  const int64_t batch = out.dim(0), dim = out.dim(1);
  const int64_t half = dim / 2;
  const float* t = args.t.data<float>();

  const float neg_log_period = static_cast<float>(-std::log(static_cast<double>(args.max_period)));
  const float denom = static_cast<float>(half) - args.downscale_freq_shift;
  std::vector<float> freq(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i) {
    const float exponent = neg_log_period * static_cast<float>(i) / denom;
    freq[static_cast<size_t>(i)] = std::exp(exponent);
  }

  std::vector<float> row(static_cast<size_t>(dim));
  const size_t elem = dtype_size(out.dtype());
  for (int64_t b = 0; b < batch; ++b) {
    // The first half holds cos when flipped, sin otherwise.
    float* first = row.data();
    float* second = row.data() + half;
    for (int64_t i = 0; i < half; ++i) {
      const float arg = t[b] * freq[static_cast<size_t>(i)];
      // sin/cos of the f32 argument evaluated in double, then rounded once.
      const float s = static_cast<float>(std::sin(static_cast<double>(arg)));
      const float c = static_cast<float>(std::cos(static_cast<double>(arg)));
      first[i] = args.flip_sin_to_cos ? c : s;
      second[i] = args.flip_sin_to_cos ? s : c;
    }
    if (dim % 2) row[static_cast<size_t>(dim - 1)] = 0.0f;
    store_f32(row.data(), out.dtype(), static_cast<char*>(out.raw()) + b * dim * elem, dim);
  }
}

}  // namespace darkroom::cpu
