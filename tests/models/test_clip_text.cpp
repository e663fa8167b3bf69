// ClipTextEncoder against transformers' CLIPTextModel (tiny random-weight fixture of
// tools/fixtures/clip_vae.py): every hidden state, ComfyUI's clip-skip outputs and the
// pooled output, loaded from the single-file (ldm) layout and from a diffusers folder.
#include <gtest/gtest.h>

#include <cstdio>

#include "clip_vae_fixtures.h"
#include "io/safetensors_writer.h"
#include "models/clip_text.h"
#include "test_util.h"

namespace darkroom::test {
namespace {

// f32 against transformers' f32: both accumulate in f32 over widths of at most 128, so
// differences are rounding noise of ~1e-6; 1e-4 is the suite-wide f32 bound.
constexpr double kF32Tol = 1e-4;

const char* kLdmPrefix = "cond_stage_model.transformer.text_model.";
constexpr int kHeads = 2;  // the tiny model's head count (width 64 would imply 1)

ClipTextEncoder load_ldm(DType dtype) {
  const Weights w =
      Weights::from_file(open_sd15_tiny("clip_vae.safetensors"), kLdmPrefix, kCpu, dtype);
  return ClipTextEncoder::load(w, ClipTextConfig::detect(w, kHeads));
}

Tensor ids() {
  return clip_vae_ref("clip.ids");
}

TEST(ClipText, DetectsTheConfigFromShapes) {
  const Weights w =
      Weights::from_file(open_sd15_tiny("clip_vae.safetensors"), kLdmPrefix, kCpu, DType::F32);
  const ClipTextConfig c = ClipTextConfig::detect(w, kHeads);
  EXPECT_EQ(c.width, 64);
  EXPECT_EQ(c.layers, 3);
  EXPECT_EQ(c.heads, 2);
  EXPECT_EQ(c.mlp_width, 128);
  EXPECT_EQ(c.positions, 77);
  EXPECT_EQ(ClipTextConfig::detect(w).heads, 1);  // width / 64 when not told
  EXPECT_EQ(ClipTextEncoder::load(w, c).vocab_size(), 256);
}

TEST(ClipText, HiddenStatesMatchTransformers) {
  const std::vector<Tensor> hs = load_ldm(DType::F32).hidden_states(ids());
  ASSERT_EQ(hs.size(), 4u);
  for (size_t i = 0; i < hs.size(); ++i)
    expect_matches_ref(hs[i], "clip.hidden_states." + std::to_string(i), kF32Tol);
}

TEST(ClipText, ClipSkipMatchesComfyUi) {
  const ClipTextEncoder clip = load_ldm(DType::F32);
  for (int k = 1; k <= 3; ++k) {
    const ClipTextOutput out = clip.encode(ids(), k);
    expect_matches_ref(out.hidden, "clip.skip." + std::to_string(k), kF32Tol);
    // The pooled output always comes from the last layer.
    expect_matches_ref(out.pooled, "clip.pooled", kF32Tol);
  }
  // ComfyUI: a layer beyond the model's means the last one.
  expect_matches_ref(clip.encode(ids(), 7).hidden, "clip.skip.1", kF32Tol);
}

TEST(ClipText, StoppingEarlyWithoutPooledGivesTheSameHiddenState) {
  const ClipTextEncoder clip = load_ldm(DType::F32);
  const ClipTextOutput out = clip.encode(ids(), ClipEncodeOptions{2, true, false});
  EXPECT_FALSE(out.pooled.defined());
  expect_matches_ref(out.hidden, "clip.skip.2", kF32Tol);
  // Without the final norm: the raw output of layer 2 (of 3).
  const ClipTextOutput raw = clip.encode(ids(), ClipEncodeOptions{2, false, false});
  expect_matches_ref(raw.hidden, "clip.hidden_states.2", kF32Tol);
}

TEST(ClipText, AcceptsI64Ids) {
  const Tensor i32 = ids();
  Tensor i64 = Tensor::empty(i32.shape(), DType::I64);
  for (int64_t i = 0; i < i32.numel(); ++i)
    i64.data<int64_t>()[i] = i32.to_floats()[static_cast<size_t>(i)];
  const ClipTextOutput out = load_ldm(DType::F32).encode(i64, 1);
  expect_matches_ref(out.hidden, "clip.skip.1", kF32Tol);
  expect_matches_ref(out.pooled, "clip.pooled", kF32Tol);
}

void expect_hf_file_matches(const std::shared_ptr<const SafetensorsFile>& file) {
  const Weights w = clip_text_weights_from_hf(file, kCpu, DType::F32);
  const ClipTextEncoder clip = ClipTextEncoder::load(w, ClipTextConfig::detect(w, kHeads));
  const ClipTextOutput out = clip.encode(ids(), 2);
  expect_matches_ref(out.hidden, "clip.skip.2", kF32Tol);
  expect_matches_ref(out.pooled, "clip.pooled", kF32Tol);
}

TEST(ClipText, LoadsTheDiffusersTextEncoderFolder) {
  // As transformers' save_pretrained wrote it (5.x: no "text_model." prefix).
  expect_hf_file_matches(open_sd15_tiny("diffusers/text_encoder/model.safetensors"));
}

TEST(ClipText, LoadsBothHuggingFaceNamings) {
  // The ldm file's text model rewritten as transformers 4.x ("text_model.*", as SD 1.5's
  // published folders hold it) and 5.x (no prefix) name it.
  const auto ldm = open_sd15_tiny("clip_vae.safetensors");
  const std::string strip = "cond_stage_model.transformer.";
  for (const std::string& prefix : {std::string("text_model."), std::string()}) {
    std::vector<std::pair<std::string, Tensor>> tensors;
    for (const TensorInfo& t : ldm->tensors())
      if (t.name.rfind(strip + "text_model.", 0) == 0)
        tensors.emplace_back(prefix + t.name.substr(strip.size() + 11), ldm->tensor(t.name));
    const std::string path = ::testing::TempDir() + "clip_text_hf" + prefix + "safetensors";
    write_safetensors(path, tensors);
    expect_hf_file_matches(std::make_shared<const SafetensorsFile>(SafetensorsFile::open(path)));
    std::remove(path.c_str());
  }
}

// bf16 weights and activations (f32 statistics inside the kernels). bf16 keeps 8
// significant bits, so each rounding is up to 2^-9 ≈ 0.2% relative; a value passes through
// ~20 rounded steps per layer (weights, projections, attention, MLP, residual adds), and
// such errors add like a random walk: ≈ sqrt(60) · 0.2% ≈ 1.5% of the activations' scale
// after 3 layers. Measured: worst element 1.0% of the largest |ref| (0.044 of 4.6). The
// bound, 5% of the largest |ref|, leaves room for other CPUs' accumulation orders while a
// wrong weight, head split or mask moves outputs by O(100%).
constexpr double kBf16RelTol = 5e-2;

TEST(ClipText, Bf16StaysWithinItsRoundingBound) {
  const ClipTextEncoder clip = load_ldm(DType::BF16);
  for (int k = 1; k <= 2; ++k) {
    const ClipTextOutput out = clip.encode(ids(), k);
    EXPECT_EQ(out.hidden.dtype(), DType::BF16);
    expect_matches_ref(out.hidden, "clip.skip." + std::to_string(k), 0, kBf16RelTol);
    expect_matches_ref(out.pooled, "clip.pooled", 0, kBf16RelTol);
  }
}

TEST(ClipText, RejectsBadInput) {
  const ClipTextEncoder clip = load_ldm(DType::F32);
  expect_error([&] { clip.encode(ids(), 0); }, "[clip text]");
  const std::vector<float> too_big(77, 256.0f);
  Tensor bad = Tensor::empty({1, 77}, DType::I32);
  for (int i = 0; i < 77; ++i) bad.data<int32_t>()[i] = static_cast<int32_t>(too_big[i]);
  expect_error([&] { clip.encode(bad, 1); }, "[clip text]");
  expect_error([&] { clip.encode(Tensor::zeros({1, 78}, DType::I32), 1); }, "[clip text]");
  expect_error([&] { clip.encode(Tensor::zeros({1, 77}, DType::F32), 1); }, "[clip text]");
  const Weights empty = Weights::from_tensors({}, "", kCpu, DType::F32);
  expect_error([&] { ClipTextConfig::detect(empty); }, "[clip text]");
}

}  // namespace
}  // namespace darkroom::test
