// The sigma table, sigma <-> timestep and every scheduler against ComfyUI's code run in
// Python (tests/data/sampling/schedule.safetensors from tools/make_sampling_fixtures.py;
// karras and exponential from k-diffusion, the rest transcribed from comfy/samplers.py).
#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "sampling/registry.h"
#include "sampling/schedule.h"
#include "sampling_fixtures.h"

namespace darkroom {
namespace {

using sampling::DiscreteSchedule;

constexpr double kRel = 1e-6;

SafetensorsFile schedule_file() {
  return SafetensorsFile::open(test::sampling_fixture("schedule.safetensors"));
}

TEST(Schedule, SigmaTableMatchesComfyUI) {
  const auto f = schedule_file();
  const DiscreteSchedule s = DiscreteSchedule::scaled_linear();
  const auto sigmas = s.sigmas();
  const auto log_sigmas = s.log_sigmas();
  test::expect_near_all({sigmas.begin(), sigmas.end()}, test::fixture_floats(f, "sigmas"), kRel, 0,
                        "sigmas");
  test::expect_near_all({log_sigmas.begin(), log_sigmas.end()},
                        test::fixture_floats(f, "log_sigmas"), kRel, 1e-7, "log_sigmas");
  EXPECT_NEAR(s.sigma_min(), 0.0291675, 1e-6);  // SD1.5's well-known range
  EXPECT_NEAR(s.sigma_max(), 14.614642, 1e-5);
}

TEST(Schedule, SigmaOfTimestepInterpolatesLogSigma) {
  const auto f = schedule_file();
  const DiscreteSchedule s = DiscreteSchedule::scaled_linear();
  const auto ts = test::fixture_floats(f, "sigma_at.t");
  std::vector<float> got;
  for (float t : ts) got.push_back(s.sigma(t));
  test::expect_near_all(got, test::fixture_floats(f, "sigma_at.sigma"), kRel, 0, "sigma(t)");
}

TEST(Schedule, TimestepOfSigmaIsTheNearestIndex) {
  const auto f = schedule_file();
  const DiscreteSchedule s = DiscreteSchedule::scaled_linear();
  const auto sigmas = test::fixture_floats(f, "timestep_of.sigma");
  const auto ref = test::fixture_floats(f, "timestep_of.t");
  for (size_t i = 0; i < sigmas.size(); ++i)
    EXPECT_EQ(s.timestep(sigmas[i]), ref[i]) << "sigma " << sigmas[i];
}

TEST(Schedule, EverySchedulerMatchesComfyUI) {
  const auto f = schedule_file();
  const DiscreteSchedule s = DiscreteSchedule::scaled_linear();
  int checked = 0;
  for (const auto& info : sampling::schedulers()) {
    for (int steps : {20, 7, 3}) {
      const std::string name = "sched." + std::string(info.name) + "." + std::to_string(steps);
      ASSERT_NE(f.find(name), nullptr) << "no fixture for " << name;
      const std::vector<float> got = sampling::calculate_sigmas(s, info.name, steps);
      test::expect_near_all(got, test::fixture_floats(f, name), kRel, 1e-7, name);
      ++checked;
    }
  }
  EXPECT_EQ(checked, 27);
}

TEST(Schedule, SchedulerNamesAreComfyUIs) {
  // comfy/samplers.py SCHEDULER_NAMES.
  const std::vector<std::string> expected{"simple",      "sgm_uniform",      "karras",
                                          "exponential", "ddim_uniform",     "beta",
                                          "normal",      "linear_quadratic", "kl_optimal"};
  std::vector<std::string> got;
  for (const auto& info : sampling::schedulers()) got.emplace_back(info.name);
  EXPECT_EQ(got, expected);
  EXPECT_EQ(sampling::find_scheduler("nope"), nullptr);
  EXPECT_THROW(sampling::calculate_sigmas(DiscreteSchedule::scaled_linear(), "nope", 20), Error);
  EXPECT_THROW(sampling::calculate_sigmas(DiscreteSchedule::scaled_linear(), "normal", 0), Error);
}

TEST(Schedule, KSamplerSigmasFollowSamplerAndDenoise) {
  const auto f = schedule_file();
  const DiscreteSchedule s = DiscreteSchedule::scaled_linear();
  struct Case {
    const char* scheduler;
    const char* sampler;
    int steps;
    double denoise;
    const char* key;
  };
  const Case cases[] = {{"normal", "dpm_2", 20, 1.0, "ksampler.normal.dpm_2.20.1.0"},
                        {"karras", "euler", 20, 0.6, "ksampler.karras.euler.20.0.6"},
                        {"simple", "uni_pc", 10, 0.5, "ksampler.simple.uni_pc.10.0.5"},
                        {"exponential", "lms", 5, 0.0, "ksampler.exponential.lms.5.0.0"}};
  for (const Case& c : cases) {
    const auto got = sampling::ksampler_sigmas(s, c.scheduler, c.sampler, c.steps, c.denoise);
    test::expect_near_all(got, test::fixture_floats(f, c.key), kRel, 1e-7, c.key);
  }
}

TEST(Schedule, LinspaceIsSymmetric) {
  // torch.linspace's two-sided formula hits both ends exactly.
  const auto v = sampling::linspace_f32(999.0f, 0.0f, 7);
  ASSERT_EQ(v.size(), 7u);
  EXPECT_EQ(v.front(), 999.0f);
  EXPECT_EQ(v.back(), 0.0f);
  for (size_t i = 0; i < v.size(); ++i) EXPECT_NEAR(v[i], 999.0 - 999.0 * i / 6, 1e-4);
}

}  // namespace
}  // namespace darkroom
