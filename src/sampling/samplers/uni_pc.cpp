// UniPC (Zhao et al. 2023), multistep predictor-corrector with data prediction, as
// ComfyUI runs it (comfy/extra_samplers/uni_pc.py: sample_unipc with variant bh1 or
// bh2, order min(3, len(sigmas) - 2), time steps = the sigmas themselves, the last 0
// replaced by 0.001, lower order for the final steps, no corrector on the last one).
//
// UniPC works in variance-preserving space: with σ the k-diffusion sigma,
//   α = 1/sqrt(1 + σ²),  σ_t = σ/sqrt(1 + σ²),  λ = log α - log σ_t = -log σ,
// and x_vp = x / sqrt(1 + σ²). The model's data prediction at (x_vp, σ) is
// D(x_vp·sqrt(1 + σ²), σ) expressed through ε as ComfyUI does.
#include <array>
#include <vector>

#include "sampling/samplers/common.h"
#include "sampling/samplers/samplers.h"

namespace darkroom::sampling {
namespace {

enum class Variant { Bh1, Bh2 };

struct Vp {
  double alpha, std_dev, lambda;
};

// SigmaConvert: α, σ_t and λ from σ, in ComfyUI's formulation.
Vp vp(double sigma) {
  const double log_mean = 0.5 * std::log(1 / (sigma * sigma + 1));
  const double one_minus = 1.0 - std::exp(2.0 * log_mean);
  return {std::exp(log_mean), std::sqrt(one_minus), log_mean - 0.5 * std::log(one_minus)};
}

// Solves a (n ≤ 3) square system by Gaussian elimination with partial pivoting.
std::vector<double> solve(std::vector<std::vector<double>> a, std::vector<double> b) {
  const size_t n = b.size();
  for (size_t col = 0; col < n; ++col) {
    size_t pivot = col;
    for (size_t r = col + 1; r < n; ++r)
      if (std::fabs(a[r][col]) > std::fabs(a[pivot][col])) pivot = r;
    std::swap(a[col], a[pivot]);
    std::swap(b[col], b[pivot]);
    DR_CHECK(a[col][col] != 0, "uni_pc", "singular system (repeated sigmas?)");
    for (size_t r = col + 1; r < n; ++r) {
      const double f = a[r][col] / a[col][col];
      for (size_t c = col; c < n; ++c) a[r][c] -= f * a[col][c];
      b[r] -= f * b[col];
    }
  }
  std::vector<double> x(n);
  for (size_t r = n; r-- > 0;) {
    double s = b[r];
    for (size_t c = r + 1; c < n; ++c) s -= a[r][c] * x[c];
    x[r] = s / a[r][r];
  }
  return x;
}

// Σ_k w[k]·t[k], elementwise (the einsum over the history).
Tensor weighted_sum(const std::vector<Tensor>& t, const std::vector<double>& w, size_t count) {
  Tensor out = Tensor::zeros(t[0].shape(), DType::F32);
  float* po = out.data<float>();
  for (size_t k = 0; k < count; ++k) {
    const auto wk = static_cast<float>(w[k]);
    const float* pk = t[k].data<float>();
    for (int64_t i = 0; i < out.numel(); ++i) po[i] += wk * pk[i];
  }
  return out;
}

class UniPc {
 public:
  UniPc(const Denoiser& denoise, Variant variant) : denoise_(denoise), variant_(variant) {}

  // The data (x0) prediction at VP-space x and sigma.
  Tensor model_fn(const Tensor& x, double sigma) const {
    const auto s = static_cast<float>(sigma);
    const auto scale = static_cast<float>(std::sqrt(sigma * sigma + 1.0));
    const Tensor input = map1(x, [scale](float v) { return v * scale; });
    const Tensor denoised = detail::denoise_checked(denoise_, input, s);
    const Vp p = vp(sigma);
    const auto std_dev = static_cast<float>(p.std_dev), alpha = static_cast<float>(p.alpha);
    return map3(x, input, denoised, [=](float xv, float in, float dv) {
      const float eps = (in - dv) / s;
      return (xv - std_dev * eps) / alpha;
    });
  }

  // multistep_uni_pc_bh_update: returns the new x and, when the corrector ran, the
  // model output at the predicted point (reused as the next history entry).
  std::pair<Tensor, Tensor> update(const Tensor& x, const std::vector<Tensor>& model_prev,
                                   const std::vector<double>& t_prev, double t, int order,
                                   bool use_corrector) const {
    const double t_prev_0 = t_prev.back();
    const Vp prev0 = vp(t_prev_0), now = vp(t);
    const Tensor& model_prev_0 = model_prev.back();
    const double h = now.lambda - prev0.lambda;

    std::vector<double> rks;
    std::vector<Tensor> d1s;
    for (int i = 1; i < order; ++i) {
      const size_t idx = t_prev.size() - 1 - static_cast<size_t>(i);
      const double rk = (vp(t_prev[idx]).lambda - prev0.lambda) / h;
      rks.push_back(rk);
      const auto inv = static_cast<float>(rk);
      d1s.push_back(
          map2(model_prev[idx], model_prev_0, [inv](float a, float b) { return (a - b) / inv; }));
    }
    rks.push_back(1.0);

    const double hh = -h;  // data prediction
    const double h_phi_1 = std::expm1(hh);
    const double b_h = variant_ == Variant::Bh1 ? hh : std::expm1(hh);
    std::vector<std::vector<double>> r_mat(static_cast<size_t>(order));
    std::vector<double> b(static_cast<size_t>(order));
    double h_phi_k = std::expm1(hh) / hh - 1;
    double factorial = 1;
    for (int i = 1; i <= order; ++i) {
      for (double rk : rks) r_mat[i - 1].push_back(std::pow(rk, i - 1));
      b[i - 1] = h_phi_k * factorial / b_h;
      factorial *= i + 1;
      h_phi_k = h_phi_k / hh - 1 / factorial;
    }

    std::vector<double> rhos_p;
    if (!d1s.empty()) {
      if (order == 2) {
        rhos_p = {0.5};
      } else {
        std::vector<std::vector<double>> sub(static_cast<size_t>(order - 1));
        for (int r = 0; r < order - 1; ++r) sub[r].assign(r_mat[r].begin(), r_mat[r].end() - 1);
        rhos_p = solve(sub, std::vector<double>(b.begin(), b.end() - 1));
      }
    }

    const auto c_x = static_cast<float>(now.std_dev / prev0.std_dev);
    const auto c_m = static_cast<float>(now.alpha * h_phi_1);
    const Tensor x_t_ = lincomb(c_x, x, -c_m, model_prev_0);
    const auto c_b = static_cast<float>(now.alpha * b_h);

    Tensor x_t = d1s.empty() ? x_t_ : add_scaled(x_t_, -c_b, weighted_sum(d1s, rhos_p, d1s.size()));
    Tensor model_t;
    if (use_corrector) {
      const std::vector<double> rhos_c = order == 1 ? std::vector<double>{0.5} : solve(r_mat, b);
      model_t = model_fn(x_t, t);
      const auto rho_last = static_cast<float>(rhos_c.back());
      const Tensor corr = d1s.empty() ? Tensor::zeros(x.shape(), DType::F32)
                                      : weighted_sum(d1s, rhos_c, d1s.size());
      // D1_t = model_t - model_prev_0, combined as in ComfyUI: x_t_ - αB(h)·(corr + ρ_c·D1_t).
      const Tensor d1_t = map2(model_t, model_prev_0, [](float a, float b) { return a - b; });
      x_t = map3(x_t_, corr, d1_t, [c_b, rho_last](float base, float cr, float d) {
        return base - c_b * (cr + rho_last * d);
      });
    }
    return {x_t, model_t};
  }

 private:
  const Denoiser& denoise_;
  Variant variant_;
};

Tensor sample_unipc_impl(const Denoiser& denoise, const Tensor& x_in, std::span<const float> sigmas,
                         const SamplerOptions& options, Variant variant, const char* name) {
  const int steps = detail::check_args(x_in, sigmas, name);
  if (steps == 0) return clone(x_in);
  std::vector<double> ts(sigmas.begin(), sigmas.end());
  if (sigmas.back() == 0) ts.back() = static_cast<double>(0.001f);
  const int order = std::min(3, static_cast<int>(ts.size()) - 2);
  const UniPc unipc(denoise, variant);

  Tensor x = map1(
      x_in, [s = static_cast<float>(std::sqrt(1.0 + ts[0] * ts[0]))](float v) { return v / s; });
  std::vector<Tensor> model_prev;
  std::vector<double> t_prev;
  for (int step_index = 0; step_index < steps; ++step_index) {
    if (step_index == 0) {
      model_prev = {unipc.model_fn(x, ts[0])};
      t_prev = {ts[0]};
    } else if (step_index < order) {
      const double t = ts[static_cast<size_t>(step_index)];
      auto [x_new, model_x] = unipc.update(x, model_prev, t_prev, t, step_index, true);
      x = x_new;
      if (!model_x.defined()) model_x = unipc.model_fn(x, t);
      model_prev.push_back(model_x);
      t_prev.push_back(t);
    } else {
      const int last = step_index == steps - 1 ? step_index + 1 : step_index;
      for (int step = step_index; step <= last; ++step) {
        const double t = ts[static_cast<size_t>(step)];
        const int step_order = std::min(order, steps + 1 - step);
        auto [x_new, model_x] = unipc.update(x, model_prev, t_prev, t, step_order, step != steps);
        x = x_new;
        for (int i = 0; i + 1 < order; ++i) {
          t_prev[i] = t_prev[i + 1];
          model_prev[i] = model_prev[i + 1];
        }
        t_prev.back() = t;
        if (step < steps) {
          if (!model_x.defined()) model_x = unipc.model_fn(x, t);
          model_prev.back() = model_x;
        }
      }
    }
    detail::report(options, step_index, x, model_prev.back());
  }
  const auto alpha_end = static_cast<float>(vp(ts.back()).alpha);
  return map1(x, [alpha_end](float v) { return v / alpha_end; });
}

}  // namespace

Tensor sample_uni_pc(const Denoiser& denoise, const Tensor& x, std::span<const float> sigmas,
                     const SamplerOptions& options) {
  return sample_unipc_impl(denoise, x, sigmas, options, Variant::Bh1, "uni_pc");
}

Tensor sample_uni_pc_bh2(const Denoiser& denoise, const Tensor& x, std::span<const float> sigmas,
                         const SamplerOptions& options) {
  return sample_unipc_impl(denoise, x, sigmas, options, Variant::Bh2, "uni_pc_bh2");
}

}  // namespace darkroom::sampling
