// Every sampler against its reference run (tests/data/sampling/samplers.safetensors from
// tools/make_sampling_fixtures.py: k-diffusion's samplers, or ComfyUI's lcm/uni_pc
// transcribed) on the exact denoiser of Gaussian data, 20 steps from the same initial
// noise: final latents within 1e-4. Ancestral samplers use darkroom's default noise
// (torch CPU generator, seed + 1), so these runs also check the noise stream; the
// Brownian-tree samplers get the recorded torchsde noise injected. Also: the registry,
// CFG and the prediction-type wrappers against double-precision formulas.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <set>

#include "core/error.h"
#include "sampling/cfg.h"
#include "sampling/noise.h"
#include "sampling/prediction.h"
#include "sampling/registry.h"
#include "sampling_fixtures.h"

namespace darkroom {
namespace {

struct Fixture {
  SafetensorsFile file;
  nlohmann::json info;
  int64_t n, c, h, w;
};

Fixture load() {
  auto f = SafetensorsFile::open(test::sampling_fixture("samplers.safetensors"));
  auto info = nlohmann::json::parse(f.metadata().at("info"));
  const auto shape = info.at("shape_nchw").get<std::vector<int64_t>>();
  return {std::move(f), info, shape[0], shape[1], shape[2], shape[3]};
}

Tensor nhwc_tensor(const Fixture& fx, const std::string& name) {
  return Tensor::from_floats(
      test::nchw_values_to_nhwc(test::fixture_floats(fx.file, name), fx.n, fx.c, fx.h, fx.w),
      {fx.n, fx.h, fx.w, fx.c});
}

// D(x, σ) = (x·s² + μ_c·σ²) / (s² + σ²) on an NHWC latent, in f32 like the reference.
sampling::Denoiser gaussian_denoiser(const Fixture& fx, int* calls) {
  const auto s2 = static_cast<float>(fx.info.at("denoiser_s").get<double>() *
                                     fx.info.at("denoiser_s").get<double>());
  const auto mu = fx.info.at("denoiser_mu").get<std::vector<float>>();
  return [s2, mu, calls](const Tensor& x, float sigma) {
    ++*calls;
    Tensor out = Tensor::empty(x.shape(), DType::F32);
    const int64_t channels = x.dim(-1);
    const float sig2 = sigma * sigma;
    for (int64_t i = 0; i < x.numel(); ++i)
      out.data<float>()[i] = (x.data<float>()[i] * s2 + mu[i % channels] * sig2) / (s2 + sig2);
    return out;
  };
}

TEST(Samplers, EverySamplerMatchesItsReference) {
  const Fixture fx = load();
  const auto schedule = sampling::DiscreteSchedule::scaled_linear();
  const auto seed = fx.info.at("seed").get<uint64_t>();
  const auto& runs = fx.info.at("runs");
  std::set<std::string> covered;
  for (const auto& [key, run] : runs.items()) {
    const auto name = run.at("sampler").get<std::string>();
    const auto scheduler = run.at("scheduler").get<std::string>();
    SCOPED_TRACE(key);
    const sampling::SamplerInfo& info = sampling::get_sampler(name);

    // The sigmas darkroom's KSampler logic picks are ComfyUI's.
    const std::vector<float> sigmas = test::fixture_floats(fx.file, key + ".sigmas");
    test::expect_near_all(sampling::ksampler_sigmas(schedule, scheduler, name, 20), sigmas, 1e-6,
                          1e-7, key + " sigmas");

    // The starting latent: prepare_noise, scaled for a full denoise.
    const Tensor x0 = nhwc_tensor(fx, key + ".x0");
    const std::vector<int64_t> dims{fx.n, fx.c, fx.h, fx.w};
    const Tensor noise = sampling::prepare_noise(dims, seed);
    ASSERT_TRUE(sampling::is_max_denoise(schedule, sigmas[0]));
    const Tensor start =
        sampling::noise_scaling(sigmas[0], noise, Tensor::zeros(noise.shape(), DType::F32), true);
    test::expect_near_all(start.to_floats(), x0.to_floats(), 1e-6, 1e-7, key + " start");

    sampling::SamplerOptions options;
    options.seed = seed;
    std::shared_ptr<size_t> next_noise = std::make_shared<size_t>(0);
    if (info.noise == sampling::NoiseSource::BrownianTree) {
      // Inject the recorded torchsde noise and check the sampler asks for the same steps.
      const std::vector<float> all = test::fixture_floats(fx.file, key + ".noise");
      const std::vector<float> at = test::fixture_floats(fx.file, key + ".noise_sigmas");
      const auto per = static_cast<size_t>(fx.n * fx.c * fx.h * fx.w);
      options.noise_sampler = [&fx, all, at, per, next_noise](float sigma, float sigma_next) {
        const size_t k = (*next_noise)++;
        EXPECT_LT(k, at.size() / 2);
        if (k >= at.size() / 2) return Tensor::zeros({fx.n, fx.h, fx.w, fx.c}, DType::F32);
        EXPECT_NEAR(sigma, at[2 * k], 1e-5 * at[2 * k]) << "noise call " << k;
        EXPECT_NEAR(sigma_next, at[2 * k + 1], 1e-5 * at[2 * k + 1]) << "noise call " << k;
        std::vector<float> one(all.begin() + static_cast<std::ptrdiff_t>(k * per),
                               all.begin() + static_cast<std::ptrdiff_t>((k + 1) * per));
        return Tensor::from_floats(test::nchw_values_to_nhwc(one, fx.n, fx.c, fx.h, fx.w),
                                   {fx.n, fx.h, fx.w, fx.c});
      };
    }
    int calls = 0;
    const Tensor out = info.fn(gaussian_denoiser(fx, &calls), x0, sigmas, options);
    EXPECT_GE(calls, 20);
    if (info.noise == sampling::NoiseSource::BrownianTree) {
      EXPECT_EQ(*next_noise, test::fixture_floats(fx.file, key + ".noise_sigmas").size() / 2);
    }
    const Tensor ref = nhwc_tensor(fx, key + ".out");
    EXPECT_EQ(out.shape(), ref.shape());
    test::expect_near_all(out.to_floats(), ref.to_floats(), 0, 1e-4, key + " final latent");
    covered.insert(name + "." + scheduler);
  }
  for (const auto& info : sampling::samplers())
    for (const char* sched : {"normal", "karras"})
      EXPECT_TRUE(covered.count(std::string(info.name) + "." + sched))
          << "no reference run for " << info.name << " with " << sched;
}

TEST(Samplers, RegistryFollowsComfyUI) {
  std::vector<std::string> names;
  for (const auto& info : sampling::samplers()) names.emplace_back(info.name);
  // In the order of comfy/samplers.py SAMPLER_NAMES.
  const std::vector<std::string> expected{"euler",
                                          "euler_ancestral",
                                          "heun",
                                          "dpm_2",
                                          "dpm_2_ancestral",
                                          "lms",
                                          "dpmpp_2s_ancestral",
                                          "dpmpp_sde",
                                          "dpmpp_2m",
                                          "dpmpp_2m_sde",
                                          "dpmpp_2m_sde_heun",
                                          "lcm",
                                          "ddim",
                                          "uni_pc",
                                          "uni_pc_bh2"};
  EXPECT_EQ(names, expected);
  EXPECT_EQ(sampling::get_sampler("ddim").fn, sampling::get_sampler("euler").fn);
  for (const auto& info : sampling::samplers()) {
    const std::string n(info.name);
    EXPECT_EQ(info.discard_penultimate_sigma,
              n == "dpm_2" || n == "dpm_2_ancestral" || n == "uni_pc" || n == "uni_pc_bh2")
        << n;
  }
  EXPECT_EQ(sampling::find_sampler("nope"), nullptr);
  EXPECT_THROW(sampling::get_sampler("nope"), Error);
}

TEST(Samplers, DeterministicSamplersIgnoreTheSeed) {
  const Fixture fx = load();
  int calls = 0;
  const auto denoise = gaussian_denoiser(fx, &calls);
  const Tensor x0 = nhwc_tensor(fx, "dpmpp_2m.karras.x0");
  const std::vector<float> sigmas = test::fixture_floats(fx.file, "dpmpp_2m.karras.sigmas");
  sampling::SamplerOptions a, b;
  a.seed = 1;
  b.seed = 2;
  for (const char* name : {"euler", "heun", "lms", "dpmpp_2m", "uni_pc"}) {
    const auto fn = sampling::get_sampler(name).fn;
    EXPECT_EQ(fn(denoise, x0, sigmas, a).to_floats(), fn(denoise, x0, sigmas, b).to_floats())
        << name;
  }
  // ...and the ancestral ones do not.
  const auto fn = sampling::get_sampler("euler_ancestral").fn;
  EXPECT_NE(fn(denoise, x0, sigmas, a).to_floats(), fn(denoise, x0, sigmas, b).to_floats());
}

TEST(Samplers, CallbackSeesEveryStep) {
  const Fixture fx = load();
  int calls = 0;
  const Tensor x0 = nhwc_tensor(fx, "euler.normal.x0");
  const std::vector<float> sigmas = test::fixture_floats(fx.file, "euler.normal.sigmas");
  sampling::SamplerOptions options;
  std::vector<int> steps;
  options.callback = [&](int step, const Tensor& x, const Tensor& denoised) {
    steps.push_back(step);
    EXPECT_EQ(x.shape(), denoised.shape());
  };
  sampling::get_sampler("euler").fn(gaussian_denoiser(fx, &calls), x0, sigmas, options);
  ASSERT_EQ(steps.size(), sigmas.size() - 1);
  for (size_t i = 0; i < steps.size(); ++i) EXPECT_EQ(steps[i], static_cast<int>(i));
}

TEST(Samplers, CfgCombine) {
  const Tensor uncond = Tensor::from_floats(std::vector<float>{0.5f, -1.0f, 2.0f}, {1, 3});
  const Tensor cond = Tensor::from_floats(std::vector<float>{1.5f, 0.25f, -2.0f}, {1, 3});
  const std::vector<float> got = sampling::cfg_combine(uncond, cond, 7.5f).to_floats();
  const double u[] = {0.5, -1.0, 2.0}, c[] = {1.5, 0.25, -2.0};
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(got[i], u[i] + (c[i] - u[i]) * 7.5, 1e-5);
  const Tensor wrong = Tensor::zeros({1, 4}, DType::F32);
  EXPECT_THROW(sampling::cfg_combine(uncond, wrong, 2.0f), Error);
}

TEST(Samplers, PredictionWrappers) {
  const std::vector<float> xv{0.3f, -1.2f, 2.5f, 0.0f};
  const std::vector<float> ov{-0.7f, 0.4f, 1.1f, -2.0f};
  const Tensor x = Tensor::from_floats(xv, {1, 1, 2, 2});
  const Tensor o = Tensor::from_floats(ov, {1, 1, 2, 2});
  const double sigma = 3.7;
  const auto s = static_cast<float>(sigma);
  const auto eps = sampling::calculate_denoised(sampling::Prediction::Eps, s, o, x).to_floats();
  const auto v = sampling::calculate_denoised(sampling::Prediction::V, s, o, x).to_floats();
  const auto x0 = sampling::calculate_denoised(sampling::Prediction::X0, s, o, x).to_floats();
  const auto in = sampling::calculate_input(s, x).to_floats();
  for (size_t i = 0; i < xv.size(); ++i) {
    EXPECT_NEAR(eps[i], xv[i] - ov[i] * sigma, 1e-5);
    EXPECT_NEAR(v[i], xv[i] / (sigma * sigma + 1) - ov[i] * sigma / std::sqrt(sigma * sigma + 1),
                1e-5);
    EXPECT_EQ(x0[i], ov[i]);
    EXPECT_NEAR(in[i], xv[i] / std::sqrt(sigma * sigma + 1), 1e-6);
  }
  // make_denoiser feeds c_in·x and the nearest timestep to the network.
  const auto schedule = sampling::DiscreteSchedule::scaled_linear();
  float seen_t = -1;
  std::vector<float> seen_x;
  auto denoise = sampling::make_denoiser(
      sampling::Prediction::Eps,
      [&](const Tensor& scaled, float t) {
        seen_t = t;
        seen_x = scaled.to_floats();
        return o;
      },
      schedule);
  const auto d = denoise(x, schedule.sigma_max()).to_floats();
  EXPECT_EQ(seen_t, 999.0f);
  const double smax = schedule.sigma_max();
  for (size_t i = 0; i < xv.size(); ++i) {
    EXPECT_NEAR(seen_x[i], xv[i] / std::sqrt(smax * smax + 1), 1e-6);
    EXPECT_NEAR(d[i], xv[i] - ov[i] * smax, 1e-5);
  }
  // noise_scaling: σ·n + latent, or sqrt(1 + σ²)·n + latent at full denoise.
  const auto plain = sampling::noise_scaling(s, o, x, false).to_floats();
  const auto full = sampling::noise_scaling(s, o, x, true).to_floats();
  for (size_t i = 0; i < xv.size(); ++i) {
    EXPECT_NEAR(plain[i], ov[i] * sigma + xv[i], 1e-5);
    EXPECT_NEAR(full[i], ov[i] * std::sqrt(1 + sigma * sigma) + xv[i], 1e-5);
  }
}

TEST(Samplers, SdeSamplersDefaultToComfyUIsBrownianNoise) {
  // dpmpp_2m_sde asks the tree at the schedule's own sigmas, as k-diffusion's reference
  // run did, so without injected noise darkroom's default must give the same result.
  const Fixture fx = load();
  const auto seed = fx.info.at("seed").get<uint64_t>();
  for (const char* key : {"dpmpp_2m_sde.karras", "dpmpp_2m_sde_heun.normal"}) {
    const std::string k(key);
    const std::string name = fx.info.at("runs").at(k).at("sampler").get<std::string>();
    int calls = 0;
    sampling::SamplerOptions options;
    options.seed = seed;
    const Tensor out =
        sampling::get_sampler(name).fn(gaussian_denoiser(fx, &calls), nhwc_tensor(fx, k + ".x0"),
                                       test::fixture_floats(fx.file, k + ".sigmas"), options);
    test::expect_near_all(out.to_floats(), nhwc_tensor(fx, k + ".out").to_floats(), 0, 1e-4,
                          k + " with the default noise");
  }
}

TEST(Samplers, OneStepRunsEndAtTheDenoisedEstimate) {
  // A single step to σ = 0 returns D(x, σ_0) for every sampler but uni_pc (whose single
  // step only rescales, as in ComfyUI); the SDE samplers build their default Brownian
  // tree over the degenerate range [σ_0, σ_0] without asking it for noise.
  const Fixture fx = load();
  int calls = 0;
  const auto denoise = gaussian_denoiser(fx, &calls);
  const Tensor x0 = nhwc_tensor(fx, "euler.normal.x0");
  const std::vector<float> sigmas{14.614642f, 0.0f};
  const std::vector<float> expected = denoise(x0, sigmas[0]).to_floats();
  for (const auto& info : sampling::samplers()) {
    if (info.name == "uni_pc" || info.name == "uni_pc_bh2") continue;
    const Tensor out = info.fn(denoise, x0, sigmas, sampling::SamplerOptions{});
    test::expect_near_all(out.to_floats(), expected, 1e-5, 1e-5, std::string(info.name));
  }
}

}  // namespace
}  // namespace darkroom
