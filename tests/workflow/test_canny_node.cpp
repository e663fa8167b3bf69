// The Canny node (src/workflow/nodes/canny_node.cpp) through the node registry, against
// tests/data/canny/canny.safetensors (tools/fixtures/canny.py):
//  - exactly OpenCV's edges from PyPI's opencv-python running the node's documented steps
//    (8-bit grey, GaussianBlur 5×5 σ=1, Canny(255·low, 255·high, L2)) for three threshold
//    pairs on a batch of two images;
//  - as a sanity bound, close to two other detectors: kornia.filters.canny (what
//    ComfyUI's node calls) and skimage.feature.canny. The generator measured, for the
//    fraction of our edge pixels with one of theirs within one pixel and the reverse,
//    kornia 0.995 .. 1.000 and skimage 0.994 .. 1.000; the bounds are 0.97.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "pipeline/model_cache.h"
#include "workflow/node.h"

namespace darkroom::workflow {
namespace {

constexpr double kNearBound = 0.97;

const SafetensorsFile& fixture() {
  static const std::unique_ptr<SafetensorsFile> f = std::make_unique<SafetensorsFile>(
      SafetensorsFile::open(std::string(DARKROOM_TEST_DATA) + "/canny/canny.safetensors"));
  return *f;
}

std::vector<uint8_t> bytes_of(const std::string& name) {
  const Tensor t = fixture().tensor(name);
  EXPECT_EQ(t.dtype(), DType::U8) << name;
  const uint8_t* p = t.data<uint8_t>();
  return {p, p + t.numel()};
}

// The fixture's u8 image as ComfyUI's IMAGE, v / 255 in f32 [N, H, W, 3].
pipeline::Image fixture_image() {
  const Tensor t = fixture().tensor("image");
  const std::vector<uint8_t> b = bytes_of("image");
  std::vector<float> v(b.begin(), b.end());
  for (float& e : v) e /= 255.0f;
  return Tensor::from_floats(v, t.shape());
}

NodeResult run_canny(const pipeline::Image& image, double low, double high) {
  const NodeDecl* decl = NodeRegistry::instance().find("Canny");
  EXPECT_NE(decl, nullptr);
  FolderPaths paths;
  pipeline::ModelCache models{0};
  const json prompt = nullptr, extra = nullptr;
  NodeContext ctx{.paths = paths, .models = models, .prompt = prompt, .extra_pnginfo = extra};
  NodeInputs in;
  in.set("image", Value::of("IMAGE", image));
  in.set("low_threshold", Value::literal("FLOAT", low));
  in.set("high_threshold", Value::literal("FLOAT", high));
  return decl->run(in, ctx);
}

// The fraction of a's set pixels with a set pixel of b in their 3×3 neighbourhood, per
// image of a batch [N, H, W] (all images together).
double near_fraction(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b, int64_t n,
                     int64_t h, int64_t w) {
  int64_t total = 0, near = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x) {
        if (!a[(i * h + y) * w + x]) continue;
        ++total;
        bool found = false;
        for (int64_t dy = -1; dy <= 1 && !found; ++dy)
          for (int64_t dx = -1; dx <= 1 && !found; ++dx) {
            const int64_t yy = y + dy, xx = x + dx;
            found = yy >= 0 && yy < h && xx >= 0 && xx < w && b[(i * h + yy) * w + xx];
          }
        near += found;
      }
  return total ? static_cast<double>(near) / static_cast<double>(total) : 1.0;
}

struct CannyCase {
  std::string name;
  double low, high;  // tools/fixtures/canny.py CASES
};

void PrintTo(const CannyCase& c, std::ostream* os) {
  *os << c.name;
}

class CannyNode : public ::testing::TestWithParam<CannyCase> {};

TEST_P(CannyNode, MatchesOpenCvAndStaysNearKorniaAndSkimage) {
  const CannyCase& c = GetParam();
  const pipeline::Image image = fixture_image();
  const int64_t n = image.dim(0), h = image.dim(1), w = image.dim(2);
  const NodeResult r = run_canny(image, c.low, c.high);
  ASSERT_EQ(r.outputs.size(), 1u);
  const Tensor& out = r.outputs[0].as<pipeline::Image>();
  ASSERT_EQ(out.shape(), Shape({n, h, w, 3}));
  ASSERT_EQ(out.dtype(), DType::F32);

  // Ours as a 0/1 map; every channel the same and nothing but 0 or 1.
  std::vector<uint8_t> ours(static_cast<size_t>(n * h * w));
  const float* o = out.data<float>();
  for (size_t p = 0; p < ours.size(); ++p) {
    ASSERT_TRUE(o[p * 3] == 0.0f || o[p * 3] == 1.0f) << p;
    ASSERT_EQ(o[p * 3], o[p * 3 + 1]) << p;
    ASSERT_EQ(o[p * 3], o[p * 3 + 2]) << p;
    ours[p] = o[p * 3] != 0.0f;
  }
  const std::vector<uint8_t> opencv = bytes_of(c.name + ".opencv");
  int64_t mismatched = 0, edges = 0;
  for (size_t p = 0; p < ours.size(); ++p) {
    mismatched += ours[p] != opencv[p];
    edges += ours[p];
  }
  EXPECT_EQ(mismatched, 0) << "pixels that differ from opencv-python's Canny";
  EXPECT_GT(edges, 100) << "the fixture image has edges";

  for (const std::string other : {"kornia", "skimage"}) {
    const std::vector<uint8_t> theirs = bytes_of(c.name + "." + other);
    EXPECT_GE(near_fraction(ours, theirs, n, h, w), kNearBound) << "ours near " << other;
    EXPECT_GE(near_fraction(theirs, ours, n, h, w), kNearBound) << other << " near ours";
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, CannyNode,
                         ::testing::Values(CannyCase{"default", 0.4, 0.8},
                                           CannyCase{"low", 0.1, 0.3},
                                           CannyCase{"narrow", 0.25, 0.3}),
                         [](const auto& info) { return info.param.name; });

TEST(CannyNodeDecl, HasComfyUisInputs) {
  const NodeDecl* decl = NodeRegistry::instance().find("Canny");
  ASSERT_NE(decl, nullptr);
  EXPECT_EQ(decl->category, "image/preprocessors");
  EXPECT_EQ(decl->python_module, "comfy_extras.nodes_canny");
  ASSERT_EQ(decl->required.size(), 3u);
  EXPECT_EQ(decl->required[0].name, "image");
  EXPECT_EQ(decl->required[0].type, "IMAGE");
  for (int i : {1, 2}) {
    const InputSpec& s = decl->required[static_cast<size_t>(i)];
    EXPECT_EQ(s.type, "FLOAT");
    EXPECT_EQ(s.options.at("min"), 0.01);
    EXPECT_EQ(s.options.at("max"), 0.99);
    EXPECT_EQ(s.options.at("step"), 0.01);
  }
  EXPECT_EQ(decl->required[1].name, "low_threshold");
  EXPECT_EQ(decl->required[1].options.at("default"), 0.4);
  EXPECT_EQ(decl->required[2].name, "high_threshold");
  EXPECT_EQ(decl->required[2].options.at("default"), 0.8);
  ASSERT_EQ(decl->outputs.size(), 1u);
  EXPECT_EQ(decl->outputs[0].type, "IMAGE");
}

TEST(CannyNodeDecl, RejectsLowAboveHigh) {
  // kornia's canny checks low_threshold <= high_threshold too.
  EXPECT_THROW(run_canny(fixture_image(), 0.6, 0.5), Error);
}

}  // namespace
}  // namespace darkroom::workflow
