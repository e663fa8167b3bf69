// Image codecs: PNG (libpng), JPEG (libjpeg-turbo) and WebP (libwebp) from bytes to 8-bit
// pixels, and JPEG/WebP encoding (PNG files with text chunks: io/png_writer.h).
//
// Decoding is for files that clients upload (ComfyUI's LoadImage), so it is defensive:
//  - the size is read from the header and checked against ImageLimits BEFORE any pixel
//    buffer is allocated or any image data is decompressed (decompression bombs);
//  - corrupt or truncated data ends in darkroom::Error "[image] <name>: <what>", never in
//    a crash, a partial image, or a libpng/libjpeg message on stderr.
//
// What comes out matches Pillow's decode, which ComfyUI uses: palette, grey and
// low-bit-depth images are expanded to RGB; a tRNS chunk or an alpha channel gives RGBA;
// 16-bit samples keep their high byte (Pillow's "RGB;16B" unpacking; for 16-bit grey,
// which Pillow opens as mode I;16, the same high byte); JPEG EXIF orientation is applied
// (ComfyUI calls ImageOps.exif_transpose; EXIF in PNG and WebP files is not read); CMYK
// JPEGs are converted as Pillow converts Adobe-inverted CMYK. Animated WebP is refused.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace darkroom {

enum class ImageFormat { Png, Jpeg, Webp };

// Default: 8192 pixels a side and 8192·8192 = 64 Mi pixels in all (256 MiB as RGBA).
struct ImageLimits {
  int64_t max_side = 8192;
  int64_t max_pixels = int64_t{8192} * 8192;
};

struct DecodedImage {
  int width = 0;
  int height = 0;
  int channels = 0;             // 3 (RGB) or 4 (RGBA)
  bool has_alpha = false;       // channels == 4: the file had an alpha channel or tRNS
  std::vector<uint8_t> pixels;  // [height, width, channels], rows top to bottom
};

// The format from the first bytes (signature), or nullopt.
std::optional<ImageFormat> sniff_image_format(std::span<const uint8_t> bytes);

// Decodes any of the three formats. `name` (a file name) goes into error messages.
DecodedImage decode_image(std::span<const uint8_t> bytes, const std::string& name = "<image>",
                          const ImageLimits& limits = {});

// The per-format decoders behind decode_image (same guarantees).
DecodedImage decode_png(std::span<const uint8_t> bytes, const std::string& name,
                        const ImageLimits& limits);
DecodedImage decode_jpeg(std::span<const uint8_t> bytes, const std::string& name,
                         const ImageLimits& limits);
DecodedImage decode_webp(std::span<const uint8_t> bytes, const std::string& name,
                         const ImageLimits& limits);

// Throws "[image] <name>: <w>x<h> exceeds the limit ..." unless 0 < w, h and the image is
// within `limits`.
void check_image_size(int64_t width, int64_t height, const std::string& name,
                      const ImageLimits& limits);

// pixels [height, width, channels] with channels 3 (RGB) or 4 (RGBA; JPEG drops alpha).
// quality 1..100. JPEG: baseline, 4:2:0 chroma subsampling (Pillow's default). WebP:
// lossy at `quality`, or lossless (quality unused; libwebp may change the colour of
// fully transparent pixels, as Pillow's files also show).
std::vector<uint8_t> encode_jpeg(std::span<const uint8_t> pixels, int width, int height,
                                 int channels, int quality = 95);
std::vector<uint8_t> encode_webp(std::span<const uint8_t> pixels, int width, int height,
                                 int channels, int quality = 80, bool lossless = false);

// EXIF orientation (1..8) from a TIFF-structured Exif payload (what follows "Exif\0\0" in
// a JPEG APP1 segment); 1 when absent or unreadable.
int exif_orientation(std::span<const uint8_t> tiff);
// Applies an EXIF orientation in place (as Pillow's ImageOps.exif_transpose): 2 mirror,
// 3 rotate 180, 4 flip, 5 transpose, 6 rotate 270 (90° clockwise), 7 transverse, 8
// rotate 90 (counter-clockwise). Width and height swap for 5..8.
void apply_exif_orientation(DecodedImage& image, int orientation);

}  // namespace darkroom
