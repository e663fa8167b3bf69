// The CLIP text encoder and VAE loaders against the tensor list of a real SD 1.5
// single-file checkpoint (tests/data/reference/sd15-ldm-tensors.tsv): built from
// shape-only weights, each must ask for every one of the checkpoint's tensors under its
// prefix, with the checkpoint's shapes (Weights::get checks them), and nothing else. The
// only tensor real files carry that the loaders leave alone is the text model's int64
// position_ids (positions are 0..T-1 by construction).
#include <gtest/gtest.h>

#include <set>

#include "clip_vae_fixtures.h"
#include "models/clip_text.h"
#include "models/vae.h"

namespace darkroom::test {
namespace {

const char* kTsv = "sd15-ldm-tensors.tsv";
const std::string kClipPrefix = "cond_stage_model.transformer.text_model.";
const std::string kVaePrefix = "first_stage_model.";

std::set<std::string> names_under(const std::map<std::string, Shape>& shapes,
                                  const std::string& prefix) {
  std::set<std::string> names;
  for (const auto& [name, shape] : shapes)
    if (name.rfind(prefix, 0) == 0) names.insert(name);
  return names;
}

// Names in `a` that are not in `b`, for failure messages.
std::vector<std::string> minus(const std::set<std::string>& a, const std::set<std::string>& b) {
  std::vector<std::string> out;
  for (const std::string& n : a)
    if (!b.contains(n)) out.push_back(n);
  return out;
}

TEST(KeyLayoutClipVae, ClipTextUsesExactlyTheCheckpointsTensors) {
  std::map<std::string, Shape> shapes = reference_shapes(kTsv);
  ASSERT_EQ(shapes.size(), 1130u);
  const std::set<std::string> expected = names_under(shapes, kClipPrefix);
  ASSERT_EQ(expected.size(), 196u);  // 2 embeddings + 12 layers × 16 + final norm 2
  // An ignorable tensor real files carry: present, and must stay unused.
  shapes.emplace(kClipPrefix + "embeddings.position_ids", Shape{1, 77});

  const Weights w = Weights::from_shapes(shapes, kClipPrefix);
  const ClipTextConfig c = ClipTextConfig::detect(w);  // CLIP-L: heads = 768 / 64
  EXPECT_EQ(c.width, 768);
  EXPECT_EQ(c.layers, 12);
  EXPECT_EQ(c.heads, 12);
  EXPECT_EQ(c.mlp_width, 3072);
  EXPECT_EQ(c.positions, 77);
  EXPECT_EQ(c.activation, ClipActivation::QuickGelu);
  const ClipTextEncoder clip = ClipTextEncoder::load(w, c);
  EXPECT_EQ(clip.vocab_size(), 49408);

  const std::set<std::string> used = w.used();
  EXPECT_EQ(minus(expected, used), std::vector<std::string>{}) << "not loaded";
  EXPECT_EQ(minus(used, expected), std::vector<std::string>{}) << "loaded but not in the file";
}

TEST(KeyLayoutClipVae, VaeUsesExactlyTheCheckpointsTensors) {
  const std::map<std::string, Shape> shapes = reference_shapes(kTsv);
  const std::set<std::string> expected = names_under(shapes, kVaePrefix);
  ASSERT_EQ(expected.size(), 248u);

  const Weights w = Weights::from_shapes(shapes, kVaePrefix);
  const VaeConfig c = VaeConfig::detect(w);
  EXPECT_EQ(c.ch, 128);
  EXPECT_EQ(c.ch_mult, (std::vector<int>{1, 2, 4, 4}));
  EXPECT_EQ(c.num_res_blocks, 2);
  EXPECT_EQ(c.z_channels, 4);
  EXPECT_EQ(c.out_channels, 3);
  EXPECT_TRUE(c.has_encoder && c.has_quant_conv && c.has_post_quant_conv);
  const Vae vae = Vae::load(w, c);
  EXPECT_EQ(vae.config().in_channels, 3);

  const std::set<std::string> used = w.used();
  EXPECT_EQ(minus(expected, used), std::vector<std::string>{}) << "not loaded";
  EXPECT_EQ(minus(used, expected), std::vector<std::string>{}) << "loaded but not in the file";
}

}  // namespace
}  // namespace darkroom::test
