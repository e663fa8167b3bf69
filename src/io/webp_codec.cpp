// WebP decoding and encoding with libwebp. libwebp reports errors by return value, so no
// longjmp is involved; WebPGetFeatures reads the size from the VP8/VP8L/VP8X header
// before anything is decoded.
#include <webp/decode.h>
#include <webp/encode.h>

#include <vector>

#include "core/error.h"
#include "io/image_codec.h"

namespace darkroom {
namespace {

const char* status_text(VP8StatusCode s) {
  switch (s) {
    case VP8_STATUS_OK:
      return "ok";
    case VP8_STATUS_OUT_OF_MEMORY:
      return "out of memory";
    case VP8_STATUS_INVALID_PARAM:
      return "invalid parameter";
    case VP8_STATUS_BITSTREAM_ERROR:
      return "bitstream error";
    case VP8_STATUS_UNSUPPORTED_FEATURE:
      return "unsupported feature";
    case VP8_STATUS_SUSPENDED:
      return "suspended";
    case VP8_STATUS_USER_ABORT:
      return "aborted";
    case VP8_STATUS_NOT_ENOUGH_DATA:
      return "file is truncated";
  }
  return "unknown error";
}

}  // namespace

DecodedImage decode_webp(std::span<const uint8_t> bytes, const std::string& name,
                         const ImageLimits& limits) {
  WebPBitstreamFeatures f;
  const VP8StatusCode st = WebPGetFeatures(bytes.data(), bytes.size(), &f);
  DR_CHECK(st == VP8_STATUS_OK, "image", name, ": corrupt WebP: ", status_text(st));
  DR_CHECK(!f.has_animation, "image", name, ": animated WebP is not supported");
  check_image_size(f.width, f.height, name, limits);
  DecodedImage img;
  img.width = f.width;
  img.height = f.height;
  img.has_alpha = f.has_alpha != 0;
  img.channels = img.has_alpha ? 4 : 3;
  img.pixels.resize(static_cast<size_t>(img.width) * img.height * img.channels);
  const int stride = img.width * img.channels;
  const uint8_t* done = img.has_alpha
                            ? WebPDecodeRGBAInto(bytes.data(), bytes.size(), img.pixels.data(),
                                                 img.pixels.size(), stride)
                            : WebPDecodeRGBInto(bytes.data(), bytes.size(), img.pixels.data(),
                                                img.pixels.size(), stride);
  if (done == nullptr) {
    // The decode functions do not say why; a second, incremental look tells truncation
    // from a broken bitstream.
    WebPDecoderConfig config;
    VP8StatusCode why = VP8_STATUS_BITSTREAM_ERROR;
    if (WebPInitDecoderConfig(&config)) {
      config.output.colorspace = img.has_alpha ? MODE_RGBA : MODE_RGB;
      config.output.is_external_memory = 1;
      config.output.u.RGBA.rgba = img.pixels.data();
      config.output.u.RGBA.stride = stride;
      config.output.u.RGBA.size = img.pixels.size();
      why = WebPDecode(bytes.data(), bytes.size(), &config);
      WebPFreeDecBuffer(&config.output);
    }
    fail("image", name,
         ": corrupt WebP: ", why == VP8_STATUS_OK ? "bitstream error" : status_text(why));
  }
  return img;
}

std::vector<uint8_t> encode_webp(std::span<const uint8_t> pixels, int width, int height,
                                 int channels, int quality, bool lossless) {
  DR_CHECK(width > 0 && height > 0 && width <= WEBP_MAX_DIMENSION && height <= WEBP_MAX_DIMENSION,
           "webp", "bad size ", width, "x", height, " (WebP allows up to ", WEBP_MAX_DIMENSION,
           " a side)");
  DR_CHECK(channels == 3 || channels == 4, "webp", "channels must be 3 or 4, got ", channels);
  DR_CHECK(pixels.size() == static_cast<size_t>(width) * height * channels, "webp", pixels.size(),
           " bytes for a ", width, "x", height, "x", channels, " image");
  DR_CHECK(quality >= 0 && quality <= 100, "webp", "quality must be 0..100, got ", quality);
  const int stride = width * channels;
  uint8_t* out = nullptr;
  size_t n = 0;
  const float q = static_cast<float>(quality);
  if (lossless)
    n = channels == 4 ? WebPEncodeLosslessRGBA(pixels.data(), width, height, stride, &out)
                      : WebPEncodeLosslessRGB(pixels.data(), width, height, stride, &out);
  else
    n = channels == 4 ? WebPEncodeRGBA(pixels.data(), width, height, stride, q, &out)
                      : WebPEncodeRGB(pixels.data(), width, height, stride, q, &out);
  std::vector<uint8_t> result;
  if (n > 0) result.assign(out, out + n);
  WebPFree(out);
  DR_CHECK(n > 0, "webp", "encoding a ", width, "x", height, " image failed");
  return result;
}

}  // namespace darkroom
