// load_vae_file (what VAELoader loads, suite VaeFile) on the tiny SD 1.5 VAE of
// tools/fixtures/clip_vae.py in its three spellings: diffusers' AutoencoderKL names (the
// diffusers folder's vae/diffusion_pytorch_model.safetensors), ldm's names under
// "first_stage_model." and bare ldm names. All decode and encode as diffusers' AutoencoderKL
// did on the same weights (clip_vae_ref.safetensors).
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "io/safetensors.h"
#include "io/safetensors_writer.h"
#include "models/clip_vae_fixtures.h"
#include "pipeline/checkpoint_loader.h"
#include "test_util.h"

namespace darkroom::pipeline {
namespace {

namespace fs = std::filesystem;
using darkroom::test::clip_vae_ref;
using darkroom::test::expect_matches_ref;
using darkroom::test::sd15_tiny_path;

// f32 against diffusers' f32 (as tests/models/test_vae.cpp).
constexpr double kF32Tol = 1e-4;

class VaeFile : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "darkroom-vae-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // The tensors of fixture `file` whose names start with `from`, renamed to start with `to`,
  // written to `name` in the temporary directory with the tiny VAE's GroupNorm groups (8;
  // a released VAE has ComfyUI's 32) in the metadata.
  std::string copy(const std::string& file, const std::string& from, const std::string& to,
                   const std::string& name) {
    const SafetensorsFile f = SafetensorsFile::open(sd15_tiny_path(file));
    std::vector<std::pair<std::string, Tensor>> tensors;
    for (const TensorInfo& t : f.tensors())
      if (t.name.starts_with(from))
        tensors.emplace_back(to + t.name.substr(from.size()), f.tensor(t.name));
    EXPECT_FALSE(tensors.empty());
    const std::string path = (dir_ / name).string();
    write_safetensors(path, tensors, {{"darkroom.vae.groups", "8"}});
    return path;
  }

  static void expect_matches_diffusers(const LoadedVae& v) {
    ASSERT_TRUE(v.vae.vae);
    expect_matches_ref(v.vae.vae->decode(clip_vae_ref("vae.z")), "vae.decoded", kF32Tol);
    const VaePosterior p = v.vae.vae->encode(clip_vae_ref("vae.image"));
    expect_matches_ref(p.mean, "vae.mean", kF32Tol);
    expect_matches_ref(p.logvar, "vae.logvar", kF32Tol);
  }

  fs::path dir_;
};

TEST_F(VaeFile, DiffusersNamedFileLoadsAsAutoencoderKL) {
  const std::string path = copy("diffusers/vae/diffusion_pytorch_model.safetensors", "", "",
                                "diffusers_vae.safetensors");
  const LoadedVae v = load_vae_file(path, DType::F32);
  expect_matches_diffusers(v);
  // Every tensor of the file counts towards the cache budget, in f32.
  uint64_t bytes = 0;
  const SafetensorsFile f = SafetensorsFile::open(path);
  for (const TensorInfo& t : f.tensors()) bytes += static_cast<uint64_t>(t.shape.numel()) * 4;
  EXPECT_EQ(v.bytes, bytes);
}

TEST_F(VaeFile, LdmNamedFilesLoadTheSameWeights) {
  const std::string prefixed = copy("clip_vae.safetensors", "first_stage_model.",
                                    "first_stage_model.", "prefixed_vae.safetensors");
  const std::string bare =
      copy("clip_vae.safetensors", "first_stage_model.", "", "bare_vae.safetensors");
  expect_matches_diffusers(load_vae_file(prefixed, DType::F32));
  expect_matches_diffusers(load_vae_file(bare, DType::F32));
}

TEST_F(VaeFile, FileWithoutADecoderIsRefused) {
  const std::string path = copy("diffusers/vae/diffusion_pytorch_model.safetensors", "encoder.",
                                "encoder.", "encoder_only.safetensors");
  darkroom::test::expect_error([&] { load_vae_file(path, DType::F32); }, "[vae]");
}

}  // namespace
}  // namespace darkroom::pipeline
