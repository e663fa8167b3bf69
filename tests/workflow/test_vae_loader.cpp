// VAELoader through the real executor (suite WorkflowVaeLoader): a diffusers-format VAE
// file (the tiny SD 1.5 fixture's vae/diffusion_pytorch_model.safetensors, renamed by
// vae_diffusers_names.h) decodes the sampled latent exactly as the checkpoint's own VAE,
// which holds the same weights under ldm names (tests/models/test_vae.cpp checks both
// against diffusers' AutoencoderKL).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>

#include "capture_node.h"
#include "io/safetensors.h"
#include "io/safetensors_writer.h"
#include "pipeline/image.h"
#include "run_prompt.h"
#include "workflow/executor.h"
#include "workflow/node.h"
#include "workflow/workflow_env.h"

namespace darkroom::workflow {
namespace {

using test::link;
namespace fs = std::filesystem;

using test::captured;

TEST(WorkflowVaeLoader, DiffusersVaeFileDecodesAsTheCheckpointVae) {
  test::TempBase env;
  test::write_tiny_checkpoint((env.checkpoints() / "tiny.safetensors").string());
  // The diffusers file as it is, plus the tiny VAE's GroupNorm groups in the metadata.
  const fs::path vae_dir = env.paths().model_folders.at("vae").front();
  fs::create_directories(vae_dir);
  const SafetensorsFile f = SafetensorsFile::open(
      test::tiny_fixture("diffusers/vae/diffusion_pytorch_model.safetensors"));
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const TensorInfo& t : f.tensors()) tensors.emplace_back(t.name, f.tensor(t.name));
  write_safetensors((vae_dir / "tiny_diffusers_vae.safetensors").string(), tensors,
                    {{"darkroom.vae.groups", "8"}});

  // The default workflow; node 8 decodes with the checkpoint's VAE, node 13 with VAELoader's.
  json prompt = test::default_prompt();
  prompt["12"] = {{"class_type", "VAELoader"},
                  {"inputs", {{"vae_name", "tiny_diffusers_vae.safetensors"}}}};
  prompt["13"] = {{"class_type", "VAEDecode"},
                  {"inputs", {{"samples", link("3", 0)}, {"vae", link("12", 0)}}}};
  prompt["98"] = {{"class_type", "DarkroomTestCapture"}, {"inputs", {{"image", link("8", 0)}}}};
  prompt["99"] = {{"class_type", "DarkroomTestCapture"}, {"inputs", {{"image", link("13", 0)}}}};
  captured().clear();
  Executor executor(env.paths(), -1, uint64_t{1} << 32);
  const ExecutionResult r = test::run_prompt(executor, env.paths(), prompt);
  ASSERT_EQ(r.status, ExecutionResult::Status::Success) << r.error.dump(1);

  const Tensor& want = captured().at("98.image").as<pipeline::Image>();
  const Tensor& got = captured().at("99.image").as<pipeline::Image>();
  ASSERT_EQ(got.shape(), want.shape());
  const std::vector<float> x = got.to_floats(), y = want.to_floats();
  double worst = 0, spread = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    worst = std::max(worst, std::fabs(static_cast<double>(x[i]) - y[i]));
    spread = std::max(spread, std::fabs(static_cast<double>(y[i]) - y[0]));
  }
  EXPECT_LE(worst, 1e-6);
  EXPECT_GT(spread, 1e-3);  // a real image, not a constant one
}

}  // namespace
}  // namespace darkroom::workflow
