// libFuzzer target for the image decoders (PNG via libpng, JPEG via libjpeg-turbo, WebP
// via libwebp). Each input is tried
//  1. as a whole file through decode_image (format from the signature), and
//  2. through each format's decoder with that format's signature put in front, so that
//     mutations that break the signature still reach the header and data parsers.
// Only darkroom::Error may come out; a leaked longjmp, a sanitizer report or a decoded
// image that breaks DecodedImage's guarantees (re-checked here) is a crash. The limits
// are small so that the fuzzer spends its time on parsing, not on big allocations.
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "io/image_codec.h"

namespace {

using darkroom::DecodedImage;
using darkroom::ImageLimits;

constexpr ImageLimits kLimits{.max_side = 1024, .max_pixels = 256 * 1024};

void check(bool ok) {
  if (!ok) __builtin_trap();
}

void check_decoded(const DecodedImage& img) {
  check(img.width > 0 && img.height > 0);
  check(img.width <= kLimits.max_side && img.height <= kLimits.max_side);
  check(int64_t{img.width} * img.height <= kLimits.max_pixels);
  check(img.channels == 3 || img.channels == 4);
  check(img.has_alpha == (img.channels == 4));
  check(img.pixels.size() == static_cast<size_t>(img.width) * img.height * img.channels);
}

template <class Decode>
void try_decode(Decode&& decode, const uint8_t* data, size_t size) {
  try {
    check_decoded(decode(std::span<const uint8_t>(data, size), "<fuzz>", kLimits));
  } catch (const darkroom::Error&) {
    // A precise rejection is the expected outcome for most inputs.
  }
}

void with_prefix(const uint8_t* prefix, size_t n, const uint8_t* data, size_t size,
                 DecodedImage (*decode)(std::span<const uint8_t>, const std::string&,
                                        const ImageLimits&)) {
  std::vector<uint8_t> buf(n + size);
  std::memcpy(buf.data(), prefix, n);
  if (size > 0) std::memcpy(buf.data() + n, data, size);
  try_decode(decode, buf.data(), buf.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try_decode(darkroom::decode_image, data, size);

  static constexpr uint8_t kPng[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  static constexpr uint8_t kJpeg[2] = {0xff, 0xd8};
  with_prefix(kPng, sizeof(kPng), data, size, darkroom::decode_png);
  with_prefix(kJpeg, sizeof(kJpeg), data, size, darkroom::decode_jpeg);
  // RIFF <size> WEBP: the size field is filled in for the data that follows.
  uint8_t riff[12] = {'R', 'I', 'F', 'F', 0, 0, 0, 0, 'W', 'E', 'B', 'P'};
  const uint32_t riff_size = static_cast<uint32_t>(size + 4);
  for (int i = 0; i < 4; ++i) riff[4 + i] = static_cast<uint8_t>(riff_size >> (8 * i));
  with_prefix(riff, sizeof(riff), data, size, darkroom::decode_webp);
  return 0;
}
