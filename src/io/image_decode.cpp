// Format sniffing, the size limit, and EXIF orientation: the parts of decoding that do
// not depend on a codec library.
#include <cstring>
#include <utility>

#include "core/error.h"
#include "io/image_codec.h"

namespace darkroom {

std::optional<ImageFormat> sniff_image_format(std::span<const uint8_t> b) {
  static constexpr uint8_t kPng[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (b.size() >= 8 && std::memcmp(b.data(), kPng, 8) == 0) return ImageFormat::Png;
  if (b.size() >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff) return ImageFormat::Jpeg;
  if (b.size() >= 12 && std::memcmp(b.data(), "RIFF", 4) == 0 &&
      std::memcmp(b.data() + 8, "WEBP", 4) == 0)
    return ImageFormat::Webp;
  return std::nullopt;
}

void check_image_size(int64_t width, int64_t height, const std::string& name,
                      const ImageLimits& limits) {
  DR_CHECK(width > 0 && height > 0, "image", name, ": bad image size ", width, "x", height);
  DR_CHECK(width <= limits.max_side && height <= limits.max_side, "image", name, ": ", width, "x",
           height, " exceeds the limit of ", limits.max_side, " pixels a side");
  DR_CHECK(width * height <= limits.max_pixels, "image", name, ": ", width, "x", height, " (",
           width * height, " pixels) exceeds the limit of ", limits.max_pixels, " pixels");
}

DecodedImage decode_image(std::span<const uint8_t> bytes, const std::string& name,
                          const ImageLimits& limits) {
  const std::optional<ImageFormat> format = sniff_image_format(bytes);
  DR_CHECK(format.has_value(), "image", name, ": not a PNG, JPEG or WebP file (", bytes.size(),
           " bytes)");
  switch (*format) {
    case ImageFormat::Png:
      return decode_png(bytes, name, limits);
    case ImageFormat::Jpeg:
      return decode_jpeg(bytes, name, limits);
    case ImageFormat::Webp:
      return decode_webp(bytes, name, limits);
  }
  DR_ASSERT(false, "unknown image format");
  return {};
}

int exif_orientation(std::span<const uint8_t> t) {
  // TIFF header: "II*\0" (little-endian) or "MM\0*", then the offset of IFD0. IFD0 holds
  // a count and 12-byte entries {tag u16, type u16, count u32, value u32}; Orientation
  // is tag 0x0112, type SHORT, its value in the first two bytes of the value field.
  if (t.size() < 8) return 1;
  bool little;
  if (t[0] == 'I' && t[1] == 'I')
    little = true;
  else if (t[0] == 'M' && t[1] == 'M')
    little = false;
  else
    return 1;
  auto u16 = [&](size_t at) -> uint32_t {
    return little ? t[at] | (t[at + 1] << 8) : (t[at] << 8) | t[at + 1];
  };
  auto u32 = [&](size_t at) -> uint32_t {
    return little ? u16(at) | (u16(at + 2) << 16) : (u16(at) << 16) | u16(at + 2);
  };
  if (u16(2) != 42) return 1;
  const uint64_t ifd = u32(4);
  if (ifd + 2 > t.size()) return 1;
  const uint32_t count = u16(ifd);
  for (uint32_t i = 0; i < count; ++i) {
    const uint64_t entry = ifd + 2 + uint64_t{i} * 12;
    if (entry + 12 > t.size()) return 1;
    if (u16(entry) != 0x0112) continue;
    if (u16(entry + 2) != 3) return 1;  // SHORT
    const uint32_t v = u16(entry + 8);
    return v >= 1 && v <= 8 ? static_cast<int>(v) : 1;
  }
  return 1;
}

void apply_exif_orientation(DecodedImage& img, int orientation) {
  if (orientation < 2 || orientation > 8) return;
  const int w = img.width, h = img.height, c = img.channels;
  const bool swap = orientation >= 5;
  const int ow = swap ? h : w, oh = swap ? w : h;
  std::vector<uint8_t> out(img.pixels.size());
  // For each output pixel (ox, oy), the source pixel (sx, sy) in the stored image.
  for (int oy = 0; oy < oh; ++oy) {
    for (int ox = 0; ox < ow; ++ox) {
      int sx = 0, sy = 0;
      switch (orientation) {
        case 2:
          sx = w - 1 - ox;
          sy = oy;
          break;  // mirror
        case 3:
          sx = w - 1 - ox;
          sy = h - 1 - oy;
          break;  // rotate 180
        case 4:
          sx = ox;
          sy = h - 1 - oy;
          break;  // flip
        case 5:
          sx = oy;
          sy = ox;
          break;  // transpose
        case 6:
          sx = oy;
          sy = h - 1 - ox;
          break;  // 90° clockwise
        case 7:
          sx = w - 1 - oy;
          sy = h - 1 - ox;
          break;  // transverse
        case 8:
          sx = w - 1 - oy;
          sy = ox;
          break;  // 90° counter-clockwise
      }
      std::memcpy(&out[(static_cast<size_t>(oy) * ow + ox) * c],
                  &img.pixels[(static_cast<size_t>(sy) * w + sx) * c], c);
    }
  }
  img.pixels = std::move(out);
  img.width = ow;
  img.height = oh;
}

}  // namespace darkroom
