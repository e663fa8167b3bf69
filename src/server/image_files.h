// The few image operations the file routes need: recognise an uploaded image by decoding
// its header, and the re-encodings of /view (preview=webp|jpeg, channel=rgb|a) and of
// /upload/mask. Pixels here are 8-bit RGBA rows, never tensors.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace darkroom::server {

struct RgbaImage {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> pixels;  // [height, width, 4]
};

// "png", "jpeg", "webp", "gif" or "bmp" when the bytes start like one and (for PNG, JPEG,
// WebP) the header decodes; nullopt for anything else.
std::optional<std::string> sniff_image(const std::string& bytes);

// PNG, JPEG or WebP to RGBA; nullopt if it does not decode.
std::optional<RgbaImage> decode_rgba(const std::string& bytes);

std::string encode_png(const RgbaImage& image);
std::string encode_webp(const RgbaImage& image, int quality);
std::string encode_jpeg(const RgbaImage& image, int quality);

}  // namespace darkroom::server
