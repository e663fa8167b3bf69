// io/png_writer.h: files decoded back with libpng's own reader, pixels and tEXt chunks
// compared with what was written.
#include <gtest/gtest.h>
#include <png.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/png_writer.h"

namespace darkroom {
namespace {

struct Decoded {
  int width = 0, height = 0, bit_depth = 0, color_type = 0;
  std::vector<uint8_t> pixels;
  std::map<std::string, std::string> text;
};

// libpng's reader, independent of the writer's code path.
Decoded read_png(const std::string& path) {
  Decoded d;
  FILE* fp = std::fopen(path.c_str(), "rb");
  if (fp == nullptr) return d;
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, nullptr);
    std::fclose(fp);
    d.width = -1;
    return d;
  }
  png_init_io(png, fp);
  png_read_info(png, info);
  d.width = static_cast<int>(png_get_image_width(png, info));
  d.height = static_cast<int>(png_get_image_height(png, info));
  d.bit_depth = png_get_bit_depth(png, info);
  d.color_type = png_get_color_type(png, info);
  const size_t stride = png_get_rowbytes(png, info);
  d.pixels.resize(stride * static_cast<size_t>(d.height));
  for (int y = 0; y < d.height; ++y) png_read_row(png, d.pixels.data() + stride * y, nullptr);
  png_read_end(png, info);
  png_textp text = nullptr;
  const int n = png_get_text(png, info, &text, nullptr);
  for (int i = 0; i < n; ++i) {
    EXPECT_EQ(text[i].compression, PNG_TEXT_COMPRESSION_NONE) << "tEXt, not zTXt/iTXt";
    d.text[text[i].key] = std::string(text[i].text, text[i].text_length);
  }
  png_destroy_read_struct(&png, &info, nullptr);
  std::fclose(fp);
  return d;
}

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          ("darkroom_png_" + std::to_string(::getpid()) + "_" + name))
      .string();
}

TEST(PngWriter, RoundTripsPixelsAndTextChunks) {
  const int w = 37, h = 11;  // odd sizes: no row padding assumptions
  std::vector<uint8_t> rgb(static_cast<size_t>(w * h * 3));
  for (size_t i = 0; i < rgb.size(); ++i) rgb[i] = static_cast<uint8_t>((i * 7919 + 13) % 256);
  const std::string prompt = R"({"3": {"class_type": "KSampler", "inputs": {"seed": 5}}})";
  const std::string workflow = R"({"nodes": [], "links": [], "version": 0.4})";
  const std::string path = temp_path("roundtrip.png");
  write_png_rgb8(path, rgb, w, h, {{"prompt", prompt}, {"workflow", workflow}});
  const Decoded d = read_png(path);
  std::filesystem::remove(path);
  EXPECT_EQ(d.width, w);
  EXPECT_EQ(d.height, h);
  EXPECT_EQ(d.bit_depth, 8);
  EXPECT_EQ(d.color_type, PNG_COLOR_TYPE_RGB);
  EXPECT_EQ(d.pixels, rgb);
  ASSERT_EQ(d.text.size(), 2u);
  EXPECT_EQ(d.text.at("prompt"), prompt);
  EXPECT_EQ(d.text.at("workflow"), workflow);
}

TEST(PngWriter, LeavesNoTemporaryFileAndOverwrites) {
  const std::string path = temp_path("overwrite.png");
  std::vector<uint8_t> a(2 * 2 * 3, 10), b(2 * 2 * 3, 200);
  write_png_rgb8(path, a, 2, 2);
  write_png_rgb8(path, b, 2, 2);
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  const Decoded d = read_png(path);
  std::filesystem::remove(path);
  EXPECT_EQ(d.pixels, b);
  EXPECT_TRUE(d.text.empty());
}

TEST(PngWriter, RejectsBadInput) {
  std::vector<uint8_t> rgb(4 * 4 * 3);
  const std::string path = temp_path("bad.png");
  EXPECT_THROW(write_png_rgb8(path, rgb, 4, 5), Error);   // too few bytes
  EXPECT_THROW(write_png_rgb8(path, rgb, 0, 16), Error);  // empty
  EXPECT_THROW(write_png_rgb8(path, rgb, 4, 4, {{"", "x"}}), Error);
  EXPECT_THROW(write_png_rgb8(path, rgb, 4, 4, {{std::string(80, 'k'), "x"}}), Error);
  EXPECT_THROW(write_png_rgb8("/nonexistent-dir/x.png", rgb, 4, 4), Error);
  EXPECT_FALSE(std::filesystem::exists(path));
}

}  // namespace
}  // namespace darkroom
