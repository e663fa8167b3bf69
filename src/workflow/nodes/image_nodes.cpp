// The image-side built-in nodes, with ComfyUI's class names, inputs, defaults and ranges
// (nodes.py): SaveImage, PreviewImage, LoadImage, ImageScale, LatentUpscale,
// VAEDecodeTiled.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "io/image_codec.h"
#include "io/png_writer.h"
#include "workflow/image_resize.h"
#include "workflow/node.h"
#include "workflow/save_image_path.h"
#include "workflow/vae_decode_tiled.h"

namespace darkroom::workflow {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kMaxResolution = 16384;  // nodes.py MAX_RESOLUTION

// ---- SaveImage / PreviewImage -----------------------------------------------------------

// One image of the batch [H, W, C] as 8-bit RGB: clip(255·v, 0, 255) truncated, as
// ComfyUI's np.clip(255. * image, 0, 255).astype(np.uint8); alpha is dropped.
std::vector<uint8_t> to_rgb8(const float* px, int64_t h, int64_t w, int64_t c) {
  std::vector<uint8_t> rgb(static_cast<size_t>(h * w * 3));
  for (int64_t p = 0; p < h * w; ++p)
    for (int64_t k = 0; k < 3; ++k) {
      const float v = px[p * c + std::min<int64_t>(k, c - 1)] * 255.0f;
      rgb[static_cast<size_t>(p * 3 + k)] =
          std::isnan(v) ? 0 : static_cast<uint8_t>(std::clamp(v, 0.0f, 255.0f));
    }
  return rgb;
}

json save_images(const pipeline::Image& images, const std::string& filename_prefix,
                 const std::string& output_dir, const std::string& type, const NodeContext& ctx) {
  DR_CHECK(images.ndim() == 4 && images.dtype() == DType::F32 && images.dim(0) > 0 &&
               (images.dim(3) == 1 || images.dim(3) == 3 || images.dim(3) == 4),
           "SaveImage", "expected IMAGE [N, H, W, 3], got ", images.shape());
  const int64_t n = images.dim(0), h = images.dim(1), w = images.dim(2), c = images.dim(3);
  const SaveImagePath where = get_save_image_path(filename_prefix, output_dir, w, h);
  std::vector<PngText> text;
  if (!ctx.prompt.is_null()) text.push_back({"prompt", python_json_dumps(ctx.prompt)});
  if (ctx.extra_pnginfo.is_object())
    for (auto it = ctx.extra_pnginfo.begin(); it != ctx.extra_pnginfo.end(); ++it)
      text.push_back({it.key(), python_json_dumps(it.value())});
  json results = json::array();
  int64_t counter = where.counter;
  for (int64_t b = 0; b < n; ++b) {
    std::string name = where.filename;
    for (size_t at = name.find("%batch_num%"); at != std::string::npos;
         at = name.find("%batch_num%", at))
      name.replace(at, 11, std::to_string(b));
    char num[32];
    std::snprintf(num, sizeof(num), "_%05lld_.png", static_cast<long long>(counter));
    const std::string file = name + num;
    const std::vector<uint8_t> rgb = to_rgb8(images.data<float>() + b * h * w * c, h, w, c);
    write_png_rgb8((fs::path(where.full_output_folder) / file).string(), rgb, static_cast<int>(w),
                   static_cast<int>(h), text);
    results.push_back({{"filename", file}, {"subfolder", where.subfolder}, {"type", type}});
    ++counter;
  }
  return {{"images", results}};
}

const NodeRegistrar kSaveImage(
    {.class_name = "SaveImage",
     .display_name = "Save Image",
     .category = "image",
     .description = "Saves the input images to your ComfyUI output directory.",
     .required = {link_input("images", "IMAGE", {{"tooltip", "The images to save."}}),
                  string_input("filename_prefix",
                               {{"default", "ComfyUI"},
                                {"tooltip",
                                 "The prefix for the file to save. This may include formatting "
                                 "information such as %date:yyyy-MM-dd% or %Empty Latent "
                                 "Image.width% to include values from nodes."}})},
     .hidden = {hidden_input("prompt", "PROMPT"), hidden_input("extra_pnginfo", "EXTRA_PNGINFO")},
     .outputs = {},
     .output_node = true,
     .run = [](const NodeInputs& in, NodeContext& ctx) -> NodeResult {
       return {{},
               save_images(in.image("images"), in.get_string("filename_prefix"),
                           ctx.paths.output_directory, "output", ctx)};
     }});

// PreviewImage: SaveImage into the temp folder with "_temp_" and five random letters
// appended to the prefix (ComfyUI's alphabet, which has no 'w' and two 'p's).
std::string preview_suffix() {
  static const char kLetters[] = "abcdefghijklmnopqrstupvxyz";
  thread_local std::mt19937 rng{std::random_device{}()};
  std::uniform_int_distribution<int> pick(0, static_cast<int>(sizeof(kLetters)) - 2);
  std::string s = "_temp_";
  for (int i = 0; i < 5; ++i) s += kLetters[pick(rng)];
  return s;
}

const NodeRegistrar kPreviewImage(
    {.class_name = "PreviewImage",
     .display_name = "Preview Image",
     .category = "image",
     .description = "Saves the input images to your ComfyUI output directory.",
     .required = {link_input("images", "IMAGE")},
     .hidden = {hidden_input("prompt", "PROMPT"), hidden_input("extra_pnginfo", "EXTRA_PNGINFO")},
     .outputs = {},
     .output_node = true,
     .run = [](const NodeInputs& in, NodeContext& ctx) -> NodeResult {
       return {{},
               save_images(in.image("images"), "ComfyUI" + preview_suffix(),
                           ctx.paths.temp_directory, "temp", ctx)};
     }});

// ---- LoadImage --------------------------------------------------------------------------

// The formats the codec reads (ComfyUI lists every file whose MIME type is image/*).
bool is_image_name(const std::string& name) {
  std::string ext = fs::path(name).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".jpe" || ext == ".webp";
}

std::vector<std::string> input_images(const FolderPaths& paths) {
  std::vector<std::string> files;
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(paths.input_directory, ec))
    if (e.is_regular_file(ec) && is_image_name(e.path().filename().string()))
      files.push_back(e.path().filename().string());
  std::sort(files.begin(), files.end());
  return files;
}

// folder_paths.get_annotated_filepath: "name [output]" / "[input]" / "[temp]" pick the
// folder (ComfyUI cuts one more character, the space); then confined to that folder.
std::optional<std::string> annotated_path(const FolderPaths& paths, const std::string& name) {
  auto ends = [&](const std::string& s) {
    return name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0;
  };
  auto cut = [&](size_t n) { return name.substr(0, name.size() > n ? name.size() - n : 0); };
  if (ends("[output]")) return resolve_inside(paths.output_directory, cut(9));
  if (ends("[input]")) return resolve_inside(paths.input_directory, cut(8));
  if (ends("[temp]")) return resolve_inside(paths.temp_directory, cut(7));
  return resolve_inside(paths.input_directory, name);
}

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  DR_CHECK(f.good(), "LoadImage", "cannot read ", path);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

const NodeRegistrar kLoadImage(
    {.class_name = "LoadImage",
     .display_name = "Load Image",
     .category = "image",
     .required = {combo_input("image", input_images, {{"image_upload", true}})},
     .outputs = {{"IMAGE", "IMAGE"}, {"MASK", "MASK"}},
     .run = [](const NodeInputs& in, NodeContext& ctx) -> NodeResult {
       const std::string& name = in.get_string("image");
       const std::optional<std::string> path = annotated_path(ctx.paths, name);
       DR_CHECK(path.has_value(), "LoadImage", "Invalid image file: ", name);
       const DecodedImage img = decode_image(read_file(*path), name);
       const int64_t h = img.height, w = img.width, c = img.channels;
       // IMAGE [1, H, W, 3] = RGB / 255; MASK [1, H, W] = 1 - alpha / 255, or zeros
       // [1, 64, 64] without alpha (ComfyUI's LoadImage).
       Tensor image = Tensor::empty({1, h, w, 3}, DType::F32);
       float* ip = image.data<float>();
       for (int64_t p = 0; p < h * w; ++p)
         for (int64_t k = 0; k < 3; ++k)
           ip[p * 3 + k] = static_cast<float>(img.pixels[static_cast<size_t>(p * c + k)]) / 255.0f;
       Tensor mask;
       if (img.has_alpha) {
         mask = Tensor::empty({1, h, w}, DType::F32);
         float* mp = mask.data<float>();
         for (int64_t p = 0; p < h * w; ++p)
           mp[p] = 1.0f - static_cast<float>(img.pixels[static_cast<size_t>(p * c + 3)]) / 255.0f;
       } else {
         mask = Tensor::zeros({1, 64, 64}, DType::F32);
       }
       return {{Value::of("IMAGE", image), Value::of("MASK", mask)}};
     },
     .is_changed = [](const NodeInputs& in, const FolderPaths& paths) -> json {
       // ComfyUI hashes the file (sha256); only equality matters, so FNV-1a 64 serves.
       const std::optional<std::string> path = annotated_path(paths, in.get_string("image"));
       if (!path) return nullptr;
       uint64_t hash = 1469598103934665603ull;
       for (uint8_t b : read_file(*path)) hash = (hash ^ b) * 1099511628211ull;
       char hex[17];
       std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(hash));
       return hex;
     },
     .validate_inputs = [](const NodeInputs& in, const FolderPaths& paths) -> std::string {
       const std::string& name = in.get_string("image");
       const std::optional<std::string> path = annotated_path(paths, name);
       std::error_code ec;
       if (!path || !fs::exists(*path, ec)) return "Invalid image file: " + name;
       return "";
     },
     .custom_validated = {"image"}});

// ---- ImageScale / LatentUpscale ---------------------------------------------------------

const NodeRegistrar kImageScale(
    {.class_name = "ImageScale",
     .display_name = "Upscale Image",
     .category = "image/upscaling",
     .required = {link_input("image", "IMAGE"),
                  combo_input("upscale_method",
                              {"nearest-exact", "bilinear", "area", "bicubic", "lanczos"}),
                  int_input("width",
                            {{"default", 512}, {"min", 0}, {"max", kMaxResolution}, {"step", 1}}),
                  int_input("height",
                            {{"default", 512}, {"min", 0}, {"max", kMaxResolution}, {"step", 1}}),
                  combo_input("crop", {"disabled", "center"})},
     .outputs = {{"IMAGE", "IMAGE"}},
     .run = [](const NodeInputs& in, NodeContext&) -> NodeResult {
       const pipeline::Image& image = in.image("image");
       int64_t width = in.get_int("width"), height = in.get_int("height");
       if (width == 0 && height == 0) return {{Value::of("IMAGE", image)}};
       DR_CHECK(image.ndim() == 4, "ImageScale", "expected IMAGE [N, H, W, C], got ",
                image.shape());
       const int64_t h = image.dim(1), w = image.dim(2);
       if (width == 0)
         width = std::max<int64_t>(1, round_half_even(static_cast<double>(w) * height / h));
       else if (height == 0)
         height = std::max<int64_t>(1, round_half_even(static_cast<double>(h) * width / w));
       return {
           {Value::of("IMAGE", common_upscale(image, width, height, in.get_string("upscale_method"),
                                              in.get_string("crop")))}};
     }});

const NodeRegistrar kLatentUpscale(
    {.class_name = "LatentUpscale",
     .display_name = "Upscale Latent",
     .category = "latent",
     .required = {link_input("samples", "LATENT"),
                  combo_input("upscale_method",
                              {"nearest-exact", "bilinear", "area", "bicubic", "bislerp"}),
                  int_input("width",
                            {{"default", 512}, {"min", 0}, {"max", kMaxResolution}, {"step", 8}}),
                  int_input("height",
                            {{"default", 512}, {"min", 0}, {"max", kMaxResolution}, {"step", 8}}),
                  combo_input("crop", {"disabled", "center"})},
     .outputs = {{"LATENT", "LATENT"}},
     .run = [](const NodeInputs& in, NodeContext&) -> NodeResult {
       const pipeline::Latent& samples = in.latent("samples");
       int64_t width = in.get_int("width"), height = in.get_int("height");
       if (width == 0 && height == 0) return {{Value::of("LATENT", samples)}};
       const std::string& method = in.get_string("upscale_method");
       const int64_t h = samples.samples.dim(1), w = samples.samples.dim(2);
       // ComfyUI sizes in pixels, at least 64, then // 8 for the latent.
       if (width == 0) {
         height = std::max<int64_t>(64, height);
         width = std::max<int64_t>(64, round_half_even(static_cast<double>(w) * height / h));
       } else if (height == 0) {
         width = std::max<int64_t>(64, width);
         height = std::max<int64_t>(64, round_half_even(static_cast<double>(h) * width / w));
       } else {
         width = std::max<int64_t>(64, width);
         height = std::max<int64_t>(64, height);
       }
       pipeline::Latent out = samples;  // noise_mask and batch_index carry over, as dict.copy()
       out.samples =
           common_upscale(samples.samples, width / 8, height / 8, method, in.get_string("crop"));
       return {{Value::of("LATENT", std::move(out))}};
     }});

// ---- VAEDecodeTiled ---------------------------------------------------------------------

const NodeRegistrar kVaeDecodeTiled(
    {.class_name = "VAEDecodeTiled",
     .display_name = "VAE Decode (Tiled)",
     .category = "_for_testing",
     .required =
         {link_input("samples", "LATENT"), link_input("vae", "VAE"),
          int_input("tile_size", {{"default", 512}, {"min", 64}, {"max", 4096}, {"step", 32}}),
          int_input("overlap", {{"default", 64}, {"min", 0}, {"max", 4096}, {"step", 32}}),
          int_input("temporal_size",
                    {{"default", 64},
                     {"min", 8},
                     {"max", 4096},
                     {"step", 4},
                     {"tooltip",
                      "Only used for video VAEs: Amount of frames to decode at a time."}}),
          int_input("temporal_overlap",
                    {{"default", 8},
                     {"min", 4},
                     {"max", 4096},
                     {"step", 4},
                     {"tooltip", "Only used for video VAEs: Amount of frames to overlap."}})},
     .outputs = {{"IMAGE", "IMAGE"}},
     .run = [](const NodeInputs& in, NodeContext& ctx) -> NodeResult {
       const pipeline::VaeHandle& vae = in.vae("vae");
       const int64_t tile_size = in.get_int("tile_size");
       int64_t overlap = in.get_int("overlap");
       if (tile_size < overlap * 4) overlap = tile_size / 4;
       // temporal_size / temporal_overlap apply to video VAEs only; SD's are image VAEs.
       const int64_t compression = vae.scale();
       TiledDecodeOptions o;
       o.tile_x = tile_size / compression;
       o.tile_y = tile_size / compression;
       o.overlap = overlap / compression;
       o.on_tile = [&ctx](int64_t value, int64_t max) {
         ctx.check_interrupt();
         ctx.progress(static_cast<int>(value), static_cast<int>(max));
       };
       return {{Value::of("IMAGE", vae_decode_tiled(*vae.vae, in.latent("samples").samples, o))}};
     }});

}  // namespace
}  // namespace darkroom::workflow
