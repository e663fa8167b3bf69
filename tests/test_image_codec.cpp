// Image codecs (suite ImageCodec): files written by Pillow decoded against the pixels
// Pillow decodes from them (tests/data/images, tools/make_image_fixtures.py), encoder
// round trips, and corrupt, truncated and oversized ("bomb") files refused with their
// messages.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/image_codec.h"
#include "io/png_writer.h"

namespace darkroom {
namespace {

const std::string kDir = std::string(DARKROOM_TEST_DATA) + "/images/";

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  EXPECT_TRUE(f.good()) << "missing fixture " << path;
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

// Runs fn, which must throw darkroom::Error containing every one of `parts`.
template <class Fn>
void expect_error_with(Fn&& fn, const std::vector<std::string>& parts) {
  try {
    fn();
    ADD_FAILURE() << "no error; expected one containing '" << parts.front() << "'";
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const std::string& p : parts)
      EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
  }
}

// A smooth test image [h, w, c] (JPEG-friendly: no hard edges).
std::vector<uint8_t> smooth_image(int w, int h, int c) {
  std::vector<uint8_t> px(static_cast<size_t>(w) * h * c);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int k = 0; k < c; ++k)
        px[(static_cast<size_t>(y) * w + x) * c + k] = static_cast<uint8_t>(
            k == 3 ? (x * 37 + y * 11) % 256
                   : 128 + 100 * std::sin(x / (5.0 + k)) * std::cos(y / (7.0 + k)));
  return px;
}

double psnr(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  double se = 0;
  for (size_t i = 0; i < a.size(); ++i) se += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
  const double mse = se / static_cast<double>(a.size());
  return mse == 0 ? INFINITY : 10 * std::log10(255.0 * 255.0 / mse);
}

TEST(ImageCodec, DecodesPillowFilesAsPillowDoes) {
  const nlohmann::json manifest = nlohmann::json::parse(read_bytes(kDir + "manifest.json"));
  ASSERT_GE(manifest.size(), 20u);
  for (const nlohmann::json& m : manifest) {
    const std::string file = m["file"];
    SCOPED_TRACE(file);
    const DecodedImage img = decode_image(read_bytes(kDir + file), file);
    ASSERT_EQ(img.width, m["width"].get<int>());
    ASSERT_EQ(img.height, m["height"].get<int>());
    ASSERT_EQ(img.channels, m["channels"].get<int>());
    EXPECT_EQ(img.has_alpha, m["has_alpha"].get<bool>());
    const std::vector<uint8_t> want = read_bytes(kDir + m["expected"].get<std::string>());
    ASSERT_EQ(img.pixels.size(), want.size());
    const int tol = m["tolerance"];
    int worst = 0;
    size_t worst_at = 0;
    for (size_t i = 0; i < want.size(); ++i) {
      const int d = std::abs(int(img.pixels[i]) - int(want[i]));
      if (d > worst) worst = d, worst_at = i;
    }
    EXPECT_LE(worst, tol) << "worst at byte " << worst_at << ": got " << int(img.pixels[worst_at])
                          << ", Pillow " << int(want[worst_at]);
  }
}

TEST(ImageCodec, SniffsFormats) {
  EXPECT_EQ(sniff_image_format(read_bytes(kDir + "rgb.png")), ImageFormat::Png);
  EXPECT_EQ(sniff_image_format(read_bytes(kDir + "photo.jpg")), ImageFormat::Jpeg);
  EXPECT_EQ(sniff_image_format(read_bytes(kDir + "lossy.webp")), ImageFormat::Webp);
  EXPECT_EQ(sniff_image_format(read_bytes(kDir + "bad_not_image.png")), std::nullopt);
  EXPECT_EQ(sniff_image_format({}), std::nullopt);
}

TEST(ImageCodec, RefusesCorruptAndTruncatedFiles) {
  auto decode = [](const std::string& f) { return decode_image(read_bytes(kDir + f), f); };
  expect_error_with([&] { decode("bad_truncated.png"); },
                    {"[image] bad_truncated.png: corrupt PNG", "truncated"});
  expect_error_with([&] { decode("bad_crc.png"); },
                    {"[image] bad_crc.png: corrupt PNG", "IDAT: CRC error"});
  expect_error_with([&] { decode("bad_truncated.jpg"); },
                    {"[image] bad_truncated.jpg: corrupt JPEG", "Premature end"});
  expect_error_with([&] { decode("bad_truncated.webp"); },
                    {"[image] bad_truncated.webp: corrupt WebP"});
  expect_error_with([&] { decode("bad_not_image.png"); },
                    {"[image] bad_not_image.png: not a PNG, JPEG or WebP file (28 bytes)"});
  expect_error_with([&] { decode_image({}, "empty"); }, {"[image] empty: not a PNG"});
  // Each format's first bytes alone (signature, nothing after).
  const std::vector<uint8_t> png_sig = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  expect_error_with([&] { decode_image(png_sig, "sig.png"); }, {"corrupt PNG"});
  const std::vector<uint8_t> jpg_sig = {0xff, 0xd8, 0xff};
  expect_error_with([&] { decode_image(jpg_sig, "sig.jpg"); }, {"corrupt JPEG"});
}

TEST(ImageCodec, RefusesBombsFromTheHeaderAlone) {
  // Each file claims a huge size and has (almost) no image data: the limit message, not a
  // "truncated" one, shows that the size was refused before decoding began.
  auto decode = [](const std::string& f) { return decode_image(read_bytes(kDir + f), f); };
  expect_error_with([&] { decode("bomb.png"); },
                    {"[image] bomb.png: 20000x20000 exceeds the limit of 8192 pixels a side"});
  expect_error_with([&] { decode("bomb.jpg"); },
                    {"[image] bomb.jpg: 60000x60000 exceeds the limit of 8192 pixels a side"});
  expect_error_with([&] { decode("bomb.webp"); },
                    {"[image] bomb.webp: 10000x10000 exceeds the limit of 8192 pixels a side"});
}

TEST(ImageCodec, LimitsAreConfigurable) {
  for (const char* f : {"rgb.png", "photo.jpg", "lossless.webp"}) {
    SCOPED_TRACE(f);
    const std::vector<uint8_t> bytes = read_bytes(kDir + f);
    const DecodedImage ok = decode_image(bytes, f);
    ImageLimits side{.max_side = std::max(ok.width, ok.height) - 1};
    expect_error_with([&] { decode_image(bytes, f, side); },
                      {"exceeds the limit of " + std::to_string(side.max_side) + " pixels a side"});
    ImageLimits area{.max_side = 8192, .max_pixels = int64_t{ok.width} * ok.height - 1};
    expect_error_with([&] { decode_image(bytes, f, area); },
                      {"(" + std::to_string(int64_t{ok.width} * ok.height) +
                       " pixels) exceeds the limit of " + std::to_string(area.max_pixels)});
    ImageLimits exact{.max_side = std::max(ok.width, ok.height),
                      .max_pixels = int64_t{ok.width} * ok.height};
    EXPECT_EQ(decode_image(bytes, f, exact).pixels, ok.pixels);
  }
}

TEST(ImageCodec, PngWriterRoundTrip) {
  const std::vector<uint8_t> px = smooth_image(17, 5, 3);
  const std::string path =
      (std::filesystem::temp_directory_path() / "darkroom_codec_roundtrip.png").string();
  write_png_rgb8(path, px, 17, 5, {{"prompt", "{}"}});
  const DecodedImage img = decode_image(read_bytes(path), path);
  std::filesystem::remove(path);
  EXPECT_EQ(img.width, 17);
  EXPECT_EQ(img.height, 5);
  EXPECT_EQ(img.channels, 3);
  EXPECT_EQ(img.pixels, px);
}

TEST(ImageCodec, JpegRoundTrip) {
  for (int c : {3, 4}) {
    SCOPED_TRACE(c);
    const std::vector<uint8_t> px = smooth_image(40, 24, c);
    const std::vector<uint8_t> jpg = encode_jpeg(px, 40, 24, c, 95);
    ASSERT_EQ(sniff_image_format(jpg), ImageFormat::Jpeg);
    const DecodedImage img = decode_image(jpg, "rt.jpg");
    ASSERT_EQ(img.width, 40);
    ASSERT_EQ(img.height, 24);
    ASSERT_EQ(img.channels, 3);  // JPEG drops alpha
    std::vector<uint8_t> rgb;
    for (size_t i = 0; i < px.size(); i += c) rgb.insert(rgb.end(), &px[i], &px[i] + 3);
    // Quality 95 with 4:2:0 on a smooth image: well above 35 dB (about 40 measured).
    EXPECT_GT(psnr(img.pixels, rgb), 35.0);
  }
  expect_error_with([] { encode_jpeg(std::vector<uint8_t>(12), 2, 2, 3, 0); },
                    {"[jpeg] quality must be 1..100"});
  expect_error_with([] { encode_jpeg(std::vector<uint8_t>(11), 2, 2, 3); },
                    {"[jpeg] 11 bytes for a 2x2x3 image"});
}

TEST(ImageCodec, WebpRoundTrip) {
  for (int c : {3, 4}) {
    SCOPED_TRACE(c);
    const std::vector<uint8_t> px = smooth_image(21, 13, c);
    const DecodedImage lossless = decode_image(encode_webp(px, 21, 13, c, 80, true), "rt.webp");
    EXPECT_EQ(lossless.channels, c);
    EXPECT_EQ(lossless.has_alpha, c == 4);
    ASSERT_EQ(lossless.pixels.size(), px.size());
    // Lossless keeps every visible pixel; libwebp may rewrite the colour under alpha 0.
    for (size_t i = 0; i < px.size(); i += c)
      for (int k = 0; k < c; ++k)
        if (c == 3 || px[i + 3] != 0 || k == 3) ASSERT_EQ(lossless.pixels[i + k], px[i + k]) << i;
    const DecodedImage lossy = decode_image(encode_webp(px, 21, 13, c, 90, false), "rt.webp");
    ASSERT_EQ(lossy.pixels.size(), px.size());
    EXPECT_GT(psnr(lossy.pixels, px), 30.0);
  }
  expect_error_with([] { encode_webp(std::vector<uint8_t>(12), 2, 2, 5); },
                    {"[webp] channels must be 3 or 4"});
}

TEST(ImageCodec, ExifOrientationParser) {
  // Little- and big-endian TIFF headers with one IFD entry: Orientation = 6.
  const std::vector<uint8_t> le = {'I',  'I',  42, 0, 8, 0, 0, 0, 1, 0,  // IFD0: 1 entry
                                   0x12, 0x01, 3,  0, 1, 0, 0, 0, 6, 0, 0, 0};
  const std::vector<uint8_t> be = {'M',  'M', 0, 42, 0, 0, 0, 8, 0, 1, 0x01,
                                   0x12, 0,   3, 0,  0, 0, 1, 0, 6, 0, 0};
  EXPECT_EQ(exif_orientation(le), 6);
  EXPECT_EQ(exif_orientation(be), 6);
  // Cut short, a wrong type, an out-of-range value, or garbage: orientation 1.
  EXPECT_EQ(exif_orientation({le.data(), 15}), 1);
  std::vector<uint8_t> bad_type = le;
  bad_type[12] = 4;  // LONG
  EXPECT_EQ(exif_orientation(bad_type), 1);
  std::vector<uint8_t> bad_value = le;
  bad_value[18] = 9;
  EXPECT_EQ(exif_orientation(bad_value), 1);
  std::vector<uint8_t> far_ifd = le;
  far_ifd[7] = 0x7f;
  EXPECT_EQ(exif_orientation(far_ifd), 1);
}

}  // namespace
}  // namespace darkroom
