// TorchGenerator: PyTorch's CPU random generator (`torch.Generator()`, the default one
// behind `torch.manual_seed`), reproduced bit for bit for float32 `torch.randn`, so a
// seed gives the same initial latent noise as ComfyUI.
//
// What torch does (ATen CPUGeneratorImpl, MT19937RNGEngine.h, DistributionTemplates.h,
// TransformationHelper.h, DistributionsHelper.h):
//  - the engine is the standard 32-bit Mersenne Twister, seeded with the low 32 bits of
//    the 64-bit seed; `manual_seed` also clears the cached Box–Muller sample.
//  - randn of n >= 16 contiguous floats ("normal_fill"): n float uniforms
//    u = (mt() & (2^24 - 1)) · 2^-24 are written first; then every whole chunk of 16 is
//    turned into normals in place, pairing element j with j + 8:
//        r = sqrt(-2·log(1 - u[j])),  θ = 2π·u[j + 8],
//        out[j] = r·cos θ,  out[j + 8] = r·sin θ.
//    If n % 16 != 0, 16 fresh uniforms are drawn into the LAST 16 slots (overwriting the
//    tail of the previous chunk) and transformed again.
//  - randn of n < 16 draws each value from a double-precision Box–Muller with a
//    one-value cache: u1, u2 from 53-bit uniforms (two mt() calls each, high word
//    first); r = sqrt(-2·log1p(-u2)), θ = 2π·u1; returns r·cos θ and caches r·sin θ
//    for the next scalar draw (also across later calls, until the next seed).
//
// The float log/sin/cos in normal_fill depend on the CPU kernel torch dispatches to:
//  - BoxMuller::Avx2 (default): x86 with AVX2 or AVX-512 (normal is never dispatched to
//    the AVX-512 kernel). torch uses the Cephes-style polynomials of avx_mathfun.h, and
//    the PyPI wheels are built by GCC, which contracts their mul+add pairs into FMAs; we
//    emulate that lane by lane with the same contractions (checked against torch 2.x).
//  - BoxMuller::Scalar: torch's DEFAULT kernel (CPUs without AVX2, aarch64 such as
//    Apple silicon, or ATEN_CPU_CAPABILITY=default): float logf/sinf/cosf from the C
//    library, which glibc computes identically (correctly rounded in practice).
// CUDA's generator (Philox) is a different stream and is not reproduced here.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "core/shape.h"
#include "core/tensor.h"

namespace darkroom::sampling {

// The 32-bit Mersenne Twister (MT19937) as torch seeds it.
class Mt19937 {
 public:
  explicit Mt19937(uint32_t seed = 5489) { seed_with(seed); }
  void seed_with(uint32_t seed);
  uint32_t operator()();

 private:
  void twist();
  std::array<uint32_t, 624> state_{};
  int next_ = 624;
};

enum class BoxMuller { Avx2, Scalar };

class TorchGenerator {
 public:
  // torch's default seed (c10::detail::default_rng_seed_val).
  static constexpr uint64_t kDefaultSeed = 67280421310721ull;

  explicit TorchGenerator(uint64_t seed = kDefaultSeed, BoxMuller box_muller = BoxMuller::Avx2);

  // torch.manual_seed(seed) / Generator.manual_seed(seed).
  void manual_seed(uint64_t seed);

  uint32_t random() { return engine_(); }
  // Two draws, the first one in the high word.
  uint64_t random64();

  // torch.randn(out.size(), generator=this) in float32.
  void randn(std::span<float> out);
  // torch.randn(shape) as a CPU f32 tensor in the same (row-major) order.
  Tensor randn(const Shape& shape);

 private:
  void normal_fill(std::span<float> out);
  double scalar_normal();

  Mt19937 engine_;
  std::optional<double> next_double_normal_;
  BoxMuller box_muller_;
};

// torch's 16-value Box–Muller step on `data[0..16)` (uniforms in, normals out).
void box_muller_16(float* data, BoxMuller kind);

}  // namespace darkroom::sampling
