// Vae against diffusers' AutoencoderKL (tiny random-weight fixture of
// tools/fixtures/clip_vae.py): decode and encode, loaded from the single-file (ldm) layout
// and from a diffusers folder through vae_weights_from_diffusers; plus the renaming and
// the encoder's asymmetric padding on their own.
#include <gtest/gtest.h>

#include "backend/ops.h"
#include "clip_vae_fixtures.h"
#include "models/vae.h"
#include "models/vae_diffusers_names.h"
#include "test_util.h"

namespace darkroom::test {
namespace {

// f32 against diffusers' f32: differences are accumulation-order noise (~1e-6 on values of
// order 1); 1e-4 is the suite-wide f32 bound.
constexpr double kF32Tol = 1e-4;
constexpr int kGroups = 8;  // the tiny VAE's GroupNorm groups (SD's has 32)

Vae load_ldm(DType dtype) {
  const Weights w =
      Weights::from_file(open_sd15_tiny("clip_vae.safetensors"), "first_stage_model.", kCpu, dtype);
  return Vae::load(w, VaeConfig::detect(w, kGroups));
}

TEST(Vae, DetectsTheConfigFromShapes) {
  const Weights w = Weights::from_file(open_sd15_tiny("clip_vae.safetensors"), "first_stage_model.",
                                       kCpu, DType::F32);
  const VaeConfig c = VaeConfig::detect(w, kGroups);
  EXPECT_EQ(c.ch, 16);
  EXPECT_EQ(c.ch_mult, (std::vector<int>{1, 2}));
  EXPECT_EQ(c.num_res_blocks, 1);
  EXPECT_EQ(c.z_channels, 4);
  EXPECT_EQ(c.out_channels, 3);
  EXPECT_TRUE(c.has_encoder && c.has_quant_conv && c.has_post_quant_conv);
  EXPECT_EQ(Vae::load(w, c).config().in_channels, 3);
  EXPECT_FLOAT_EQ(c.latent_scale, 0.18215f);
}

TEST(Vae, DecodeMatchesDiffusers) {
  const Tensor image = load_ldm(DType::F32).decode(clip_vae_ref("vae.z"));
  EXPECT_EQ(image.dtype(), DType::F32);
  expect_matches_ref(image, "vae.decoded", kF32Tol);
}

TEST(Vae, EncodeMatchesDiffusers) {
  const VaePosterior p = load_ldm(DType::F32).encode(clip_vae_ref("vae.image"));
  expect_matches_ref(p.mean, "vae.mean", kF32Tol);
  expect_matches_ref(p.logvar, "vae.logvar", kF32Tol);
}

TEST(Vae, DecoderOnlyLoadSkipsTheEncoder) {
  const Weights w = Weights::from_file(open_sd15_tiny("clip_vae.safetensors"), "first_stage_model.",
                                       kCpu, DType::F32);
  const Vae vae = Vae::load(w, VaeConfig::detect(w, kGroups), /*with_encoder=*/false);
  for (const std::string& name : w.used())
    EXPECT_EQ(name.find("first_stage_model.encoder."), std::string::npos) << name;
  expect_matches_ref(vae.decode(clip_vae_ref("vae.z")), "vae.decoded", kF32Tol);
  expect_error([&] { vae.encode(clip_vae_ref("vae.image")); }, "[vae]");
}

TEST(Vae, LoadsTheDiffusersVaeFolder) {
  const Weights w = vae_weights_from_diffusers(
      open_sd15_tiny("diffusers/vae/diffusion_pytorch_model.safetensors"), kCpu, DType::F32);
  const Vae vae = Vae::load(w, VaeConfig::detect(w, kGroups));
  expect_matches_ref(vae.decode(clip_vae_ref("vae.z")), "vae.decoded", kF32Tol);
  const VaePosterior p = vae.encode(clip_vae_ref("vae.image"));
  expect_matches_ref(p.mean, "vae.mean", kF32Tol);
  expect_matches_ref(p.logvar, "vae.logvar", kF32Tol);
  // Every tensor of the folder was used.
  EXPECT_EQ(w.used().size(), w.available().size());
}

TEST(Vae, DiffusersNamesMapToLdmNames) {
  // Names of a 4-level diffusers VAE (SD's), old and new attention spellings.
  const std::map<std::string, std::string> expected = {
      {"encoder.conv_in.weight", "encoder.conv_in.weight"},
      {"encoder.down_blocks.1.resnets.0.conv_shortcut.bias",
       "encoder.down.1.block.0.nin_shortcut.bias"},
      {"encoder.down_blocks.2.downsamplers.0.conv.weight", "encoder.down.2.downsample.conv.weight"},
      {"encoder.mid_block.resnets.1.norm2.weight", "encoder.mid.block_2.norm2.weight"},
      {"encoder.mid_block.attentions.0.group_norm.bias", "encoder.mid.attn_1.norm.bias"},
      {"encoder.mid_block.attentions.0.to_q.weight", "encoder.mid.attn_1.q.weight"},
      {"encoder.mid_block.attentions.0.key.bias", "encoder.mid.attn_1.k.bias"},
      {"encoder.conv_norm_out.weight", "encoder.norm_out.weight"},
      {"decoder.mid_block.attentions.0.to_out.0.weight", "decoder.mid.attn_1.proj_out.weight"},
      {"decoder.mid_block.attentions.0.proj_attn.bias", "decoder.mid.attn_1.proj_out.bias"},
      {"decoder.up_blocks.0.resnets.2.conv1.weight", "decoder.up.3.block.2.conv1.weight"},
      {"decoder.up_blocks.0.upsamplers.0.conv.bias", "decoder.up.3.upsample.conv.bias"},
      {"decoder.up_blocks.2.upsamplers.0.conv.weight", "decoder.up.1.upsample.conv.weight"},
      {"decoder.up_blocks.3.resnets.0.conv_shortcut.weight",
       "decoder.up.0.block.0.nin_shortcut.weight"},
      {"quant_conv.weight", "quant_conv.weight"},
      {"post_quant_conv.bias", "post_quant_conv.bias"},
  };
  std::vector<std::string> names;
  for (const auto& [from, to] : expected) names.push_back(from);
  EXPECT_EQ(vae_ldm_names_from_diffusers(names), expected);
  for (const char* bad : {"decoder.up_blocks.x.resnets.0.conv1.weight",
                          "encoder.mid_block.attentions.0.to_out.1.weight", "model.conv.weight",
                          "decoder.up_blocks.0.resnets.0.time_emb_proj.weight"})
    expect_error([&] { vae_ldm_names_from_diffusers({bad}); }, "[vae]");
}

TEST(Vae, DownsamplePadsOnlyTheBottomAndRight) {
  // [1, 2, 3, 2] → [1, 3, 4, 2]: the input at the top left, zeros in the new row/column.
  std::vector<float> v(12);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i + 1);
  const Tensor padded = vae::pad_bottom_right(Tensor::from_floats(v, {1, 2, 3, 2}));
  ASSERT_EQ(padded.shape(), (Shape{1, 3, 4, 2}));
  const std::vector<float> got = padded.to_floats();
  for (int y = 0; y < 3; ++y)
    for (int x = 0; x < 4; ++x)
      for (int c = 0; c < 2; ++c) {
        const float want = y < 2 && x < 3 ? v[static_cast<size_t>((y * 3 + x) * 2 + c)] : 0.0f;
        EXPECT_EQ(got[static_cast<size_t>((y * 4 + x) * 2 + c)], want) << y << "," << x;
      }
}

// bf16 weights and activations (f32 statistics in the kernels): each rounding is up to
// 2^-9 ≈ 0.2% relative and a value passes through ~40 rounded steps in the tiny VAE (convs,
// norms, residual adds, attention); as a random walk that is ≈ 1.3% of the activations'
// scale. Measured: worst element 1.1% of the largest |ref| (0.032 of 2.8). The bound, 5%
// of the largest |ref|, is far above f32 noise and far below what a wrong weight or layout
// does (O(100%)).
constexpr double kBf16RelTol = 5e-2;

TEST(Vae, Bf16StaysWithinItsRoundingBound) {
  const Vae vae = load_ldm(DType::BF16);
  const Tensor z = ops::cast(clip_vae_ref("vae.z"), DType::BF16);
  const Tensor image = vae.decode(z);
  EXPECT_EQ(image.dtype(), DType::BF16);
  expect_matches_ref(image, "vae.decoded", 0, kBf16RelTol);
  const VaePosterior p = vae.encode(clip_vae_ref("vae.image"));  // f32 in, f32 out
  EXPECT_EQ(p.mean.dtype(), DType::F32);
  expect_matches_ref(p.mean, "vae.mean", 0, kBf16RelTol);
}

TEST(Vae, RejectsBadInput) {
  const Vae vae = load_ldm(DType::F32);
  expect_error([&] { vae.decode(Tensor::zeros({1, 4, 4, 3}, DType::F32)); }, "[vae]");
  expect_error([&] { vae.encode(Tensor::zeros({1, 8, 8, 4}, DType::F32)); }, "[vae]");
  const Weights empty = Weights::from_tensors({}, "", kCpu, DType::F32);
  expect_error([&] { VaeConfig::detect(empty); }, "[vae]");
}

}  // namespace
}  // namespace darkroom::test
