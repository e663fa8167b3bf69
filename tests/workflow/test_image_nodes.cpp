// The image-side nodes (suites SaveImagePath, ImageNodes, LatentPreview, VaeDecodeTiled):
//  - SaveImage/PreviewImage naming, counter and %vars% against ComfyUI's documented
//    folder_paths.get_save_image_path behaviour, and the PNG they write (read back);
//  - LoadImage's IMAGE and MASK (1 - alpha) against Pillow's decode of the fixtures;
//  - ImageScale and LatentUpscale against torch.nn.functional.interpolate / Pillow
//    LANCZOS results, and LatentUpscale's bislerp against comfy.utils.bislerp run by
//    PyTorch (tools/make_image_fixtures.py);
//  - latent previews against ComfyUI's Latent2RGBPreviewer math (torch);
//  - VAEDecodeTiled against ComfyUI's tiling restated in PyTorch around diffusers'
//    AutoencoderKL, and against the untiled decode.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "io/image_codec.h"
#include "models/clip_vae_fixtures.h"
#include "models/vae.h"
#include "pipeline/model_cache.h"
#include "workflow/image_resize.h"
#include "workflow/latent_preview.h"
#include "workflow/node.h"
#include "workflow/save_image_path.h"
#include "workflow/vae_decode_tiled.h"

namespace darkroom::workflow {
namespace {

namespace fs = std::filesystem;

const std::string kImages = std::string(DARKROOM_TEST_DATA) + "/images/";

// VAEDecodeTiled vs the whole-image decode on the tiny VAE, in [0, 1] pixel units:
// measured mean |diff| 0.0120 and max 0.110 (a seam pixel); the bounds leave about 2x.
constexpr double kTiledMeanBound = 0.025;
constexpr double kTiledMaxBound = 0.2;

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  EXPECT_TRUE(f.good()) << "missing " << path;
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

std::vector<float> read_f32(const std::string& name) {
  const std::vector<uint8_t> b = read_bytes(kImages + name);
  std::vector<float> v(b.size() / 4);
  std::memcpy(v.data(), b.data(), v.size() * 4);
  return v;
}

void touch(const fs::path& p) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << "x";
}

// A fresh directory under the system temp folder, removed at the end of the test.
struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& name) {
    path = fs::temp_directory_path() / ("darkroom_img_" + name + "_" + std::to_string(::getpid()));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

template <class Fn>
void expect_error_with(Fn&& fn, const std::string& part) {
  try {
    fn();
    ADD_FAILURE() << "no error; expected one containing '" << part << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

void expect_near_all(const std::vector<float>& got, const std::vector<float>& want, double tol,
                     const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double worst = 0;
  size_t at = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double d = std::fabs(double(got[i]) - want[i]);
    if (!(d <= worst)) worst = d, at = i;
  }
  EXPECT_LE(worst, tol) << what << ": worst at " << at << ": got " << got[at] << ", want "
                        << want[at];
}

// ---- SaveImagePath ----------------------------------------------------------------------

TEST(SaveImagePath, CounterContinuesAfterExistingFiles) {
  TempDir out("counter");
  SaveImagePath p = get_save_image_path("ComfyUI", out.path.string());
  EXPECT_EQ(p.counter, 1);
  EXPECT_EQ(p.filename, "ComfyUI");
  EXPECT_EQ(p.subfolder, "");
  for (const char* f :
       {"ComfyUI_00001_.png", "ComfyUI_00007_.png", "ComfyUI_00003_.png", "ComfyUIx_00099_.png",
        "Other_00050_.png", "ComfyUI_abc_.png", "ComfyUI_00012.txt", "comfyui_00200_.png"})
    touch(out.path / f);
  // ComfyUI: max N over "<prefix>_<N>..." (N up to the next '_', non-numbers count 0), +1;
  // "ComfyUI_00012.txt" has N = int("00012.txt") → not a number → 0; case matters on POSIX.
  p = get_save_image_path("ComfyUI", out.path.string());
  EXPECT_EQ(p.counter, 8);
}

TEST(SaveImagePath, SubfoldersAndNormalisation) {
  TempDir out("sub");
  SaveImagePath p = get_save_image_path("people/portraits/cat", out.path.string());
  EXPECT_EQ(p.subfolder, "people/portraits");
  EXPECT_EQ(p.filename, "cat");
  EXPECT_TRUE(fs::is_directory(out.path / "people/portraits"));
  touch(out.path / "people/portraits/cat_00041_.png");
  EXPECT_EQ(get_save_image_path("people/portraits/cat", out.path.string()).counter, 42);
  // normpath folds "x/.." and "."; the result may stay inside.
  p = get_save_image_path("a/../b/./dog", out.path.string());
  EXPECT_EQ(p.subfolder, "b");
  EXPECT_EQ(p.filename, "dog");
}

TEST(SaveImagePath, RefusesPrefixesThatLeaveTheOutputFolder) {
  TempDir out("escape");
  for (const char* bad : {"../evil", "a/../../evil", "/etc/evil", "../output2/x"})
    expect_error_with([&] { get_save_image_path(bad, out.path.string()); },
                      "Saving image outside the output folder is not allowed");
}

TEST(SaveImagePath, ComputesDateAndSizeFields) {
  std::tm t{};
  t.tm_year = 2026 - 1900;
  t.tm_mon = 0;  // January
  t.tm_mday = 5;
  t.tm_hour = 7;
  t.tm_min = 3;
  t.tm_sec = 9;
  // compute_vars: year as is, the rest zero-padded to two digits.
  EXPECT_EQ(compute_save_vars("%year%-%month%-%day%/%hour%%minute%%second%_%width%x%height%_%x%",
                              640, 480, t),
            "2026-01-05/070309_640x480_%x%");
  TempDir out("vars");
  const SaveImagePath p = get_save_image_path("%year%/img_%width%", out.path.string(), 64, 32, &t);
  EXPECT_EQ(p.subfolder, "2026");
  EXPECT_EQ(p.filename, "img_64");
  EXPECT_EQ(p.filename_prefix, "2026/img_64");
}

TEST(SaveImagePath, PythonJsonDumps) {
  // Python: json.dumps({"a": [1, 2.5, "é", 1e-05, 1e16, 3.0], "b": None, "c": True,
  // "d": {"x": 'q"\\'}}) (keys already sorted here: nlohmann sorts them).
  const nlohmann::json v = nlohmann::json::parse(
      R"({"a": [1, 2.5, "é", 1e-05, 1e16, 3.0], "b": null, "c": true, "d": {"x": "q\"\\"}})");
  EXPECT_EQ(python_json_dumps(v),
            R"({"a": [1, 2.5, "\u00e9", 1e-05, 1e+16, 3.0], "b": null, "c": true, )"
            R"("d": {"x": "q\"\\"}})");
}

// ---- nodes through the registry ---------------------------------------------------------

struct NodeRun {
  FolderPaths paths;
  pipeline::ModelCache models{0};
  json prompt = nullptr;
  json extra = nullptr;

  explicit NodeRun(const fs::path& base) { paths = FolderPaths::under(base.string()); }

  NodeResult run(const std::string& class_name, const NodeInputs& in) {
    const NodeDecl* decl = NodeRegistry::instance().find(class_name);
    EXPECT_NE(decl, nullptr) << class_name;
    NodeContext ctx{.paths = paths, .models = models, .prompt = prompt, .extra_pnginfo = extra};
    return decl->run(in, ctx);
  }
};

Tensor image_from(const std::vector<float>& v, int64_t n, int64_t h, int64_t w, int64_t c) {
  return Tensor::from_floats(v, {n, h, w, c});
}

TEST(ImageNodes, SaveImageWritesNumberedPngsWithMetadata) {
  TempDir base("save");
  NodeRun r(base.path);
  r.prompt = {{"9", {{"class_type", "SaveImage"}, {"inputs", {{"filename_prefix", "x"}}}}}};
  r.extra = {{"workflow", {{"nodes", json::array()}, {"version", 0.4}}}};
  // Two 3x2 images: values 0, 0.5 and out-of-range ones that ComfyUI clips.
  std::vector<float> px(2 * 2 * 3 * 3);
  for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<float>(i % 7) * 0.25f - 0.25f;
  NodeInputs in;
  in.set("images", Value::of("IMAGE", image_from(px, 2, 2, 3, 3)));
  in.set("filename_prefix", Value::literal("STRING", "shots/%width%x%height%"));
  touch(fs::path(r.paths.output_directory) / "shots/3x2_00004_.png");
  const NodeResult res = r.run("SaveImage", in);
  EXPECT_EQ(res.ui, json::parse(R"({"images": [
      {"filename": "3x2_00005_.png", "subfolder": "shots", "type": "output"},
      {"filename": "3x2_00006_.png", "subfolder": "shots", "type": "output"}]})"));
  const fs::path f = fs::path(r.paths.output_directory) / "shots/3x2_00006_.png";
  const DecodedImage img = decode_image(read_bytes(f.string()), f.string());
  ASSERT_EQ(img.width, 3);
  ASSERT_EQ(img.height, 2);
  for (size_t i = 0; i < img.pixels.size(); ++i) {
    // np.clip(255 * v, 0, 255).astype(uint8)
    const float v = px[18 + i] * 255.0f;
    EXPECT_EQ(img.pixels[i], static_cast<uint8_t>(std::clamp(v, 0.0f, 255.0f))) << i;
  }
  // The tEXt chunks hold json.dumps of the prompt and of extra_pnginfo["workflow"].
  const std::vector<uint8_t> bytes = read_bytes(f.string());
  const std::string s(bytes.begin(), bytes.end());
  EXPECT_NE(s.find(std::string("prompt") + '\0' +
                   R"({"9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "x"}}})"),
            std::string::npos);
  EXPECT_NE(s.find(std::string("workflow") + '\0' + R"({"nodes": [], "version": 0.4})"),
            std::string::npos);
}

TEST(ImageNodes, PreviewImageGoesToTempWithRandomSuffix) {
  TempDir base("preview");
  NodeRun r(base.path);
  NodeInputs in;
  in.set("images", Value::of("IMAGE", image_from(std::vector<float>(12, 0.5f), 1, 2, 2, 3)));
  const NodeResult res = r.run("PreviewImage", in);
  const json& img = res.ui["images"][0];
  EXPECT_EQ(img["type"], "temp");
  EXPECT_EQ(img["subfolder"], "");
  const std::string name = img["filename"];
  // ComfyUI_temp_<5 of "abcdefghijklmnopqrstupvxyz">_00001_.png
  ASSERT_EQ(name.size(), std::string("ComfyUI_temp_abcde_00001_.png").size()) << name;
  EXPECT_EQ(name.substr(0, 13), "ComfyUI_temp_");
  for (char ch : name.substr(13, 5))
    EXPECT_NE(std::string("abcdefghijklmnopqrstuvxyz").find(ch), std::string::npos);
  EXPECT_EQ(name.substr(18), "_00001_.png");
  EXPECT_TRUE(fs::exists(fs::path(r.paths.temp_directory) / name));
}

TEST(ImageNodes, LoadImageMaskIsOneMinusAlpha) {
  TempDir base("load");
  NodeRun r(base.path);
  for (const char* f : {"rgba.png", "rgb.png", "palette_trns.png", "bomb.png"})
    fs::copy_file(kImages + f, fs::path(r.paths.input_directory) / f);
  const NodeDecl* decl = NodeRegistry::instance().find("LoadImage");
  ASSERT_NE(decl, nullptr);
  // The combo lists the input folder's images, sorted.
  EXPECT_EQ(decl->required[0].combo(r.paths),
            (std::vector<std::string>{"bomb.png", "palette_trns.png", "rgb.png", "rgba.png"}));

  for (const char* f : {"rgba.png", "palette_trns.png"}) {
    SCOPED_TRACE(f);
    NodeInputs in;
    in.set("image", Value::literal("COMBO", f));
    const NodeResult res = r.run("LoadImage", in);
    const Tensor& image = res.outputs[0].as<pipeline::Image>();
    const Tensor& mask = res.outputs[1].as<pipeline::Mask>();
    // Pillow's RGBA decode of the file (make_image_fixtures.py).
    const std::vector<uint8_t> want = read_bytes(kImages + f + ".rgba");
    const int64_t n = static_cast<int64_t>(want.size() / 4);
    ASSERT_EQ(image.shape(), Shape({1, image.dim(1), image.dim(2), 3}));
    ASSERT_EQ(image.dim(1) * image.dim(2), n);
    ASSERT_EQ(mask.shape(), Shape({1, image.dim(1), image.dim(2)}));
    const float* ip = image.data<float>();
    const float* mp = mask.data<float>();
    for (int64_t p = 0; p < n; ++p) {
      for (int k = 0; k < 3; ++k) ASSERT_FLOAT_EQ(ip[p * 3 + k], want[p * 4 + k] / 255.0f);
      ASSERT_FLOAT_EQ(mp[p], 1.0f - want[p * 4 + 3] / 255.0f);  // ComfyUI: 1 - alpha
    }
  }
  {  // No alpha: the mask is zeros [1, 64, 64], whatever the image's size.
    NodeInputs in;
    in.set("image", Value::literal("COMBO", "rgb.png"));
    const NodeResult res = r.run("LoadImage", in);
    EXPECT_EQ(res.outputs[0].as<pipeline::Image>().shape(), Shape({1, 7, 13, 3}));
    const Tensor& mask = res.outputs[1].as<pipeline::Mask>();
    EXPECT_EQ(mask.shape(), Shape({1, 64, 64}));
    for (float v : mask.to_floats()) ASSERT_EQ(v, 0.0f);
  }
  NodeInputs bomb;
  bomb.set("image", Value::literal("COMBO", "bomb.png"));
  expect_error_with([&] { r.run("LoadImage", bomb); }, "exceeds the limit of 8192 pixels a side");
  // VALIDATE_INPUTS: ComfyUI's message; names that leave the input folder are not found.
  for (const char* bad : {"nope.png", "../output/x.png", "/etc/passwd"}) {
    NodeInputs in;
    in.set("image", Value::literal("COMBO", bad));
    EXPECT_EQ(decl->validate_inputs(in, r.paths), std::string("Invalid image file: ") + bad);
  }
  NodeInputs ok;
  ok.set("image", Value::literal("COMBO", "rgb.png"));
  EXPECT_EQ(decl->validate_inputs(ok, r.paths), "");
  // IS_CHANGED follows the file's content.
  const json before = decl->is_changed(ok, r.paths);
  fs::copy_file(kImages + std::string("rgba.png"), fs::path(r.paths.input_directory) / "rgb.png",
                fs::copy_options::overwrite_existing);
  EXPECT_NE(decl->is_changed(ok, r.paths), before);
}

TEST(ImageNodes, ImageScaleMatchesTorchAndPillow) {
  TempDir base("scale");
  NodeRun r(base.path);
  const Tensor src = image_from(read_f32("scale_src.f32"), 1, 6, 10, 3);
  struct Case {
    int h, w;
    const char* crop;
  };
  const Case cases[] = {{9, 15, "disabled"},
                        {4, 7, "disabled"},
                        {3, 23, "disabled"},
                        {5, 5, "center"},
                        {8, 4, "center"}};
  for (const char* method : {"nearest-exact", "bilinear", "area", "bicubic", "lanczos"})
    for (const Case& c : cases) {
      const std::string name = std::string("scale_") + method + "_" + std::to_string(c.h) + "x" +
                               std::to_string(c.w) +
                               (std::string(c.crop) == "center" ? "_center" : "") + ".f32";
      SCOPED_TRACE(name);
      NodeInputs in;
      in.set("image", Value::of("IMAGE", src));
      in.set("upscale_method", Value::literal("COMBO", method));
      in.set("width", Value::literal("INT", c.w));
      in.set("height", Value::literal("INT", c.h));
      in.set("crop", Value::literal("COMBO", c.crop));
      const Tensor out = r.run("ImageScale", in).outputs[0].as<pipeline::Image>();
      ASSERT_EQ(out.shape(), Shape({1, c.h, c.w, 3}));
      // f32 arithmetic in a different order than torch's kernels: ~1e-7; lanczos is
      // Pillow's integer arithmetic, exact.
      expect_near_all(out.to_floats(), read_f32(name), 2e-6, name);
    }
  // width 0: from the height and the aspect ratio, Python-rounded (10·4/6 = 6.67 → 7).
  NodeInputs in;
  in.set("image", Value::of("IMAGE", src));
  in.set("upscale_method", Value::literal("COMBO", "bilinear"));
  in.set("width", Value::literal("INT", 0));
  in.set("height", Value::literal("INT", 4));
  in.set("crop", Value::literal("COMBO", "disabled"));
  EXPECT_EQ(r.run("ImageScale", in).outputs[0].as<pipeline::Image>().shape(), Shape({1, 4, 7, 3}));
}

TEST(ImageNodes, LatentUpscaleMatchesTorch) {
  TempDir base("latent");
  NodeRun r(base.path);
  pipeline::Latent lat;
  lat.samples = Tensor::from_floats(read_f32("latent_src.f32"), {1, 5, 7, 4});
  lat.batch_index = std::vector<int64_t>{3};
  for (const char* method : {"nearest-exact", "bilinear", "area", "bicubic"}) {
    SCOPED_TRACE(method);
    NodeInputs in;
    in.set("samples", Value::of("LATENT", lat));
    in.set("upscale_method", Value::literal("COMBO", method));
    in.set("width", Value::literal("INT", 96));  // pixels: 96 / 8 = 12 latent columns
    in.set("height", Value::literal("INT", 72));
    in.set("crop", Value::literal("COMBO", "disabled"));
    const pipeline::Latent out = r.run("LatentUpscale", in).outputs[0].as<pipeline::Latent>();
    ASSERT_EQ(out.samples.shape(), Shape({1, 9, 12, 4}));
    EXPECT_EQ(out.batch_index, lat.batch_index);
    expect_near_all(out.samples.to_floats(), read_f32(std::string("latent_up_") + method + ".f32"),
                    2e-6, method);
  }
}

// bislerp against comfy.utils.bislerp run by PyTorch (tools/make_image_fixtures.py). The
// source has a zero vector, equal neighbours and opposite neighbours planted, so the
// slerp's special cases are in the comparison; batch 2 checks the batches stay apart.
TEST(ImageNodes, LatentUpscaleBislerpMatchesComfyUI) {
  TempDir base("bislerp");
  NodeRun r(base.path);
  pipeline::Latent lat;
  lat.samples = Tensor::from_floats(read_f32("bislerp_src.f32"), {2, 10, 13, 4});
  struct Case {
    int64_t width_px, height_px;  // LatentUpscale's pixel sizes (latent = / 8)
    const char* crop;
    const char* file;
  };
  for (const Case& c :
       {Case{96, 72, "disabled", "bislerp_9x12.f32"}, Case{64, 112, "disabled", "bislerp_14x8.f32"},
        Case{64, 64, "center", "bislerp_8x8_center.f32"}}) {
    SCOPED_TRACE(c.file);
    NodeInputs in;
    in.set("samples", Value::of("LATENT", lat));
    in.set("upscale_method", Value::literal("COMBO", "bislerp"));
    in.set("width", Value::literal("INT", c.width_px));
    in.set("height", Value::literal("INT", c.height_px));
    in.set("crop", Value::literal("COMBO", c.crop));
    const pipeline::Latent out = r.run("LatentUpscale", in).outputs[0].as<pipeline::Latent>();
    ASSERT_EQ(out.samples.shape(), Shape({2, c.height_px / 8, c.width_px / 8, 4}));
    // acos/sin in libm vs torch's vectorised versions: measured worst 1.3e-6.
    expect_near_all(out.samples.to_floats(), read_f32(c.file), 5e-6, c.file);
  }
}

// ---- latent previews --------------------------------------------------------------------

TEST(LatentPreview, Sd15FactorsMatchComfyUI) {
  const Tensor x0 = Tensor::from_floats(read_f32("preview_src.f32"), {1, 6, 9, 4});
  const std::vector<uint8_t> got = latent_to_rgb8(x0, "sd15");
  const std::vector<uint8_t> want = read_bytes(kImages + "preview.rgb");
  ASSERT_EQ(got.size(), want.size());
  // torch's linear sums the four products in its own order; a truncation to uint8 right
  // at an integer can then differ by one.
  for (size_t i = 0; i < got.size(); ++i) EXPECT_LE(std::abs(int(got[i]) - int(want[i])), 1) << i;

  // The registered previewer: a JPEG fitted into max_size (ImageOps.contain: 9x6 → 512x341).
  ASSERT_TRUE(static_cast<bool>(latent_previewer()));
  PreviewOptions opts;
  const std::optional<EncodedPreview> p = latent_previewer()(x0, "sd15", opts);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->format, "JPEG");
  const DecodedImage img = decode_image(p->bytes, "preview.jpg");
  EXPECT_EQ(img.width, 512);
  EXPECT_EQ(img.height, 341);
  opts.method = "none";
  EXPECT_FALSE(preview_from_latent(x0, "sd15", opts).has_value());
  EXPECT_FALSE(preview_from_latent(x0, "no-such-format", PreviewOptions{}).has_value());
  EXPECT_EQ(contain_size(6, 9, 512), (std::pair<int64_t, int64_t>{341, 512}));
  EXPECT_EQ(contain_size(64, 64, 512), (std::pair<int64_t, int64_t>{512, 512}));
}

TEST(LatentPreview, PillowBilinearMatchesTorchWhenEnlarging) {
  // Enlarging, Pillow's BILINEAR is a triangle filter of support 1 at half-pixel centres,
  // which is what torch's bilinear (align_corners=False) computes; Pillow rounds to 8 bits
  // after each of its two passes (up to 0.5 each). An independent check of pil_resize
  // against interpolate on 0..255 data.
  std::vector<uint8_t> src(5 * 4 * 3);
  for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<uint8_t>((i * 53) % 256);
  const std::vector<uint8_t> got = pil_resize(src, 5, 4, 3, 13, 11, PilFilter::Bilinear);
  const std::vector<float> ref =
      interpolate(std::vector<float>(src.begin(), src.end()), 5, 4, 3, 13, 11, "bilinear");
  for (size_t i = 0; i < got.size(); ++i) EXPECT_LE(std::fabs(got[i] - ref[i]), 1.0f + 1e-3f) << i;
}

// ---- VAEDecodeTiled ---------------------------------------------------------------------

TEST(VaeDecodeTiled, MatchesComfyTilingAndStaysCloseToUntiled) {
  const Weights w = Weights::from_file(test::open_sd15_tiny("clip_vae.safetensors"),
                                       "first_stage_model.", kCpu, DType::F32);
  auto vae = std::make_shared<const Vae>(Vae::load(w, VaeConfig::detect(w, 8), false));
  pipeline::Latent lat;
  lat.samples = Tensor::from_floats(read_f32("tiled_z.f32"), {1, 36, 20, 4});

  TempDir base("tiled");
  NodeRun r(base.path);
  NodeInputs in;
  in.set("samples", Value::of("LATENT", lat));
  in.set("vae", Value::of("VAE", pipeline::VaeHandle{vae}));
  in.set("tile_size", Value::literal("INT", 64));
  in.set("overlap", Value::literal("INT", 64));  // > 64 / 4: ComfyUI lowers it to 16
  in.set("temporal_size", Value::literal("INT", 64));
  in.set("temporal_overlap", Value::literal("INT", 8));
  const Tensor tiled = r.run("VAEDecodeTiled", in).outputs[0].as<pipeline::Image>();
  ASSERT_EQ(tiled.shape(), Shape({1, 72, 40, 3}));
  // Same algorithm in PyTorch (f32): accumulation-order noise only.
  expect_near_all(tiled.to_floats(), read_f32("tiled_t64.f32"), 1e-4, "tiled vs PyTorch tiled");

  // Against the whole-image decode. Tiles see less context (the decoder's 3x3 convs and
  // its attention and GroupNorm statistics are per tile), so the seams are not exact;
  // feathering and the three shifted tilings keep the mean error small (figures at
  // kTiledMeanBound). A random-weight VAE is a hard case: trained decoders are smoother.
  const std::vector<float> full = read_f32("tiled_full.f32"), t = tiled.to_floats();
  double sum = 0, worst = 0;
  for (size_t i = 0; i < t.size(); ++i) {
    const double d = std::fabs(double(t[i]) - full[i]);
    sum += d;
    worst = std::max(worst, d);
  }
  const double mean = sum / static_cast<double>(t.size());
  std::printf("VAEDecodeTiled vs untiled: mean |diff| %.5f, max %.5f\n", mean, worst);
  EXPECT_LT(mean, kTiledMeanBound);
  EXPECT_LT(worst, kTiledMaxBound);
  // And our untiled decode is the reference's untiled decode.
  Tensor whole = vae->decode(lat.samples);
  std::vector<float> wf = whole.to_floats();
  for (float& v : wf) v = std::clamp((v + 1.0f) / 2.0f, 0.0f, 1.0f);
  expect_near_all(wf, full, 1e-4, "untiled vs diffusers");

  // A latent that fits in one tile of every tiling is decoded whole: equal to VAEDecode.
  TiledDecodeOptions big{.tile_x = 80, .tile_y = 80, .overlap = 8};
  expect_near_all(vae_decode_tiled(*vae, lat.samples, big).to_floats(), wf, 1e-6, "one tile");
}

}  // namespace
}  // namespace darkroom::workflow
