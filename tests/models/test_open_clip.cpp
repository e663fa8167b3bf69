// ClipTextEncoder on OpenCLIP's text tower (SDXL's CLIP-G, SD 2's ViT-H) against
// transformers' CLIPTextModelWithProjection (tiny random-weight fixture of
// tools/fixtures/open_clip_text.py, whose OpenCLIP-layout copy open_clip's own
// TextTransformer loads strictly and reproduces): every hidden state, SDXL's penultimate
// layer, the projected pooled output; loaded from the ldm/sgm layout and from a diffusers
// SDXL folder's text_encoder_2. Then the loader against the tensor list of a real SDXL
// checkpoint (tests/data/reference/sdxl-sgm-tensors.tsv) and an SD 2 ViT-H shape list.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "clip_vae_fixtures.h"
#include "models/clip_text.h"
#include "test_util.h"

namespace darkroom::test {
namespace {

const std::string kDir = std::string(DARKROOM_TEST_DATA) + "/models/open_clip_tiny/";
const char* kSdxlPrefix = "conditioner.embedders.1.model.";
constexpr int kHeads = 2;  // the tiny model's (width 32 is not a multiple of 64)

// f32 against transformers' f32 over widths of at most 128: rounding noise. Measured:
// worst 2e-6 (activations up to 8); the bound leaves 5x for other accumulation orders.
constexpr double kF32Tol = 1e-5;

std::shared_ptr<const SafetensorsFile> open_fixture(const std::string& file) {
  return std::make_shared<const SafetensorsFile>(SafetensorsFile::open(kDir + file));
}

Tensor ref(const std::string& name) {
  static const SafetensorsFile f = SafetensorsFile::open(kDir + "open_clip_ref.safetensors");
  return f.tensor("open_clip." + name);
}

// Every element within atol + rel_to_largest · max|ref| (the second term for bf16, whose
// error scales with the activations' magnitude).
void expect_matches(const Tensor& got, const std::string& name, double atol,
                    double rel_to_largest = 0) {
  const Tensor r = ref(name);
  ASSERT_EQ(got.shape(), r.shape()) << name;
  const std::vector<float> g = got.to_floats(), e = r.to_floats();
  double worst = 0, largest = 0;
  size_t at = 0;
  for (size_t i = 0; i < e.size(); ++i) {
    const double err = std::fabs(static_cast<double>(g[i]) - e[i]);
    largest = std::max(largest, std::fabs(static_cast<double>(e[i])));
    if (!(err <= worst)) worst = std::isnan(err) ? INFINITY : err, at = i;
  }
  EXPECT_LE(worst, atol + rel_to_largest * largest)
      << name << ": worst error at " << at << ": got " << g[at] << ", expected " << e[at]
      << " (largest |ref| " << largest << ")";
  ::testing::Test::RecordProperty(name + "_max_abs_error", std::to_string(worst));
}

Weights sgm_weights(DType dtype) {
  return Weights::from_file(open_fixture("open_clip.safetensors"), kSdxlPrefix, kCpu, dtype);
}

ClipTextEncoder load_sgm(DType dtype) {
  const Weights w = sgm_weights(dtype);
  return ClipTextEncoder::load_open_clip(w, ClipTextConfig::detect_open_clip(w, kHeads));
}

// SDXL's CLIP-G conditioning (ComfyUI: layer "penultimate", layer_norm_hidden_state
// False; pooled_output projected).
const ClipEncodeOptions kSdxl{2, false, true};

TEST(OpenClip, DetectsTheConfigFromShapes) {
  const Weights w = sgm_weights(DType::F32);
  const ClipTextConfig c = ClipTextConfig::detect_open_clip(w, kHeads);
  EXPECT_EQ(c.width, 32);
  EXPECT_EQ(c.layers, 3);
  EXPECT_EQ(c.heads, 2);
  EXPECT_EQ(c.mlp_width, 128);
  EXPECT_EQ(c.positions, 77);
  EXPECT_EQ(c.projection_dim, 24);
  EXPECT_EQ(c.activation, ClipActivation::Gelu);
  EXPECT_FLOAT_EQ(c.eps, 1e-5f);
  EXPECT_EQ(ClipTextEncoder::load_open_clip(w, c).vocab_size(), 256);
  // Without the head count, width / 64 is not an integer split of 32.
  expect_error([&] { ClipTextConfig::detect_open_clip(w); }, "[clip text]");
}

TEST(OpenClip, HiddenStatesMatchTransformers) {
  const std::vector<Tensor> hs = load_sgm(DType::F32).hidden_states(ref("ids"));
  ASSERT_EQ(hs.size(), 4u);
  for (size_t i = 0; i < hs.size(); ++i)
    expect_matches(hs[i], "hidden_states." + std::to_string(i), kF32Tol);
}

TEST(OpenClip, SdxlPenultimateAndProjectedPooled) {
  const ClipTextOutput out = load_sgm(DType::F32).encode(ref("ids"), kSdxl);
  expect_matches(out.hidden, "penultimate", kF32Tol);  // [2, 77, 32], not normed
  expect_matches(out.pooled, "text_embeds", kF32Tol);  // [2, 24]
}

TEST(OpenClip, LastLayerNormedAndStoppingEarly) {
  const ClipTextEncoder clip = load_sgm(DType::F32);
  const ClipTextOutput last = clip.encode(ref("ids"), 1);
  expect_matches(last.hidden, "last_normed", kF32Tol);
  expect_matches(last.pooled, "text_embeds", kF32Tol);
  // Without the pooled output the last layer is not run; the penultimate is the same.
  const ClipTextOutput early = clip.encode(ref("ids"), ClipEncodeOptions{2, false, false});
  EXPECT_FALSE(early.pooled.defined());
  expect_matches(early.hidden, "penultimate", kF32Tol);
}

TEST(OpenClip, WithoutProjectionPoolsTheNormedEndToken) {
  const Weights w = sgm_weights(DType::F32);
  ClipTextConfig c = ClipTextConfig::detect_open_clip(w, kHeads);
  c.projection_dim = 0;
  const ClipTextEncoder clip = ClipTextEncoder::load_open_clip(w, c);
  expect_matches(clip.encode(ref("ids"), 1).pooled, "pooled", kF32Tol);  // [2, 32]
  EXPECT_FALSE(w.used().contains(std::string(kSdxlPrefix) + "text_projection"));
}

TEST(OpenClip, AcceptsI64Ids) {
  const Tensor i32 = ref("ids");
  Tensor i64 = Tensor::empty(i32.shape(), DType::I64);
  for (int64_t i = 0; i < i32.numel(); ++i) i64.data<int64_t>()[i] = i32.data<int32_t>()[i];
  const ClipTextOutput out = load_sgm(DType::F32).encode(i64, kSdxl);
  expect_matches(out.hidden, "penultimate", kF32Tol);
  expect_matches(out.pooled, "text_embeds", kF32Tol);
}

TEST(OpenClip, LoadsTheDiffusersTextEncoder2) {
  const auto file = open_fixture("text_encoder_2/model.safetensors");
  const Weights w = clip_text_with_projection_weights_from_hf(file, kCpu, DType::F32);
  const ClipTextConfig c = ClipTextConfig::detect_hf_with_projection(w, kHeads);
  EXPECT_EQ(c.width, 32);
  EXPECT_EQ(c.layers, 3);
  EXPECT_EQ(c.mlp_width, 128);
  EXPECT_EQ(c.projection_dim, 24);
  EXPECT_EQ(c.activation, ClipActivation::Gelu);
  const ClipTextEncoder clip = ClipTextEncoder::load_hf_with_projection(w, c);
  const ClipTextOutput out = clip.encode(ref("ids"), kSdxl);
  expect_matches(out.hidden, "penultimate", kF32Tol);
  expect_matches(out.pooled, "text_embeds", kF32Tol);
  expect_matches(clip.hidden_states(ref("ids")).back(), "hidden_states.3", kF32Tol);
  // Every tensor of the file is used (save_pretrained writes no position_ids buffer).
  std::set<std::string> all;
  for (const TensorInfo& t : file->tensors()) all.insert(t.name);
  EXPECT_EQ(w.used(), all);
}

// bf16 weights and activations (f32 statistics inside the kernels): 8 significant bits,
// so each rounding is up to 2^-9 ≈ 0.2% relative; ~20 rounded steps per layer adding like
// a random walk give ≈ sqrt(60) · 0.2% ≈ 1.5% of the activations' scale after 3 layers,
// plus the projection's. Measured: penultimate 0.053 of 7.1 (0.75%), projected pooled
// 0.021 of 3.2 (0.67%). The bound, 5% of the largest |ref| (as for CLIP-L), leaves room
// for other CPUs' accumulation orders while a wrong weight, head split, mask or
// projection moves outputs by O(100%).
constexpr double kBf16RelTol = 5e-2;

TEST(OpenClip, Bf16StaysWithinItsRoundingBound) {
  const ClipTextOutput out = load_sgm(DType::BF16).encode(ref("ids"), kSdxl);
  EXPECT_EQ(out.hidden.dtype(), DType::BF16);
  expect_matches(out.hidden, "penultimate", 0, kBf16RelTol);
  expect_matches(out.pooled, "text_embeds", 0, kBf16RelTol);
}

TEST(OpenClip, RejectsMismatchedLayouts) {
  // A CLIPTextModel file (no projection) is not a CLIPTextModelWithProjection.
  const auto plain = open_sd15_tiny("diffusers/text_encoder/model.safetensors");
  expect_error([&] { clip_text_with_projection_weights_from_hf(plain, kCpu, DType::F32); },
               "[clip text]");
  const Weights root = Weights::from_file(plain, "", kCpu, DType::F32);
  expect_error([&] { ClipTextConfig::detect_hf_with_projection(root, 2); }, "[clip text]");
  // A projection lies outside "text_model.": load() refuses a config that has one.
  const auto hf = open_fixture("text_encoder_2/model.safetensors");
  const Weights w = clip_text_with_projection_weights_from_hf(hf, kCpu, DType::F32);
  const ClipTextConfig c = ClipTextConfig::detect_hf_with_projection(w, kHeads);
  expect_error([&] { ClipTextEncoder::load(w.sub("text_model."), c); }, "[clip text]");
  // Hugging Face names are not OpenCLIP's, nor the reverse.
  expect_error([&] { ClipTextConfig::detect_open_clip(w.sub("text_model."), kHeads); },
               "[clip text]");
  expect_error([&] { ClipTextConfig::detect(sgm_weights(DType::F32), kHeads); }, "[clip text]");
}

// ---------------------------------------------------------------------------------------
// The loader against real checkpoints' tensor lists (shape-only weights, never run).

std::set<std::string> names_under(const std::map<std::string, Shape>& shapes,
                                  const std::string& prefix) {
  std::set<std::string> names;
  for (const auto& [name, shape] : shapes)
    if (name.rfind(prefix, 0) == 0) names.insert(name);
  return names;
}

std::vector<std::string> minus(const std::set<std::string>& a, const std::set<std::string>& b) {
  std::vector<std::string> out;
  for (const std::string& n : a)
    if (!b.contains(n)) out.push_back(n);
  return out;
}

// Loads `prefix` of `shapes` (with logit_scale added, as real files carry it) and checks
// that exactly the listed tensors are asked for: every one, with its shape, and no other.
ClipTextConfig expect_uses_exactly(std::map<std::string, Shape> shapes, const std::string& prefix,
                                   size_t count) {
  const std::set<std::string> expected = names_under(shapes, prefix);
  EXPECT_EQ(expected.size(), count);
  shapes.emplace(prefix + "logit_scale", Shape{});
  const Weights w = Weights::from_shapes(shapes, prefix);
  const ClipTextConfig c = ClipTextConfig::detect_open_clip(w);  // heads = width / 64
  const ClipTextEncoder clip = ClipTextEncoder::load_open_clip(w, c);
  EXPECT_EQ(clip.vocab_size(), 49408);
  const std::set<std::string> used = w.used();
  EXPECT_EQ(minus(expected, used), std::vector<std::string>{}) << "not loaded";
  EXPECT_EQ(minus(used, expected), std::vector<std::string>{}) << "loaded but not in the file";
  return c;
}

TEST(OpenClip, SdxlClipGUsesExactlyTheCheckpointsTensors) {
  // 2 embeddings + 32 layers × 12 + ln_final 2 + text_projection
  const ClipTextConfig c =
      expect_uses_exactly(reference_shapes("sdxl-sgm-tensors.tsv"), kSdxlPrefix, 389);
  EXPECT_EQ(c.width, 1280);
  EXPECT_EQ(c.layers, 32);
  EXPECT_EQ(c.heads, 20);
  EXPECT_EQ(c.mlp_width, 5120);
  EXPECT_EQ(c.positions, 77);
  EXPECT_EQ(c.projection_dim, 1280);
  EXPECT_EQ(c.activation, ClipActivation::Gelu);
}

// SD 2.x's OpenCLIP ViT-H/14 text tower under "cond_stage_model.model." (no reference
// list is committed for SD 2: written out from the ViT-H-14 text config, width 1024,
// 24 layers, 16 heads, MLP 4096, projection 1024, vocab 49408, 77 positions).
std::map<std::string, Shape> vit_h_shapes(const std::string& prefix) {
  const int64_t c = 1024, m = 4096;
  std::map<std::string, Shape> s{
      {prefix + "token_embedding.weight", {49408, c}},
      {prefix + "positional_embedding", {77, c}},
      {prefix + "ln_final.weight", {c}},
      {prefix + "ln_final.bias", {c}},
      {prefix + "text_projection", {c, 1024}},
  };
  for (int i = 0; i < 24; ++i) {
    const std::string l = prefix + "transformer.resblocks." + std::to_string(i) + ".";
    for (const char* n : {"ln_1", "ln_2"}) {
      s.emplace(l + n + ".weight", Shape{c});
      s.emplace(l + n + ".bias", Shape{c});
    }
    s.emplace(l + "attn.in_proj_weight", Shape{3 * c, c});
    s.emplace(l + "attn.in_proj_bias", Shape{3 * c});
    s.emplace(l + "attn.out_proj.weight", Shape{c, c});
    s.emplace(l + "attn.out_proj.bias", Shape{c});
    s.emplace(l + "mlp.c_fc.weight", Shape{m, c});
    s.emplace(l + "mlp.c_fc.bias", Shape{m});
    s.emplace(l + "mlp.c_proj.weight", Shape{c, m});
    s.emplace(l + "mlp.c_proj.bias", Shape{c});
  }
  return s;
}

TEST(OpenClip, Sd2VitHUsesExactlyItsTensors) {
  const std::string prefix = "cond_stage_model.model.";
  const ClipTextConfig c = expect_uses_exactly(vit_h_shapes(prefix), prefix, 2 + 24 * 12 + 3);
  EXPECT_EQ(c.width, 1024);
  EXPECT_EQ(c.layers, 24);
  EXPECT_EQ(c.heads, 16);
  EXPECT_EQ(c.mlp_width, 4096);
  EXPECT_EQ(c.projection_dim, 1024);
  EXPECT_EQ(c.activation, ClipActivation::Gelu);
}

}  // namespace
}  // namespace darkroom::test
