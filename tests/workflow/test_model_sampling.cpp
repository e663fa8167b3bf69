// ModelSamplingDiscrete's modes (suite ModelSampling): for eps, v_prediction, x0,
// img_to_img and lcm, the node's MODEL is checked on
//  - the sigmas KSampler gets from it (normal and karras schedulers), and
//  - the denoised value D(x, σ) the sampler gets for a network output, through
//    make_denoiser (c_in·x or x into the network, its timestep, calculate_denoised),
// against ComfyUI's formulas written out here in double precision:
// comfy/model_sampling.py (ModelSamplingDiscrete, EPS, V_PREDICTION, X0, IMG_TO_IMG) and
// comfy_extras/nodes_model_advanced.py (ModelSamplingDiscreteDistilled, LCM).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/error.h"
#include "pipeline/checkpoint_loader.h"
#include "pipeline/model_cache.h"
#include "sampling/prediction.h"
#include "sampling/registry.h"
#include "workflow/node.h"

namespace darkroom::workflow {
namespace {

// ---- ComfyUI's discrete model sampling, in double -------------------------------------

// The sigma table as ComfyUI stores it (float32) with its float32 logs, and the
// distilled skip (1 for the plain table).
struct RefTable {
  std::vector<double> sigmas, log_sigmas;
  int skip = 1;

  void set(const std::vector<double>& s) {
    sigmas.clear();
    log_sigmas.clear();
    for (double v : s) {
      sigmas.push_back(static_cast<float>(v));
      log_sigmas.push_back(static_cast<float>(std::log(static_cast<float>(v))));
    }
  }
  double sigma_min() const { return sigmas.front(); }
  double sigma_max() const { return sigmas.back(); }
  // argmin |log σ - log σ_i|, then ·skip + skip - 1.
  double timestep(double sigma) const {
    const double ls = std::log(sigma);
    size_t best = 0;
    for (size_t i = 1; i < log_sigmas.size(); ++i)
      if (std::fabs(ls - log_sigmas[i]) < std::fabs(ls - log_sigmas[best])) best = i;
    return static_cast<double>(best) * skip + (skip - 1);
  }
  double sigma(double t) const {
    t = std::clamp((t - (skip - 1)) / skip, 0.0, static_cast<double>(sigmas.size() - 1));
    const double lo = std::floor(t), hi = std::ceil(t), w = t - lo;
    return std::exp((1 - w) * log_sigmas[static_cast<size_t>(lo)] +
                    w * log_sigmas[static_cast<size_t>(hi)]);
  }
};

// make_beta_schedule("linear", 1000, 0.00085, 0.012): betas = linspace(√start, √end)²,
// ᾱ = cumprod(1 - β), σ = sqrt((1 - ᾱ) / ᾱ).
std::vector<double> ref_full_sigmas() {
  const double a = std::sqrt(0.00085), b = std::sqrt(0.012);
  std::vector<double> s;
  double cumprod = 1.0;
  for (int i = 0; i < 1000; ++i) {
    const double root = a + (b - a) * i / 999.0;
    cumprod *= 1.0 - root * root;
    s.push_back(std::sqrt((1.0 - cumprod) / cumprod));
  }
  return s;
}

RefTable ref_table(bool lcm) {
  RefTable t;
  std::vector<double> full;
  for (double v : ref_full_sigmas()) full.push_back(static_cast<float>(v));
  if (!lcm) {
    t.set(full);
    return t;
  }
  // ModelSamplingDiscreteDistilled: original_timesteps 50, skip 20,
  // sigmas_valid[49 - x] = sigmas[999 - 20x].
  t.skip = 1000 / 50;
  std::vector<double> valid(50);
  for (int x = 0; x < 50; ++x) valid[static_cast<size_t>(49 - x)] = full[999 - 20 * x];
  t.set(valid);
  return t;
}

// normal_scheduler: timesteps linspace(t(σ_max), t(σ_min), steps), their sigmas, then 0.
std::vector<double> ref_normal(const RefTable& t, int steps) {
  const double start = t.timestep(t.sigma_max()), end = t.timestep(t.sigma_min());
  std::vector<double> out;
  for (int i = 0; i < steps; ++i) out.push_back(t.sigma(start + (end - start) * i / (steps - 1)));
  out.push_back(0.0);
  return out;
}

// get_sigmas_karras(n, σ_min, σ_max, ρ = 7), then 0.
std::vector<double> ref_karras(const RefTable& t, int n) {
  const double lo = std::pow(t.sigma_min(), 1 / 7.0), hi = std::pow(t.sigma_max(), 1 / 7.0);
  std::vector<double> out;
  for (int i = 0; i < n; ++i) {
    const double ramp = n == 1 ? 0.0 : i / double(n - 1);  // linspace(0, 1, n)
    out.push_back(std::pow(hi + ramp * (lo - hi), 7.0));
  }
  out.push_back(0.0);
  return out;
}

// The stand-in network: a smooth function of what it is fed and of the timestep, so a
// wrong input scaling or timestep shows in D.
double network_ref(double scaled_x, double t, size_t i) {
  return 0.5 * scaled_x + 0.001 * t + 0.1 * static_cast<double>(i % 3) - 0.1;
}

// D(x, σ) of each mode from the network output on its input.
double ref_denoised(const std::string& mode, double sigma, double t, double x, size_t i) {
  const double in = mode == "img_to_img" ? x : x / std::sqrt(sigma * sigma + 1.0);
  const double o = network_ref(in, t, i);
  if (mode == "eps") return x - o * sigma;
  if (mode == "v_prediction")
    return x / (sigma * sigma + 1.0) - o * sigma / std::sqrt(sigma * sigma + 1.0);
  if (mode == "x0" || mode == "img_to_img") return o;
  // LCM: σ_data 0.5, timestep_scaling 10.
  const double s = 10.0 * t;
  const double c_skip = 0.25 / (s * s + 0.25), c_out = s / std::sqrt(s * s + 0.25);
  return c_out * (x - o * sigma) + c_skip * x;
}

// ---- the node -------------------------------------------------------------------------

pipeline::ModelHandle patched(const std::string& sampling, bool zsnr = false) {
  const NodeDecl* decl = NodeRegistry::instance().find("ModelSamplingDiscrete");
  EXPECT_NE(decl, nullptr);
  pipeline::ModelHandle base;
  base.sampling.schedule = pipeline::discrete_schedule(false);
  NodeInputs in;
  in.set("model", Value::of("MODEL", base));
  in.set("sampling", Value::literal("COMBO", sampling));
  in.set("zsnr", Value::literal("BOOLEAN", zsnr));
  FolderPaths paths;
  pipeline::ModelCache models{0};
  json prompt = nullptr, extra = nullptr;
  NodeContext ctx{.paths = paths, .models = models, .prompt = prompt, .extra_pnginfo = extra};
  return decl->run(in, ctx).outputs[0].as<pipeline::ModelHandle>();
}

void expect_rel(const std::vector<float>& got, const std::vector<double>& want, double tol,
                const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i)
    EXPECT_LE(std::fabs(got[i] - want[i]), tol * (1.0 + std::fabs(want[i])))
        << what << " [" << i << "]: got " << got[i] << ", want " << want[i];
}

const char* const kModes[] = {"eps", "v_prediction", "x0", "img_to_img", "lcm"};

TEST(ModelSampling, SigmasTheSamplerGets) {
  for (const std::string mode : kModes) {
    SCOPED_TRACE(mode);
    const pipeline::ModelHandle m = patched(mode);
    const sampling::DiscreteSchedule& s = *m.sampling.schedule;
    const RefTable ref = ref_table(mode == "lcm");
    ASSERT_EQ(s.num_timesteps(), static_cast<int>(ref.sigmas.size()));
    expect_rel({s.sigma_min(), s.sigma_max()}, {ref.sigma_min(), ref.sigma_max()}, 1e-6,
               "sigma range");
    for (int steps : {1, 4, 7}) {
      if (steps > 1)  // normal's linspace needs two ends
        expect_rel(sampling::ksampler_sigmas(s, "normal", "euler", steps), ref_normal(ref, steps),
                   2e-5, "normal " + std::to_string(steps));
      expect_rel(sampling::ksampler_sigmas(s, "karras", "euler", steps), ref_karras(ref, steps),
                 2e-5, "karras " + std::to_string(steps));
    }
  }
  // LCM's table: σ at t = 19, 39, …, 999 of the full one, and t(σ) back on that grid.
  const pipeline::ModelHandle lcm = patched("lcm");
  const sampling::DiscreteSchedule& s = *lcm.sampling.schedule;
  const std::vector<double> full = ref_full_sigmas();
  EXPECT_NEAR(s.sigma_min(), full[19], 1e-6 * full[19]);
  EXPECT_EQ(s.timestep(static_cast<float>(full[999])), 999.0f);
  EXPECT_EQ(s.timestep(static_cast<float>(full[500])), 499.0f);  // nearest is t = 499
  EXPECT_EQ(s.timestep(1e-4f), 19.0f);
}

TEST(ModelSampling, ZsnrRescalesBeforeTheLcmSubset) {
  // rescale_zero_terminal_snr_sigmas sets ᾱ at the last timestep to 4.8973451890853435e-08;
  // the distilled table keeps that timestep as its maximum.
  const double a = 4.8973451890853435e-08;
  const double want = std::sqrt((1.0 - a) / a);
  for (const std::string mode : {"eps", "lcm"}) {
    SCOPED_TRACE(mode);
    const pipeline::ModelHandle m = patched(mode, true);
    EXPECT_NEAR(m.sampling.schedule->sigma_max(), want, 1e-5 * want);
    EXPECT_EQ(m.sampling.schedule->num_timesteps(), mode == "lcm" ? 50 : 1000);
  }
}

TEST(ModelSampling, DenoisedMatchesComfyUIFormulas) {
  // x: a spread of latent values; σ: the table's top, the middle and near its bottom.
  std::vector<float> x;
  for (int i = 0; i < 24; ++i) x.push_back(static_cast<float>(std::sin(0.7 * i) * 3.0));
  const Tensor xt = Tensor::from_floats(x, {1, 2, 3, 4});
  for (const std::string mode : kModes) {
    SCOPED_TRACE(mode);
    const pipeline::ModelHandle m = patched(mode);
    const RefTable ref = ref_table(mode == "lcm");
    const sampling::NetworkFn network = [](const Tensor& scaled, float t) {
      std::vector<float> v = scaled.to_floats();
      for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(network_ref(v[i], t, i));
      return Tensor::from_floats(v, scaled.shape());
    };
    const sampling::Denoiser denoise =
        sampling::make_denoiser(m.sampling.prediction, network, *m.sampling.schedule);
    for (double sigma : {ref.sigma_max(), 1.0, 0.05}) {
      const std::vector<float> got = denoise(xt, static_cast<float>(sigma)).to_floats();
      const double t = ref.timestep(static_cast<float>(sigma));
      std::vector<double> want;
      for (size_t i = 0; i < x.size(); ++i) want.push_back(ref_denoised(mode, sigma, t, x[i], i));
      expect_rel(got, want, 2e-5, mode + " at sigma " + std::to_string(sigma));
    }
  }
}

TEST(ModelSampling, LcmBoundaryScalingsByHand) {
  // At the smallest LCM timestep (19, scaled 190) c_skip ≈ 6.9e-6 and c_out ≈ 1: D is
  // almost exactly the eps estimate x - σ·out. A direct calculate_denoised call.
  const float sigma = 0.5f, x = 2.0f, out = 0.25f;
  const Tensor d = sampling::calculate_denoised(
      sampling::Prediction::Lcm, sigma, Tensor::from_floats(std::vector<float>{out}, {1}),
      Tensor::from_floats(std::vector<float>{x}, {1}), 19.0f);
  const double s = 190.0, c_skip = 0.25 / (s * s + 0.25), c_out = s / std::sqrt(s * s + 0.25);
  EXPECT_NEAR(d.to_floats()[0], c_out * (x - sigma * out) + c_skip * x, 1e-6);
  EXPECT_THROW(sampling::calculate_denoised(sampling::Prediction::Lcm, sigma,
                                            Tensor::from_floats(std::vector<float>{out}, {1}),
                                            Tensor::from_floats(std::vector<float>{x}, {1})),
               Error);
}

}  // namespace
}  // namespace darkroom::workflow
