// SD 2.x and difference ControlNets (suite ControlNetSd2) against diffusers'
// ControlNetModel on the tiny fixtures of tools/fixtures/controlnet_sd2.py
// (data/controlnet_sd2/): an SD 2.x-layout ControlNet (Linear projections, 8-wide heads,
// context 32) shaped for the tiny SD 2.x checkpoint's UNet (data/pipeline/families/
// sd2.safetensors), under diffusers names and under ldm names with "control_model." (the
// latter read back by diffusers' from_single_file in the generator), and the same network
// as a difference ControlNet whose UNet part is stored minus that UNet's weights. The
// residuals of all three (the difference one with the UNet's weights added) must be
// diffusers' on the summed weights. Also: the names a full-size SD 2.1 ControlNet has
// (shared/reference has no SD 2.x list: SD 1.5's UNet names with SD 2.x's Linear
// projections and 1024-wide context, plus SD 1.5's hint block and zero convs) are exactly
// what ControlNet::load reads, and the family comes from the shapes.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/safetensors.h"
#include "models/controlnet.h"
#include "models/weights.h"
#include "pipeline/controlnet_loader.h"
#include "pipeline/torch_save_writer.h"
#include "test_util.h"

namespace darkroom {
namespace {

using pipeline::load_controlnet;
using pipeline::ModelFamily;
using test::error_stats;
using test::ErrorStats;
using test::nchw_to_nhwc;

// f32 residuals: max |ours - diffusers| over all residuals (measured 6.0e-7 for each file,
// |r| up to 1.95; the rest is summation order).
constexpr double kTolerance = 1e-5;

std::string data(const std::string& file) {
  return std::string(DARKROOM_TEST_DATA) + "/controlnet_sd2/" + file;
}

using test::nhwc;

struct Reference {
  Tensor x, hint, t, context;
  std::vector<Tensor> residuals;  // down0 .. down8, then mid; NHWC f32
};

const Reference& reference() {
  static const Reference r = [] {
    const SafetensorsFile f = SafetensorsFile::open(data("sd2_ref.safetensors"));
    Reference r;
    r.x = nhwc(f.tensor("x"));
    r.hint = nhwc(f.tensor("hint"));
    r.t = Tensor::from_floats(f.tensor("t").to_floats(), f.tensor("t").shape());
    r.context = Tensor::from_floats(f.tensor("context").to_floats(), f.tensor("context").shape());
    for (int i = 0; f.find("down" + std::to_string(i)); ++i)
      r.residuals.push_back(nhwc(f.tensor("down" + std::to_string(i))));
    r.residuals.push_back(nhwc(f.tensor("mid")));
    return r;
  }();
  return r;
}

std::vector<Tensor> residuals(const ControlNet& net) {
  const Reference& r = reference();
  ControlResiduals out = net.forward(r.x, r.hint, r.t, r.context);
  out.skips.push_back(out.middle);
  return out.skips;
}

// The largest |a - b| over all residuals (shapes checked).
double worst(const std::vector<Tensor>& got, const std::vector<Tensor>& want) {
  EXPECT_EQ(got.size(), want.size());
  double w = 0;
  for (size_t i = 0; i < std::min(got.size(), want.size()); ++i) {
    EXPECT_EQ(got[i].shape(), want[i].shape()) << "residual " << i;
    if (got[i].shape() != want[i].shape()) return INFINITY;
    const ErrorStats e = error_stats(got[i].to_floats(), want[i].to_floats());
    w = std::max(w, e.max_abs);
  }
  return w;
}

// The tiny SD 2.x checkpoint's UNet (f8 e4m3 matrices, f16 vectors as stored).
Weights sd2_unet() {
  auto file = std::make_shared<const SafetensorsFile>(SafetensorsFile::open(
      std::string(DARKROOM_TEST_DATA) + "/pipeline/families/sd2.safetensors"));
  return Weights::from_file(file, "model.diffusion_model.", kCpu, DType::F32);
}

TEST(ControlNetSd2, DiffusersFileConfig) {
  const auto net = load_controlnet(data("sd2.safetensors"), kCpu, DType::F32);
  const UNetConfig& c = net->config();
  // sdxl_pipeline.py's SD2_UNET: 8, 16, 24 channels, attention on the first two levels,
  // Linear projections, context 32, heads of 8 channels, 4 groups.
  EXPECT_EQ(c.model_channels, 8);
  EXPECT_EQ(c.channel_mult, (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(c.transformer_depth, (std::vector<int>{1, 1, 0}));
  EXPECT_EQ(c.context_dim, 32);
  EXPECT_TRUE(c.linear_proj);
  EXPECT_EQ(c.adm_in_channels, 0);
  EXPECT_EQ(c.groups, 4);
  EXPECT_EQ(c.head_dim, 8);
  EXPECT_EQ(c.num_heads, 0);
  EXPECT_EQ(net->hint_factor(), 8);
}

TEST(ControlNetSd2, DiffusersAndLdmFilesMatchDiffusersF32) {
  const Reference& r = reference();
  ASSERT_EQ(r.residuals.size(), 10u);  // 9 skips (3 levels) + middle
  double peak = 0;
  for (const Tensor& t : r.residuals)
    for (float v : t.to_floats()) peak = std::max(peak, static_cast<double>(std::fabs(v)));
  ASSERT_GT(peak, 0.5);
  std::vector<std::vector<Tensor>> got;
  for (const char* file : {"sd2.safetensors", "sd2_ldm.safetensors"}) {
    got.push_back(residuals(*load_controlnet(data(file), kCpu, DType::F32)));
    const double e = worst(got.back(), r.residuals);
    EXPECT_LE(e, kTolerance) << file;
    std::cout << "[ sd2 ] " << file << ": max |r - diffusers| " << e << " (|r| up to " << peak
              << ")\n";
  }
  // The two layouts hold the same values: the same network, bit for bit.
  EXPECT_EQ(worst(got[0], got[1]), 0.0);
}

// ComfyUI's DiffControlNetLoader: file[X] + the model's diffusion_model.X in the file's
// dtype; the oracle is diffusers on exactly those sums.
TEST(ControlNetSd2, DifferenceFileWithTheModelMatchesDiffusers) {
  const Weights unet = sd2_unet();
  const auto net = load_controlnet(data("sd2_diff.safetensors"), kCpu, DType::F32, nullptr, &unet);
  const std::vector<Tensor> got = residuals(*net);
  const double e = worst(got, reference().residuals);
  EXPECT_LE(e, kTolerance);
  std::cout << "[ sd2 ] sd2_diff.safetensors + UNet: max |r - diffusers| " << e << "\n";
  // The sums are the plain file's values exactly.
  EXPECT_EQ(worst(got, residuals(*load_controlnet(data("sd2_ldm.safetensors"), kCpu, DType::F32))),
            0.0);
  // The model's weights mattered: the stored differences alone are far off.
  std::map<std::string, Tensor> raw;
  const SafetensorsFile f = SafetensorsFile::open(data("sd2_diff.safetensors"));
  for (const TensorInfo& t : f.tensors())
    if (t.name != "difference") raw.emplace(t.name, f.tensor(t.name));
  const Weights diff_only = Weights::from_tensors(raw, "control_model.", kCpu, DType::F32);
  UNetConfig c = ControlNet::detect_config(diff_only);
  c.groups = 4;
  c.head_dim = 8;
  c.num_heads = 0;
  EXPECT_GT(worst(residuals(ControlNet::load(diff_only, c)), reference().residuals), 0.1);
}

// The same difference file as torch.save (f16 tensors, the facts as string leaves; the
// restricted pickle reader's path): the same sums, the same residuals.
TEST(ControlNetSd2, DifferenceTorchSaveFileGivesTheSameResiduals) {
  const SafetensorsFile f = SafetensorsFile::open(data("sd2_diff.safetensors"));
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const TensorInfo& t : f.tensors()) {
    ASSERT_EQ(t.dtype, DType::F16) << t.name;
    tensors.emplace_back(t.name, f.tensor(t.name));
  }
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("darkroom_sd2_diff_" + std::to_string(::getpid()) + ".pth"))
                               .string();
  pipeline::test::write_torch_save(path, tensors, f.metadata());
  const Weights unet = sd2_unet();
  const auto net = load_controlnet(path, kCpu, DType::F32, nullptr, &unet);
  std::filesystem::remove(path);
  EXPECT_EQ(worst(residuals(*net), residuals(*load_controlnet(data("sd2_diff.safetensors"), kCpu,
                                                              DType::F32, nullptr, &unet))),
            0.0);
}

// A plain file with a model given loads as without one (ComfyUI: the difference rule only
// applies to files with "difference").
TEST(ControlNetSd2, PlainFileIgnoresTheModel) {
  const Weights unet = sd2_unet();
  const auto net = load_controlnet(data("sd2_ldm.safetensors"), kCpu, DType::F32, nullptr, &unet);
  EXPECT_LE(worst(residuals(*net), reference().residuals), kTolerance);
}

void expect_error_containing(const std::function<void()>& f, const std::string& start,
                             const std::string& says) {
  try {
    f();
    ADD_FAILURE() << "no error; expected one saying " << says;
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.rfind(start, 0), 0u) << what;
    EXPECT_NE(what.find(says), std::string::npos) << what;
  }
}

TEST(ControlNetSd2, DifferenceFileNeedsTheRightModel) {
  const std::string diff = data("sd2_diff.safetensors");
  // Through ControlNetLoader (no model): refused, naming the node that takes one.
  expect_error_containing([&] { load_controlnet(diff, kCpu, DType::F32); },
                          "[controlnet] " + diff + ": ", "DiffControlNetLoader");
  // With SD 1.5's tiny UNet: the shapes differ.
  auto sd15 = std::make_shared<const SafetensorsFile>(SafetensorsFile::open(
      std::string(DARKROOM_TEST_DATA) + "/models/sd15_tiny/unet.safetensors"));
  const Weights other = Weights::from_file(sd15, "model.diffusion_model.", kCpu, DType::F32);
  expect_error_containing([&] { load_controlnet(diff, kCpu, DType::F32, nullptr, &other); },
                          "[controlnet] " + diff + ": ", "for another model");
  // With weights that share no names (the UNet under the wrong prefix).
  const Weights none = Weights::from_file(sd15, "first_stage_model.", kCpu, DType::F32);
  expect_error_containing([&] { load_controlnet(diff, kCpu, DType::F32, nullptr, &none); },
                          "[controlnet] " + diff + ": ", "none of whose tensors");
}

// ---- the full-size SD 2.1 layout ---------------------------------------------------------

// SD 2.1's ControlNet names and shapes (thibaud/controlnet-sd21-*, ldm layout): the UNet part
// of data/reference/sd15-ldm-tensors.tsv (SD 2.x's names are SD 1.5's) with proj_in /
// proj_out Linear [C, C] and attn2.to_k / to_v [C, 1024]; then the hint block 3 → 16, 16,
// 32, 32, 96, 96, 256 → 320 and a 1×1 zero conv per skip and the middle, as SD 1.5's
// (tools/fixtures/controlnet_sd2.py checks the same list against diffusers' full-size
// SD 2.1 ControlNetModel renamed).
std::map<std::string, Shape> sd21_controlnet_shapes() {
  const std::string prefix = "model.diffusion_model.";
  std::ifstream in(std::string(DARKROOM_TEST_DATA) + "/reference/sd15-ldm-tensors.tsv");
  EXPECT_TRUE(in);
  std::map<std::string, Shape> shapes;
  auto ends_with = [](const std::string& s, const std::string& e) {
    return s.size() >= e.size() && s.compare(s.size() - e.size(), e.size(), e) == 0;
  };
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) != 0) continue;
    const size_t tab = line.find('\t');
    const std::string name = line.substr(prefix.size(), tab - prefix.size());
    if (name.rfind("time_embed.", 0) != 0 && name.rfind("input_blocks.", 0) != 0 &&
        name.rfind("middle_block.", 0) != 0)
      continue;
    std::string dims = line.substr(tab + 1);
    for (char& ch : dims)
      if (ch == '[' || ch == ']' || ch == ',') ch = ' ';
    std::istringstream ds(dims);
    std::vector<int64_t> v;
    for (int64_t d; ds >> d;) v.push_back(d);
    if (ends_with(name, ".proj_in.weight") || ends_with(name, ".proj_out.weight")) v.resize(2);
    if (ends_with(name, ".attn2.to_k.weight") || ends_with(name, ".attn2.to_v.weight")) v[1] = 1024;
    shapes.emplace(name, Shape(v));
  }
  const std::vector<std::pair<int64_t, int64_t>> hint = {{16, 3},  {16, 16}, {32, 16},  {32, 32},
                                                         {96, 32}, {96, 96}, {256, 96}, {320, 256}};
  for (size_t k = 0; k < hint.size(); ++k) {
    const std::string n = "input_hint_block." + std::to_string(2 * k);
    shapes[n + ".weight"] = Shape{hint[k].first, hint[k].second, 3, 3};
    shapes[n + ".bias"] = Shape{hint[k].first};
  }
  // Skip widths of SD 1.5 / 2.x: 320 ×3 (conv_in, two ResBlocks), 320 (down), 640 ×2, 640,
  // 1280 ×2, 1280, 1280 ×2; the middle 1280.
  const std::vector<int64_t> skips = {320, 320,  320,  320,  640,  640,
                                      640, 1280, 1280, 1280, 1280, 1280};
  for (size_t i = 0; i < skips.size(); ++i) {
    const std::string z = "zero_convs." + std::to_string(i) + ".0.";
    shapes[z + "weight"] = Shape{skips[i], skips[i], 1, 1};
    shapes[z + "bias"] = Shape{skips[i]};
  }
  shapes["middle_block_out.0.weight"] = Shape{1280, 1280, 1, 1};
  shapes["middle_block_out.0.bias"] = Shape{1280};
  return shapes;
}

TEST(ControlNetSd2, KeyLayoutIsSd21sAndTheFamilyComesFromTheShapes) {
  const std::map<std::string, Shape> shapes = sd21_controlnet_shapes();
  ASSERT_EQ(shapes.size(), 298u + 42u);  // the generator's count for diffusers' SD 2.1
  std::map<std::string, Shape> prefixed;
  for (const auto& [n, s] : shapes) prefixed["control_model." + n] = s;
  const Weights w = Weights::from_shapes(prefixed, "control_model.");
  const UNetConfig c = ControlNet::detect_config(w);
  EXPECT_EQ(c.model_channels, 320);
  EXPECT_EQ(c.channel_mult, (std::vector<int>{1, 2, 4, 4}));
  EXPECT_EQ(c.context_dim, 1024);
  EXPECT_TRUE(c.linear_proj);
  EXPECT_EQ(c.adm_in_channels, 0);
  EXPECT_EQ(c.head_dim, 64);  // SD 2.x: 5, 10, 20, 20 heads of 64
  EXPECT_EQ(c.num_heads, 0);
  EXPECT_EQ(pipeline::controlnet_family(c), ModelFamily::Sd2);
  const ControlNet net = ControlNet::load(w, c);
  EXPECT_EQ(net.hint_factor(), 8);
  const std::set<std::string> used = w.used();
  for (const auto& [n, s] : prefixed) EXPECT_TRUE(used.count(n)) << "not read: " << n;
  EXPECT_EQ(used.size(), prefixed.size());

  // The other families and near misses.
  EXPECT_EQ(pipeline::controlnet_family(UNetConfig::sd15()), ModelFamily::Sd15);
  EXPECT_EQ(pipeline::controlnet_family(UNetConfig::sdxl()), ModelFamily::Sdxl);
  UNetConfig conv = c;
  conv.linear_proj = false;  // a 1024-wide context with 1×1-conv projections: no SD 2.x
  EXPECT_FALSE(pipeline::controlnet_family(conv).has_value());
  UNetConfig adm = c;
  adm.adm_in_channels = 2816;
  EXPECT_FALSE(pipeline::controlnet_family(adm).has_value());
}

}  // namespace
}  // namespace darkroom
