// Linear multistep (k-diffusion's sample_lms, order 4): x += Σ_j c_j·d_{i-j}, where c_j
// integrates the Lagrange basis polynomial through the last `order` sigmas over
// [σ_i, σ_{i+1}]. ComfyUI integrates numerically (scipy quad); the integrand is a
// polynomial of degree < 4, so 4-point Gauss–Legendre is exact here.
#include <deque>

#include "sampling/samplers/common.h"
#include "sampling/samplers/samplers.h"

namespace darkroom::sampling {
namespace {

double lms_coefficient(int order, std::span<const float> t, int i, int j) {
  auto basis = [&](double tau) {
    double prod = 1.0;
    for (int k = 0; k < order; ++k) {
      if (k == j) continue;
      prod *= (tau - t[i - k]) / (static_cast<double>(t[i - j]) - t[i - k]);
    }
    return prod;
  };
  // Gauss–Legendre nodes and weights on [-1, 1].
  static constexpr double nodes[4] = {-0.8611363115940526, -0.3399810435848563, 0.3399810435848563,
                                      0.8611363115940526};
  static constexpr double weights[4] = {0.3478548451374538, 0.6521451548625461, 0.6521451548625461,
                                        0.3478548451374538};
  const double a = t[i], b = t[i + 1];
  const double half = (b - a) / 2, mid = (a + b) / 2;
  double sum = 0;
  for (int q = 0; q < 4; ++q) sum += weights[q] * basis(mid + half * nodes[q]);
  return sum * half;
}

}  // namespace

Tensor sample_lms(const Denoiser& denoise, const Tensor& x_in, std::span<const float> sigmas,
                  const SamplerOptions& options) {
  constexpr int order = 4;
  const int steps = detail::check_args(x_in, sigmas, "lms");
  Tensor x = clone(x_in);
  std::deque<Tensor> ds;  // newest last
  for (int i = 0; i < steps; ++i) {
    Tensor denoised = detail::denoise_checked(denoise, x, sigmas[i]);
    ds.push_back(to_d(x, sigmas[i], denoised));
    if (static_cast<int>(ds.size()) > order) ds.pop_front();
    detail::report(options, i, x, denoised);
    if (sigmas[i + 1] == 0) {
      x = denoised;
      continue;
    }
    const int cur_order = std::min(i + 1, order);
    // ComfyUI sums c_j·d over the history first, then adds the sum to x.
    Tensor sum;
    for (int j = 0; j < cur_order; ++j) {
      const auto c = static_cast<float>(lms_coefficient(cur_order, sigmas, i, j));
      const Tensor& d = ds[ds.size() - 1 - static_cast<size_t>(j)];
      sum = j == 0 ? map1(d, [c](float v) { return c * v; }) : add_scaled(sum, c, d);
    }
    x = map2(x, sum, [](float a, float b) { return a + b; });
  }
  return x;
}

}  // namespace darkroom::sampling
