// ControlNet (suite ControlNet) against diffusers' ControlNetModel on tiny random-weight
// models written by tools/fixtures/controlnet.py into data/controlnet/: the residuals
// (down_block_res_samples, mid_block_res_sample) for SD 1.5 and SDXL layouts from each file
// format load_controlnet reads (diffusers names in .safetensors and in torch.save, ldm
// names, ldm names under "control_model." in torch.save), bf16 against torch's own bf16
// error, *_shuffle files' global average pooling, and a diffusers UNet2DConditionModel run with
// those residuals against darkroom's UNet given them. Also: the names a ControlNet::load
// reads are exactly the real SD 1.5 / SDXL UNets' input, middle and time blocks
// (data/reference/*.tsv) plus the hint block and zero convs at the released files' shapes;
// files that are no supported ControlNet, truncated or garbage are refused with
// "[controlnet] <path>: ...".
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "io/safetensors_writer.h"
#include "models/controlnet.h"
#include "models/unet.h"
#include "models/unet_diffusers_names.h"
#include "models/weights.h"
#include "pipeline/controlnet_loader.h"
#include "test_util.h"

namespace darkroom {
namespace {

namespace fs = std::filesystem;
using pipeline::load_controlnet;
using test::error_stats;
using test::ErrorStats;
using test::nchw_to_nhwc;

std::string data(const std::string& file) {
  return std::string(DARKROOM_TEST_DATA) + "/controlnet/" + file;
}

using test::f32;
using test::nhwc;

// The inputs and diffusers' outputs of one fixture (NHWC where darkroom is).
struct Reference {
  Tensor x, hint, t, context, y;
  std::vector<Tensor> down, down_bf16;  // residual i, NHWC f32
  Tensor mid, mid_bf16;
  Tensor unet_out;  // NHWC, or undefined
};

Reference load_reference(const std::string& file) {
  const SafetensorsFile f = SafetensorsFile::open(data(file));
  Reference r;
  r.x = nhwc(f.tensor("x"));
  r.hint = nhwc(f.tensor("hint"));
  r.t = f32(f.tensor("t"));
  r.context = f32(f.tensor("context"));
  if (f.find("y")) r.y = f32(f.tensor("y"));
  for (int i = 0; f.find("down" + std::to_string(i)); ++i) {
    r.down.push_back(nhwc(f.tensor("down" + std::to_string(i))));
    r.down_bf16.push_back(nhwc(f.tensor("down" + std::to_string(i) + "_bf16")));
  }
  r.mid = nhwc(f.tensor("mid"));
  r.mid_bf16 = nhwc(f.tensor("mid_bf16"));
  if (f.find("unet_out")) r.unet_out = nhwc(f.tensor("unet_out"));
  return r;
}

double peak(const Tensor& t) {
  double m = 0;
  for (float v : t.to_floats()) m = std::max(m, static_cast<double>(std::fabs(v)));
  return m;
}

ControlResiduals run(const ControlNet& net, const Reference& r) {
  return net.forward(r.x, r.hint, r.t, r.context, r.y);
}

// f32: every residual within 1e-4 of diffusers', relative to its largest value (≥ 1).
void expect_residuals_f32(const ControlResiduals& got, const Reference& r) {
  ASSERT_EQ(got.skips.size(), r.down.size());
  for (size_t i = 0; i <= r.down.size(); ++i) {
    const bool mid = i == r.down.size();
    const Tensor& g = mid ? got.middle : got.skips[i];
    const Tensor& want = mid ? r.mid : r.down[i];
    ASSERT_EQ(g.shape(), want.shape()) << "residual " << i;
    ASSERT_EQ(g.dtype(), DType::F32);
    const ErrorStats e = error_stats(g.to_floats(), want.to_floats());
    EXPECT_LE(e.max_abs, 1e-4 * std::max(1.0, peak(want)))
        << (mid ? "middle" : "skip " + std::to_string(i)) << ", rms " << e.rms;
  }
}

// bf16 weights and activations against diffusers' f32 residuals, with torch's own bf16
// run of the same model as the yardstick (as the UNet tests do): ours within twice its
// error, in max and in rms, over all residuals together.
void expect_residuals_bf16(const ControlResiduals& got, const Reference& r) {
  std::vector<float> ours, torch, want;
  for (size_t i = 0; i <= r.down.size(); ++i) {
    const bool mid = i == r.down.size();
    const Tensor& g = mid ? got.middle : got.skips[i];
    ASSERT_EQ(g.dtype(), DType::BF16);
    for (float v : g.to_floats()) ours.push_back(v);
    for (float v : (mid ? r.mid_bf16 : r.down_bf16[i]).to_floats()) torch.push_back(v);
    for (float v : (mid ? r.mid : r.down[i]).to_floats()) want.push_back(v);
  }
  const ErrorStats e_ours = error_stats(ours, want);
  const ErrorStats e_torch = error_stats(torch, want);
  ASSERT_GT(e_torch.max_abs, 0.0);
  ASSERT_LT(e_torch.max_abs, 0.05);  // measured 0.012 to 0.028 by the generator
  EXPECT_LE(e_ours.max_abs, 2 * e_torch.max_abs) << "torch's bf16 max error " << e_torch.max_abs;
  EXPECT_LE(e_ours.rms, 2 * e_torch.rms) << "torch's bf16 rms error " << e_torch.rms;
}

size_t tensor_count(const std::string& safetensors) {
  return SafetensorsFile::open(safetensors).tensors().size();
}

// ---- SD 1.5 layout, diffusers names, driving tests/data/models/sd15_tiny's UNet --------

TEST(ControlNet, Sd15DiffusersFileConfig) {
  const auto net = load_controlnet(data("sd15.safetensors"), kCpu, DType::F32);
  const UNetConfig& c = net->config();
  // tools/fixtures/unet.py's TINY: 8, 16, 32, 32 channels, attention on the first three
  // levels, 4 groups, 4 heads, context 32.
  EXPECT_EQ(c.model_channels, 8);
  EXPECT_EQ(c.channel_mult, (std::vector<int>{1, 2, 4, 4}));
  EXPECT_EQ(c.transformer_depth, (std::vector<int>{1, 1, 1, 0}));
  EXPECT_EQ(c.num_res_blocks, 2);
  EXPECT_EQ(c.context_dim, 32);
  EXPECT_FALSE(c.linear_proj);
  EXPECT_EQ(c.adm_in_channels, 0);
  EXPECT_EQ(c.groups, 4);
  EXPECT_EQ(c.num_heads, 4);
  EXPECT_EQ(net->hint_channels(), 3);
  EXPECT_EQ(net->hint_factor(), 8);
  EXPECT_EQ(net->dtype(), DType::F32);
}

TEST(ControlNet, Sd15DiffusersResidualsMatchDiffusersF32) {
  const Reference r = load_reference("sd15_ref.safetensors");
  ASSERT_EQ(r.down.size(), 12u);
  const auto net = load_controlnet(data("sd15.safetensors"), kCpu, DType::F32);
  expect_residuals_f32(run(*net, r), r);
}

TEST(ControlNet, Sd15DiffusersResidualsBf16WithinTwiceTorchsError) {
  const Reference r = load_reference("sd15_ref.safetensors");
  const auto net = load_controlnet(data("sd15.safetensors"), kCpu, DType::BF16);
  expect_residuals_bf16(run(*net, r), r);
}

// The residuals given to the UNet they were made for, against diffusers'
// UNet2DConditionModel(down_block_additional_residuals, mid_block_additional_residual).
TEST(ControlNet, Sd15UnetWithResidualsMatchesDiffusers) {
  const Reference r = load_reference("sd15_ref.safetensors");
  const auto net = load_controlnet(data("sd15.safetensors"), kCpu, DType::F32);
  const ControlResiduals control = run(*net, r);
  auto file = std::make_shared<const SafetensorsFile>(SafetensorsFile::open(
      std::string(DARKROOM_TEST_DATA) + "/models/sd15_tiny/unet.safetensors"));
  const Weights w = Weights::from_file(file, "model.diffusion_model.", kCpu, DType::F32);
  UNetConfig c = UNetConfig::detect(w);
  c.groups = 4;  // tools/fixtures/unet.py's TINY (norm_num_groups 4, 4 heads)
  c.num_heads = 4;
  c.head_dim = 0;
  const UNet unet = UNet::load(w, c);
  const Tensor out = unet.forward(r.x, r.t, r.context, {}, &control);
  ASSERT_EQ(out.shape(), r.unet_out.shape());
  const ErrorStats e = error_stats(out.to_floats(), r.unet_out.to_floats());
  EXPECT_LE(e.max_abs, 1e-4) << "rms " << e.rms;
  // ... and the residuals matter: without them the output is far off.
  const Tensor plain = unet.forward(r.x, r.t, r.context);
  EXPECT_GT(error_stats(plain.to_floats(), r.unet_out.to_floats()).max_abs, 0.05);
}

// ---- SD 1.5 layout under ldm names: ControlNet 1.1 .safetensors and 1.0 .pth ----------

TEST(ControlNet, Sd15LdmSafetensorsMatchesDiffusers) {
  const Reference r = load_reference("sd15_mini_ref.safetensors");
  const auto net = load_controlnet(data("sd15_mini_ldm.safetensors"), kCpu, DType::F32);
  EXPECT_EQ(net->config().model_channels, 4);
  EXPECT_EQ(net->config().context_dim, 8);
  expect_residuals_f32(run(*net, r), r);
}

TEST(ControlNet, Sd15LdmPrefixedTorchSaveMatchesDiffusers) {
  const Reference r = load_reference("sd15_mini_ref.safetensors");
  const auto net = load_controlnet(data("sd15_mini_ldm.pth"), kCpu, DType::F32);
  EXPECT_EQ(net->config().groups, 2);  // from the .pth's string leaves
  EXPECT_EQ(net->config().num_heads, 2);
  expect_residuals_f32(run(*net, r), r);
}

TEST(ControlNet, Sd15LdmBf16WithinTwiceTorchsError) {
  const Reference r = load_reference("sd15_mini_ref.safetensors");
  const auto net = load_controlnet(data("sd15_mini_ldm.pth"), kCpu, DType::BF16);
  expect_residuals_bf16(run(*net, r), r);
}

// ---- SDXL layout: label_emb, Linear projections, transformer depth 2 ------------------

TEST(ControlNet, SdxlConfig) {
  const auto net = load_controlnet(data("sdxl_ldm.safetensors"), kCpu, DType::F32);
  const UNetConfig& c = net->config();
  EXPECT_EQ(c.model_channels, 4);
  EXPECT_EQ(c.channel_mult, (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(c.transformer_depth, (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(c.transformer_depth_middle, 2);
  EXPECT_TRUE(c.linear_proj);
  EXPECT_EQ(c.adm_in_channels, 16);
  EXPECT_EQ(c.head_dim, 4);
  EXPECT_EQ(net->hint_factor(), 8);  // with 3 levels too
}

TEST(ControlNet, SdxlDiffusersAndLdmMatchDiffusersF32) {
  const Reference r = load_reference("sdxl_ref.safetensors");
  ASSERT_EQ(r.down.size(), 9u);
  for (const char* file : {"sdxl_diffusers.pth", "sdxl_ldm.safetensors"}) {
    SCOPED_TRACE(file);
    const auto net = load_controlnet(data(file), kCpu, DType::F32);
    expect_residuals_f32(run(*net, r), r);
  }
}

TEST(ControlNet, SdxlBf16WithinTwiceTorchsError) {
  const Reference r = load_reference("sdxl_ref.safetensors");
  const auto net = load_controlnet(data("sdxl_diffusers.pth"), kCpu, DType::BF16);
  expect_residuals_bf16(run(*net, r), r);
}

TEST(ControlNet, SdxlUnetWithResidualsMatchesDiffusers) {
  const Reference r = load_reference("sdxl_ref.safetensors");
  const auto net = load_controlnet(data("sdxl_diffusers.pth"), kCpu, DType::F32);
  const ControlResiduals control = run(*net, r);
  auto file =
      std::make_shared<const SafetensorsFile>(SafetensorsFile::open(data("sdxl_unet.safetensors")));
  const Weights w = unet_weights_from_diffusers(file, kCpu, DType::F32);
  UNetConfig c = UNetConfig::detect(w);
  c.groups = 2;  // the generator's SDXL_UNET: 2 groups, heads of 4 channels
  c.num_heads = 0;
  c.head_dim = 4;
  const UNet unet = UNet::load(w, c);
  const Tensor out = unet.forward(r.x, r.t, r.context, r.y, &control);
  ASSERT_EQ(out.shape(), r.unet_out.shape());
  const ErrorStats e = error_stats(out.to_floats(), r.unet_out.to_floats());
  EXPECT_LE(e.max_abs, 1e-4) << "rms " << e.rms;
  const Tensor plain = unet.forward(r.x, r.t, r.context, r.y);
  EXPECT_GT(error_stats(plain.to_floats(), r.unet_out.to_floats()).max_abs, 0.05);
}

TEST(ControlNet, EveryTensorOfTheFilesIsUsed) {
  // Weights::used() of a loaded net is not reachable through load_controlnet; load the
  // ldm files directly.
  for (const char* name : {"sd15_mini_ldm.safetensors", "sdxl_ldm.safetensors"}) {
    auto file = std::make_shared<const SafetensorsFile>(SafetensorsFile::open(data(name)));
    const Weights w = Weights::from_file(file, "", kCpu, DType::F32);
    UNetConfig c = ControlNet::detect_config(w);
    c.groups = 2;
    c.num_heads = 2;
    c.head_dim = 0;
    if (c.linear_proj) {
      c.num_heads = 0;
      c.head_dim = 4;
    }
    ControlNet::load(w, c);
    EXPECT_EQ(w.used().size(), file->tensors().size()) << name;
  }
}

TEST(ControlNet, ForwardChecksItsInputs) {
  const Reference r = load_reference("sdxl_ref.safetensors");
  const auto net = load_controlnet(data("sdxl_diffusers.pth"), kCpu, DType::F32);
  const Tensor small_hint = Tensor::zeros({2, 12, 20, 3}, DType::F32);  // 4×, not 8×
  test::expect_error([&] { net->forward(r.x, small_hint, r.t, r.context, r.y); }, "[controlnet]");
  test::expect_error([&] { net->forward(r.x, r.hint, r.t, r.context); }, "[controlnet]");  // no y
  const Tensor one_channel = Tensor::zeros({2, 24, 40, 1}, DType::F32);
  test::expect_error([&] { net->forward(r.x, one_channel, r.t, r.context, r.y); }, "[controlnet]");
}

// ---- key layout of the released files --------------------------------------------------

// "name<TAB>[d0, d1, ...]" lines of a reference list under the UNet's prefix, for the
// parts a ControlNet copies (time_embed, label_emb, input_blocks, middle_block).
std::map<std::string, Shape> reference_encoder(const std::string& file) {
  const std::string prefix = "model.diffusion_model.";
  std::ifstream in(std::string(DARKROOM_TEST_DATA) + "/reference/" + file);
  EXPECT_TRUE(in) << file;
  std::map<std::string, Shape> shapes;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#' || line.rfind(prefix, 0) != 0) continue;
    const size_t tab = line.find('\t');
    const std::string name = line.substr(prefix.size(), tab - prefix.size());
    bool copied = false;
    for (const char* part : {"time_embed.", "label_emb.", "input_blocks.", "middle_block."})
      copied |= name.rfind(part, 0) == 0;
    if (!copied) continue;
    std::string dims = line.substr(tab + 1);
    for (char& ch : dims)
      if (ch == '[' || ch == ']' || ch == ',') ch = ' ';
    std::istringstream ds(dims);
    std::vector<int64_t> v;
    for (int64_t d; ds >> d;) v.push_back(d);
    shapes.emplace(name, Shape(v));
  }
  return shapes;
}

// The released ControlNets' own tensors (control_v11p_sd15_canny, controlnet-canny-sdxl
// -1.0 as ComfyUI loads them): the hint block 3 → 16, 16, 32, 32, 96, 96, 256 → mc, and
// one 1×1 zero conv per skip (its width: the input block's output) and the middle.
void add_controlnet_parts(std::map<std::string, Shape>& shapes, int64_t mc) {
  const std::vector<std::pair<int64_t, int64_t>> hint = {{16, 3},  {16, 16}, {32, 16},  {32, 32},
                                                         {96, 32}, {96, 96}, {256, 96}, {mc, 256}};
  for (size_t k = 0; k < hint.size(); ++k) {
    const std::string n = "input_hint_block." + std::to_string(2 * k);
    shapes[n + ".weight"] = Shape{hint[k].first, hint[k].second, 3, 3};
    shapes[n + ".bias"] = Shape{hint[k].first};
  }
  int64_t ch = 0;
  for (int i = 0;; ++i) {
    const std::string b = "input_blocks." + std::to_string(i) + ".0.";
    if (shapes.count(b + "bias")) {
      ch = shapes[b + "bias"][0];  // conv_in
    } else if (shapes.count(b + "op.bias")) {
      ch = shapes[b + "op.bias"][0];
    } else if (shapes.count(b + "out_layers.3.bias")) {
      ch = shapes[b + "out_layers.3.bias"][0];
    } else {
      break;
    }
    const std::string z = "zero_convs." + std::to_string(i) + ".0.";
    shapes[z + "weight"] = Shape{ch, ch, 1, 1};
    shapes[z + "bias"] = Shape{ch};
  }
  shapes["middle_block_out.0.weight"] = Shape{ch, ch, 1, 1};
  shapes["middle_block_out.0.bias"] = Shape{ch};
}

void expect_consumes_exactly(const std::map<std::string, Shape>& shapes, const UNetConfig& want) {
  // Under ControlNet 1.0's prefix, as the loader passes such a file.
  std::map<std::string, Shape> prefixed;
  for (const auto& [n, s] : shapes) prefixed["control_model." + n] = s;
  const Weights pw = Weights::from_shapes(prefixed, "control_model.");
  const UNetConfig c = ControlNet::detect_config(pw);
  EXPECT_EQ(c.model_channels, want.model_channels);
  EXPECT_EQ(c.channel_mult, want.channel_mult);
  EXPECT_EQ(c.transformer_depth, want.transformer_depth);
  EXPECT_EQ(c.transformer_depth_middle, want.transformer_depth_middle);
  EXPECT_EQ(c.context_dim, want.context_dim);
  EXPECT_EQ(c.linear_proj, want.linear_proj);
  EXPECT_EQ(c.adm_in_channels, want.adm_in_channels);
  EXPECT_EQ(c.num_heads, want.num_heads);
  EXPECT_EQ(c.head_dim, want.head_dim);
  const ControlNet net = ControlNet::load(pw, c);
  EXPECT_EQ(net.hint_channels(), 3);
  EXPECT_EQ(net.hint_factor(), 8);
  const std::set<std::string> used = pw.used();
  for (const auto& [n, s] : prefixed) EXPECT_TRUE(used.count(n)) << "not read: " << n;
  EXPECT_EQ(used.size(), prefixed.size());
}

TEST(ControlNet, Sd15KeyLayoutIsTheRealOne) {
  std::map<std::string, Shape> shapes = reference_encoder("sd15-ldm-tensors.tsv");
  ASSERT_GT(shapes.size(), 250u);
  add_controlnet_parts(shapes, 320);
  EXPECT_EQ(shapes.count("zero_convs.11.0.weight"), 1u);  // 12 skips in SD 1.5
  EXPECT_EQ(shapes.count("zero_convs.12.0.weight"), 0u);
  expect_consumes_exactly(shapes, UNetConfig::sd15());
}

TEST(ControlNet, SdxlKeyLayoutIsTheRealOne) {
  std::map<std::string, Shape> shapes = reference_encoder("sdxl-sgm-tensors.tsv");
  ASSERT_GT(shapes.size(), 700u);
  add_controlnet_parts(shapes, 320);
  EXPECT_EQ(shapes.count("zero_convs.8.0.weight"), 1u);  // 9 skips in SDXL
  EXPECT_EQ(shapes.count("zero_convs.9.0.weight"), 0u);
  expect_consumes_exactly(shapes, UNetConfig::sdxl());
}

// ---- files that are not a supported ControlNet ------------------------------------------

class ControlNetFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("darkroom_controlnet_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // A copy of `source`'s first `keep` bytes (or all of them).
  std::string truncated(const std::string& source, double fraction) const {
    std::ifstream in(source, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    bytes.resize(static_cast<size_t>(bytes.size() * fraction));
    const std::string out = path("cut_" + fs::path(source).filename().string());
    std::ofstream(out, std::ios::binary) << bytes;
    return out;
  }

  // The tensors of a fixture, renamed/reshaped by `edit`, written without metadata
  // unless given.
  template <class Edit>
  std::string rewritten(const std::string& source, const std::string& name, Edit edit,
                        const std::map<std::string, std::string>& metadata = {}) const {
    const SafetensorsFile f = SafetensorsFile::open(source);
    std::vector<std::pair<std::string, Tensor>> tensors;
    for (const TensorInfo& t : f.tensors()) {
      Tensor copy = Tensor::from_floats(f.tensor(t.name).to_floats(), t.shape);
      std::string n = t.name;
      if (edit(n, copy)) tensors.emplace_back(n, copy);
    }
    const std::string out = path(name);
    write_safetensors(out, tensors, metadata);
    return out;
  }

  fs::path dir_;
};

void expect_refused(const std::string& path, const std::string& says) {
  try {
    load_controlnet(path, kCpu, DType::F32);
    ADD_FAILURE() << path << " was loaded";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.rfind("[controlnet] " + path + ": ", 0), 0u) << what;
    EXPECT_NE(what.find(says), std::string::npos) << what;
  }
}

// ComfyUI's global_average_pooling for *_shuffle files (diffusers' global_pool_conditions:
// torch.mean over h and w): each residual is the spatial mean of diffusers' residual.
TEST_F(ControlNetFiles, ShuffleFilesAverageEachResidual) {
  const Reference r = load_reference("sd15_mini_ref.safetensors");
  for (const char* name : {"control_v11e_sd15_shuffle.pth", "tiny_shuffle_fp16.pth"}) {
    fs::copy_file(data("sd15_mini_ldm.pth"), path(name));
    const auto net = load_controlnet(path(name), kCpu, DType::F32);
    EXPECT_TRUE(net->global_average_pooling()) << name;
    const ControlResiduals got = run(*net, r);
    ASSERT_EQ(got.skips.size(), r.down.size());
    for (size_t i = 0; i <= r.down.size(); ++i) {
      const bool mid = i == r.down.size();
      const Tensor& want = mid ? r.mid : r.down[i];  // [B, h, w, C]
      const Tensor& g = mid ? got.middle : got.skips[i];
      ASSERT_EQ(g.shape(), want.shape());
      const int64_t b = want.dim(0), hw = want.dim(1) * want.dim(2), c = want.dim(3);
      const std::vector<float> v = want.to_floats(), o = g.to_floats();
      double worst = 0;
      for (int64_t n = 0; n < b; ++n) {
        for (int64_t ch = 0; ch < c; ++ch) {
          double mean = 0;
          for (int64_t p = 0; p < hw; ++p) mean += v[(n * hw + p) * c + ch];
          mean /= static_cast<double>(hw);
          for (int64_t p = 0; p < hw; ++p)
            worst = std::max(worst, std::fabs(o[(n * hw + p) * c + ch] - mean));
        }
      }
      EXPECT_LE(worst, 1e-4 * std::max(1.0, peak(want))) << name << ", residual " << i;
    }
  }
  EXPECT_FALSE(
      load_controlnet(data("sd15_mini_ldm.pth"), kCpu, DType::F32)->global_average_pooling());
}

TEST_F(ControlNetFiles, GarbageAndTruncatedFilesAreRefused) {
  {
    std::ofstream(path("garbage.safetensors"), std::ios::binary)
        << std::string("\x13\x37not a model at all, just bytes\xff\xfe", 36);
  }
  expect_refused(path("garbage.safetensors"), "not a readable");
  expect_refused(path("missing.safetensors"), "not a readable");
  for (double f : {0.001, 0.5, 0.999}) {
    expect_refused(truncated(data("sd15_mini_ldm.safetensors"), f), "not a readable");
    expect_refused(truncated(data("sd15_mini_ldm.pth"), f), "not a readable");
  }
}

TEST_F(ControlNetFiles, OtherModelsAreRefusedNamingWhatWasFound) {
  // A UNet checkpoint: no ControlNet parts.
  const std::string unet = std::string(DARKROOM_TEST_DATA) + "/models/sd15_tiny/unet.safetensors";
  expect_refused(unet, "top-level names: model (");
  const std::string mini = data("sd15_mini_ldm.safetensors");
  auto with_extra = [&](const std::string& file, const std::string& extra) {
    return rewritten(mini, file, [&](std::string& n, Tensor&) {
      if (n == "middle_block_out.0.bias") n = extra;  // keep the count, add the marker
      return true;
    });
  };
  expect_refused(with_extra("lora.safetensors", "lora_controlnet"), "Control-LoRA");
  expect_refused(with_extra("sd3.safetensors", "controlnet_blocks.0.weight"), "SD3 / Flux");
  expect_refused(with_extra("union.safetensors", "task_embedding"), "Union ControlNet");
  expect_refused(with_extra("diff.safetensors", "difference"), "difference ControlNet");
  expect_refused(with_extra("xs.safetensors", "down_blocks.0.base_to_ctrl.0.weight"),
                 "ControlNet-XS");
  auto adapter = rewritten(mini, "t2i.safetensors", [](std::string& n, Tensor&) {
    n = "body." + n;
    return true;
  });
  expect_refused(adapter, "T2I-Adapter");
}

TEST_F(ControlNetFiles, UnknownFamiliesAndBrokenTensorsAreRefused) {
  const std::string mini = data("sd15_mini_ldm.safetensors");
  auto keep = [](std::string&, Tensor&) { return true; };
  // No darkroom.family: an 8-wide context is neither SD 1.x nor SDXL.
  expect_refused(rewritten(mini, "nometa.safetensors", keep), "for no supported model");
  const std::map<std::string, std::string> meta = {{"darkroom.family", "sdxl"},
                                                   {"darkroom.unet.groups", "2"}};
  expect_refused(rewritten(mini, "wrongfamily.safetensors", keep, meta), "declared sdxl");
  const std::map<std::string, std::string> sd15 = {
      {"darkroom.family", "sd15"}, {"darkroom.unet.groups", "2"}, {"darkroom.unet.num_heads", "2"}};
  // A tensor missing, a tensor of the wrong shape, a hint block that does not reach 8×.
  expect_refused(
      rewritten(
          mini, "missing.safetensors",
          [](std::string& n, Tensor&) { return n != "input_blocks.4.1.norm.bias"; }, sd15),
      "input_blocks.4.1.norm.bias");
  expect_refused(rewritten(
                     mini, "shape.safetensors",
                     [](std::string& n, Tensor& t) {
                       if (n == "input_hint_block.0.weight")
                         t = Tensor::zeros({4, 3, 3}, DType::F32);
                       return true;
                     },
                     sd15),
                 "input_hint_block.0.weight");
  expect_refused(rewritten(
                     mini, "hint.safetensors",
                     [](std::string& n, Tensor&) {
                       return n.rfind("input_hint_block.12", 0) != 0 &&
                              n.rfind("input_hint_block.14", 0) != 0;
                     },
                     sd15),
                 "input_hint_block");
  expect_refused(rewritten(mini, "badmeta.safetensors", keep,
                           {{"darkroom.family", "sd15"}, {"darkroom.unet.groups", "many"}}),
                 "darkroom.unet.groups");
}

}  // namespace
}  // namespace darkroom
