// RRDBNet and the upscale-model pipeline (suites Rrdbnet, UpscaleModel, UpscaleTiled)
// against spandrel's RRDBNet on the tiny random-weight files of tools/fixtures/rrdbnet.py:
// Real-ESRGAN-style (BasicSR names, .safetensors; x2plus with pixel unshuffle in a .pth
// under params_ema beside a decoy "params"), 4x-UltraSharp-style (old ESRGAN names,
// .pth) and an x1 unshuffle-by-4 model (old names, f16); the descriptor call
// (padding, clamp), params_ema / "module." unwrapping, and ComfyUI's tiled_scale restated
// in PyTorch.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <string>

#include "backend/ops.h"
#include "io/safetensors.h"
#include "io/safetensors_writer.h"
#include "models/rrdbnet.h"
#include "pipeline/checkpoint.h"
#include "pipeline/upscale_model.h"
#include "pipeline/upscale_tiled.h"
#include "test_util.h"

namespace darkroom::test {
namespace {

// f32 against spandrel's f32: accumulation-order noise, measured ≤ 4.8e-7 on outputs of
// order 1 (the tiled results ≤ 6e-7); 1e-5 leaves 20×.
constexpr double kF32Tol = 1e-5;

std::string rrdb_file(const std::string& name) {
  return std::string(DARKROOM_TEST_DATA) + "/models/rrdbnet/" + name;
}

Tensor fixture(const std::string& name) {
  static const auto file =
      std::make_shared<const SafetensorsFile>(SafetensorsFile::open(rrdb_file("ref.safetensors")));
  return Weights::from_file(file, "", kCpu, DType::F32).get(name);
}

using darkroom::test::max_abs_diff;

struct Loaded {
  Weights weights;
  RrdbnetConfig config;
  Rrdbnet net;
};

Loaded load(const std::string& file, const std::string& prefix, DType dtype) {
  const pipeline::CheckpointFile f = pipeline::CheckpointFile::open(rrdb_file(file));
  Weights w = f.weights(prefix, kCpu, dtype);
  const RrdbnetConfig c = RrdbnetConfig::detect(w);
  return {w, c, Rrdbnet::load(w, c)};
}

struct Case {
  const char* name;    // fixture name in ref.safetensors
  const char* file;    // model file
  const char* prefix;  // where the network lives in it
  RrdbnetLayout layout;
  int blocks, unshuffle, scale, in_channels;
};

const Case kCases[] = {
    {"x4", "x4.safetensors", "", RrdbnetLayout::BasicSr, 1, 1, 4, 3},
    {"x2plus", "x2plus.pth", "params_ema.", RrdbnetLayout::BasicSr, 1, 2, 2, 12},
    {"ultrasharp", "ultrasharp.pth", "", RrdbnetLayout::Esrgan, 2, 1, 4, 3},
    {"x1", "x1.safetensors", "", RrdbnetLayout::Esrgan, 1, 4, 1, 48},
};

TEST(Rrdbnet, DetectsTheConfigFromShapesAndUsesEveryTensor) {
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.name);
    const Loaded m = load(c.file, c.prefix, DType::F32);
    EXPECT_EQ(m.config.layout, c.layout);
    EXPECT_EQ(m.config.features, 8);
    EXPECT_EQ(m.config.growth, 4);
    EXPECT_EQ(m.config.blocks, c.blocks);
    EXPECT_EQ(m.config.upsamplings, 2);
    EXPECT_EQ(m.config.unshuffle, c.unshuffle);
    EXPECT_EQ(m.config.scale(), c.scale);
    EXPECT_EQ(m.config.in_channels, c.in_channels);
    EXPECT_EQ(m.config.image_channels(), 3);
    EXPECT_EQ(m.config.out_channels, 3);
    // Exactly the network's tensors: every one under the prefix, nothing else.
    const std::vector<std::string> all = m.weights.available();
    EXPECT_EQ(m.weights.used(), std::set<std::string>(all.begin(), all.end()));
  }
}

TEST(Rrdbnet, ForwardMatchesSpandrel) {
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.name);
    const Loaded m = load(c.file, c.prefix, DType::F32);
    const Tensor out = m.net.forward(fixture(std::string(c.name) + ".input"));
    EXPECT_EQ(out.dtype(), DType::F32);
    EXPECT_LE(max_abs_diff(out, fixture(std::string(c.name) + ".forward")), kF32Tol);
  }
}

// bf16 weights and activations (every conv output, activation and residual rounded to
// bf16, 2^-9 relative each, through ~20 layers): bounded by twice torch's own bf16 error
// on the same network and input, as the suite's other bf16 model tests. Measured: ours
// 0.0064 / 0.0050 / 0.0054 / 0.0029 against torch's 0.0064 / 0.0049 / 0.0056 / 0.0027.
TEST(Rrdbnet, Bf16WithinTwiceTorchsBf16Error) {
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.name);
    const Loaded m = load(c.file, c.prefix, DType::BF16);
    const Tensor out = m.net.forward(fixture(std::string(c.name) + ".input"));
    EXPECT_EQ(out.dtype(), DType::F32);
    const Tensor f32 = fixture(std::string(c.name) + ".forward");
    const double torch_err = max_abs_diff(fixture(std::string(c.name) + ".forward_bf16"), f32);
    const double ours = max_abs_diff(out, f32);
    EXPECT_LE(ours, 2 * torch_err) << "torch's bf16 error " << torch_err;
  }
}

// The BSRGAN / RealSR spelling of the same tensors (spandrel's state_map: RRDB_trunk,
// trunk_conv, upconv, HRconv) gives the same network.
TEST(Rrdbnet, BsrganNamesLoadTheSameNetwork) {
  const Loaded basic = load("x4.safetensors", "", DType::F32);
  std::map<std::string, Tensor> renamed;
  const std::vector<std::pair<std::regex, std::string>> rules = {
      {std::regex(R"(^body\.(\d+)\.rdb(\d)\.)"), "RRDB_trunk.$1.RDB$2."},
      {std::regex(R"(^conv_body\.)"), "trunk_conv."},
      {std::regex(R"(^conv_up(\d)\.)"), "upconv$1."},
      {std::regex(R"(^conv_hr\.)"), "HRconv."}};
  for (const std::string& name : basic.weights.available()) {
    std::string to = name;
    for (const auto& [re, with] : rules) to = std::regex_replace(to, re, with);
    renamed.emplace(to, basic.weights.get(name));
  }
  const Weights w = Weights::from_tensors(std::move(renamed), "", kCpu, DType::F32);
  const RrdbnetConfig c = RrdbnetConfig::detect(w);
  EXPECT_EQ(c.layout, RrdbnetLayout::Bsrgan);
  const Tensor out = Rrdbnet::load(w, c).forward(fixture("x4.input"));
  EXPECT_LE(max_abs_diff(out, fixture("x4.forward")), kF32Tol);
  EXPECT_EQ(w.used().size(), w.available().size());
}

TEST(Rrdbnet, RefusesOtherNetworks) {
  const Loaded m = load("x4.safetensors", "", DType::F32);
  std::map<std::string, Tensor> plus;
  plus.emplace("model.0.weight", fixture("x4.input"));
  plus.emplace("model.1.sub.0.RDB1.conv1x1.weight", fixture("x4.input"));
  expect_error([&] { RrdbnetConfig::detect(Weights::from_tensors(plus, "", kCpu, DType::F32)); },
               "[rrdbnet] ESRGAN+");
  expect_error(
      [&] {
        pipeline::load_upscale_model(
            std::string(DARKROOM_TEST_DATA) + "/models/sd15_tiny/clip_vae.safetensors", DType::F32);
      },
      "[upscale]");
  expect_error([&] { m.net.forward(Tensor::zeros({1, 4, 4, 4}, DType::F32)); }, "[rrdbnet]");
}

TEST(Rrdbnet, PixelUnshuffleAsTorch) {
  // x[0, y, x, c] = 100·y + 10·x + c; torch's out[n, c·r² + i·r + j, y, x] = in[n, c, y·r + i,
  // x·r + j], restated in NHWC.
  const int r = 2;
  std::vector<float> v;
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 6; ++x)
      for (int c = 0; c < 3; ++c) v.push_back(static_cast<float>(100 * y + 10 * x + c));
  const Tensor out = pixel_unshuffle(Tensor::from_floats(v, {1, 4, 6, 3}), r);
  ASSERT_EQ(out.shape(), Shape({1, 2, 3, 12}));
  const std::vector<float> o = out.to_floats();
  for (int y = 0; y < 2; ++y)
    for (int x = 0; x < 3; ++x)
      for (int c = 0; c < 3; ++c)
        for (int i = 0; i < r; ++i)
          for (int j = 0; j < r; ++j)
            EXPECT_EQ(o[static_cast<size_t>((y * 3 + x) * 12 + c * r * r + i * r + j)],
                      static_cast<float>(100 * (y * r + i) + 10 * (x * r + j) + c));
}

TEST(Rrdbnet, PadsByReflectionThenReplication) {
  // One column 0, 1, 2 padded by 4 rows: reflect gives 1, 0 (size - 1 = 2 rows), then the
  // last row repeats (torch's F.pad "reflect" then "replicate", spandrel's pad_tensor).
  const Tensor x = Tensor::from_floats(std::vector<float>{0, 1, 2}, {1, 3, 1, 1});
  EXPECT_EQ(pad_reflect_replicate(x, 4, 0).to_floats(), (std::vector<float>{0, 1, 2, 1, 0, 0, 0}));
  EXPECT_EQ(pad_reflect_replicate(x, 0, 2).to_floats(),
            (std::vector<float>{0, 0, 0, 1, 1, 1, 2, 2, 2}));
}

// ---- the descriptor call and the loader ------------------------------------------------

TEST(UpscaleModel, CallMatchesSpandrelsDescriptor) {
  for (const char* name : {"x4", "x2plus"}) {
    SCOPED_TRACE(name);
    const pipeline::UpscaleModel m = pipeline::load_upscale_model(
        rrdb_file(std::string(name) == "x4" ? "x4.safetensors" : "x2plus.pth"), DType::F32);
    const Tensor out = pipeline::upscale_call(m, fixture(std::string(name) + ".input"));
    EXPECT_LE(max_abs_diff(out, fixture(std::string(name) + ".call")), kF32Tol);
  }
}

TEST(UpscaleModel, TakesParamsEmaOverParams) {
  const pipeline::UpscaleModel m =
      pipeline::load_upscale_model(rrdb_file("x2plus.pth"), DType::F32);
  EXPECT_EQ(m.scale(), 2);
  EXPECT_EQ(m.multiple_of(), 4);
  EXPECT_LE(max_abs_diff(m.net->forward(fixture("x2plus.input")), fixture("x2plus.forward")),
            kF32Tol);
  // The decoy under "params." is a different network.
  const Loaded decoy = load("x2plus.pth", "params.", DType::F32);
  EXPECT_GT(max_abs_diff(decoy.net.forward(fixture("x2plus.input")), fixture("x2plus.forward")),
            1e-2);
}

// DataParallel's "module." on every name is dropped, as spandrel's canonicalize does.
TEST(UpscaleModel, DropsACommonModulePrefix) {
  const Loaded plain = load("x4.safetensors", "", DType::F32);
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const std::string& name : plain.weights.available())
    tensors.emplace_back("module." + name, plain.weights.get(name));
  const std::string path =
      (std::filesystem::temp_directory_path() / "darkroom_rrdbnet_module.safetensors").string();
  write_safetensors(path, tensors, {});
  const pipeline::UpscaleModel m = pipeline::load_upscale_model(path, DType::F32);
  std::filesystem::remove(path);
  EXPECT_LE(max_abs_diff(m.net->forward(fixture("x4.input")), fixture("x4.forward")), kF32Tol);
}

// ---- tiling ----------------------------------------------------------------------------

TEST(UpscaleTiled, MatchesComfyTiledScale) {
  for (const char* name : {"x4", "x2plus"}) {
    SCOPED_TRACE(name);
    const pipeline::UpscaleModel m = pipeline::load_upscale_model(
        rrdb_file(std::string(name) == "x4" ? "x4.safetensors" : "x2plus.pth"), DType::F32);
    const std::string key = std::string("tiled.") + name;
    const std::vector<float> tiling = fixture(key + ".tiling").to_floats();
    const Tensor input = fixture(key + ".input");
    pipeline::UpscaleOptions o;
    o.tile = static_cast<int64_t>(tiling[0]);
    o.overlap = static_cast<int64_t>(tiling[1]);
    o.min_tile = 1;
    int64_t calls = 0, total = 0;
    o.on_tile = [&](int64_t done, int64_t of) {
      calls = done;
      total = of;
    };
    const Tensor out = pipeline::upscale_image(m, input, o);
    EXPECT_LE(max_abs_diff(out, fixture(key + ".output")), kF32Tol);
    // Several tiles per image, each reported once.
    const int64_t per_image =
        pipeline::tiled_scale_steps(input.dim(1), input.dim(2), o.tile, o.overlap);
    EXPECT_GT(per_image, 2);
    EXPECT_EQ(total, input.dim(0) * per_image);
    EXPECT_EQ(calls, total);
  }
}

// With a function that upscales by nearest neighbour, which is the same on a tile as on
// the whole image, the feathered blend of overlapping tiles must give back the whole
// image's result (within float rounding of the weights): every output pixel is covered
// and the weights are normalised.
TEST(UpscaleTiled, BlendIsANormalisedPartition) {
  const Tensor image = random_tensor({2, 37, 23, 3}, DType::F32, 5, 0.0f, 1.0f);
  const auto nearest = [](const Tensor& x) { return ops::upsample_nearest2x(x); };
  pipeline::TiledScaleOptions o;
  o.tile = 10;
  o.overlap = 3;
  const Tensor tiled = pipeline::tiled_scale(image, 2, 3, nearest, o);
  EXPECT_LE(max_abs_diff(tiled, ops::upsample_nearest2x(image)), 1e-6);
}

TEST(UpscaleTiled, HalvesTheTileToFitTheBudget) {
  const pipeline::UpscaleModel m =
      pipeline::load_upscale_model(rrdb_file("x4.safetensors"), DType::F32);
  pipeline::UpscaleOptions o;  // 512, floor 128
  EXPECT_EQ(pipeline::choose_tile(m, DType::F32, o), 512);
  o.tile_budget_bytes = pipeline::estimate_tile_bytes(m, 256, DType::F32);
  EXPECT_EQ(pipeline::choose_tile(m, DType::F32, o), 256);
  o.tile_budget_bytes = 1;
  EXPECT_EQ(pipeline::choose_tile(m, DType::F32, o), 128);
  // 3 feature maps of 8 channels at 4× the tile: (4·512)² · 8 · 3 · 4 bytes.
  EXPECT_EQ(pipeline::estimate_tile_bytes(m, 512, DType::F32), uint64_t{2048} * 2048 * 8 * 3 * 4);
}

}  // namespace
}  // namespace darkroom::test
