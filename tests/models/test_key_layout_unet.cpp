// The full-size UNets loaded from shape-only weights built from the reference tensor
// lists of real checkpoints (data/reference/*.tsv): the configuration read from the shapes
// must be the published one, and the loader must ask for every tensor under
// "model.diffusion_model." and nothing else.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include "models/unet.h"
#include "models/weights.h"

namespace darkroom {
namespace {

const std::string kPrefix = "model.diffusion_model.";

// "name<TAB>[d0, d1, ...]" per line; '#' lines are comments.
std::map<std::string, Shape> read_tensor_list(const std::string& file) {
  const std::string path = std::string(DARKROOM_TEST_DATA) + "/reference/" + file;
  std::ifstream in(path);
  EXPECT_TRUE(in) << "cannot open " << path;
  std::map<std::string, Shape> shapes;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const size_t tab = line.find('\t');
    EXPECT_NE(tab, std::string::npos) << line;
    if (tab == std::string::npos) continue;
    std::string dims = line.substr(tab + 1);
    for (char& ch : dims)
      if (ch == '[' || ch == ']' || ch == ',') ch = ' ';
    std::istringstream ds(dims);
    std::vector<int64_t> v;
    for (int64_t d; ds >> d;) v.push_back(d);
    shapes.emplace(line.substr(0, tab), Shape(v));
  }
  return shapes;
}

std::set<std::string> names_under(const std::map<std::string, Shape>& shapes,
                                  const std::string& prefix) {
  std::set<std::string> out;
  for (const auto& [name, shape] : shapes)
    if (name.rfind(prefix, 0) == 0) out.insert(name);
  return out;
}

// Names in `a` and not in `b`, for the failure message (at most 20).
std::string missing_from(const std::set<std::string>& a, const std::set<std::string>& b) {
  std::string s;
  int n = 0;
  for (const std::string& x : a)
    if (!b.count(x) && n++ < 20) s += "  " + x + "\n";
  return s;
}

void expect_loads_exactly(const std::map<std::string, Shape>& shapes, const UNetConfig& cfg,
                          const Weights& w) {
  UNet::load(w, cfg);
  const std::set<std::string> expected = names_under(shapes, kPrefix);
  const std::set<std::string> used = w.used();
  EXPECT_EQ(used.size(), expected.size());
  EXPECT_TRUE(used == expected) << "in the checkpoint, never loaded:\n"
                                << missing_from(expected, used)
                                << "loaded, not in the checkpoint:\n"
                                << missing_from(used, expected);
}

TEST(Sd15Unet, KeyLayoutIsTheCheckpointsExactly) {
  const auto shapes = read_tensor_list("sd15-ldm-tensors.tsv");
  ASSERT_EQ(names_under(shapes, kPrefix).size(), 686u);  // the SD 1.5 UNet's tensor count
  const Weights w = Weights::from_shapes(shapes, kPrefix);
  const UNetConfig cfg = UNetConfig::detect(w);
  // The published SD 1.5 configuration (v1-inference.yaml).
  EXPECT_EQ(cfg.in_channels, 4);
  EXPECT_EQ(cfg.out_channels, 4);
  EXPECT_EQ(cfg.model_channels, 320);
  EXPECT_EQ(cfg.channel_mult, (std::vector<int>{1, 2, 4, 4}));
  EXPECT_EQ(cfg.num_res_blocks, 2);
  EXPECT_EQ(cfg.transformer_depth, (std::vector<int>{1, 1, 1, 0}));
  EXPECT_EQ(cfg.transformer_depth_middle, 1);
  EXPECT_EQ(cfg.context_dim, 768);
  EXPECT_FALSE(cfg.linear_proj);
  EXPECT_EQ(cfg.adm_in_channels, 0);
  EXPECT_EQ(cfg.heads_for(320), 8);
  EXPECT_EQ(cfg.heads_for(1280), 8);
  EXPECT_EQ(cfg.groups, 32);
  expect_loads_exactly(shapes, cfg, w);
}

// SDXL is not run yet (no reference outputs), but its layout goes through the same
// detection and blocks: linear projections, per-level depths, label_emb, 2048 context.
TEST(SdxlUnet, KeyLayoutIsTheCheckpointsExactly) {
  const auto shapes = read_tensor_list("sdxl-sgm-tensors.tsv");
  ASSERT_EQ(names_under(shapes, kPrefix).size(), 1680u);
  const Weights w = Weights::from_shapes(shapes, kPrefix);
  const UNetConfig cfg = UNetConfig::detect(w);
  // sd_xl_base.yaml
  EXPECT_EQ(cfg.model_channels, 320);
  EXPECT_EQ(cfg.channel_mult, (std::vector<int>{1, 2, 4}));
  EXPECT_EQ(cfg.num_res_blocks, 2);
  EXPECT_EQ(cfg.transformer_depth, (std::vector<int>{0, 2, 10}));
  EXPECT_EQ(cfg.transformer_depth_middle, 10);
  EXPECT_EQ(cfg.context_dim, 2048);
  EXPECT_TRUE(cfg.linear_proj);
  EXPECT_EQ(cfg.adm_in_channels, 2816);
  EXPECT_EQ(cfg.heads_for(640), 10);  // num_head_channels 64
  EXPECT_EQ(cfg.heads_for(1280), 20);
  expect_loads_exactly(shapes, cfg, w);
}

}  // namespace
}  // namespace darkroom
