#include "server/image_files.h"

#include <png.h>
#include <webp/decode.h>
#include <webp/encode.h>

#include <jpeglib.h>
#include <csetjmp>
#include <cstdio>
#include <cstring>

#include "core/error.h"

namespace darkroom::server {
namespace {

struct JpegError {
  jpeg_error_mgr mgr;
  std::jmp_buf jump;
};

void jpeg_error_exit(j_common_ptr cinfo) {
  std::longjmp(reinterpret_cast<JpegError*>(cinfo->err)->jump, 1);
}

// Decodes a JPEG; with `header_only` stops after the header. Returns false on bad data.
bool read_jpeg(const std::string& bytes, bool header_only, RgbaImage* out) {
  jpeg_decompress_struct cinfo{};
  JpegError err{};
  cinfo.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = jpeg_error_exit;
  err.mgr.output_message = [](j_common_ptr) {};
  std::vector<uint8_t> rgb;
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  if (jpeg_read_header(&cinfo, TRUE) != JPEG_HEADER_OK) {
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  if (!header_only) {
    cinfo.out_color_space = JCS_RGB;
    jpeg_start_decompress(&cinfo);
    const int w = static_cast<int>(cinfo.output_width), h = static_cast<int>(cinfo.output_height);
    rgb.resize(static_cast<size_t>(w) * h * 3);
    while (cinfo.output_scanline < cinfo.output_height) {
      JSAMPROW row = rgb.data() + static_cast<size_t>(cinfo.output_scanline) * w * 3;
      jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
    out->width = w;
    out->height = h;
    out->pixels.resize(static_cast<size_t>(w) * h * 4);
    for (size_t i = 0; i < static_cast<size_t>(w) * h; ++i) {
      std::memcpy(&out->pixels[i * 4], &rgb[i * 3], 3);
      out->pixels[i * 4 + 3] = 255;
    }
  }
  jpeg_destroy_decompress(&cinfo);
  return true;
}

bool starts_with(const std::string& s, const char* magic, size_t n, size_t at = 0) {
  return s.size() >= at + n && std::memcmp(s.data() + at, magic, n) == 0;
}

}  // namespace

std::optional<std::string> sniff_image(const std::string& bytes) {
  if (starts_with(bytes, "\x89PNG\r\n\x1a\n", 8)) {
    png_image img{};
    img.version = PNG_IMAGE_VERSION;
    const bool ok = png_image_begin_read_from_memory(&img, bytes.data(), bytes.size()) != 0;
    png_image_free(&img);
    if (ok && img.width > 0 && img.height > 0) return "png";
    return std::nullopt;
  }
  if (starts_with(bytes, "\xff\xd8\xff", 3)) {
    RgbaImage unused;
    if (read_jpeg(bytes, true, &unused)) return "jpeg";
    return std::nullopt;
  }
  if (starts_with(bytes, "RIFF", 4) && starts_with(bytes, "WEBP", 4, 8)) {
    int w = 0, h = 0;
    if (WebPGetInfo(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), &w, &h))
      return "webp";
    return std::nullopt;
  }
  if ((starts_with(bytes, "GIF87a", 6) || starts_with(bytes, "GIF89a", 6)) && bytes.size() >= 13)
    return "gif";
  if (starts_with(bytes, "BM", 2) && bytes.size() >= 54) return "bmp";
  return std::nullopt;
}

std::optional<RgbaImage> decode_rgba(const std::string& bytes) {
  RgbaImage out;
  if (starts_with(bytes, "\x89PNG\r\n\x1a\n", 8)) {
    png_image img{};
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&img, bytes.data(), bytes.size())) return std::nullopt;
    img.format = PNG_FORMAT_RGBA;
    out.width = static_cast<int>(img.width);
    out.height = static_cast<int>(img.height);
    out.pixels.resize(PNG_IMAGE_SIZE(img));
    if (!png_image_finish_read(&img, nullptr, out.pixels.data(), 0, nullptr)) {
      png_image_free(&img);
      return std::nullopt;
    }
    return out;
  }
  if (starts_with(bytes, "\xff\xd8\xff", 3)) {
    if (read_jpeg(bytes, false, &out)) return out;
    return std::nullopt;
  }
  if (starts_with(bytes, "RIFF", 4) && starts_with(bytes, "WEBP", 4, 8)) {
    int w = 0, h = 0;
    uint8_t* px =
        WebPDecodeRGBA(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), &w, &h);
    if (px == nullptr) return std::nullopt;
    out.width = w;
    out.height = h;
    out.pixels.assign(px, px + static_cast<size_t>(w) * h * 4);
    WebPFree(px);
    return out;
  }
  return std::nullopt;
}

std::string encode_png(const RgbaImage& image) {
  png_image img{};
  img.version = PNG_IMAGE_VERSION;
  img.width = static_cast<png_uint_32>(image.width);
  img.height = static_cast<png_uint_32>(image.height);
  img.format = PNG_FORMAT_RGBA;
  png_alloc_size_t size = 0;
  DR_CHECK(png_image_write_get_memory_size(img, size, 0, image.pixels.data(), 0, nullptr), "view",
           "PNG encoding failed");
  std::string out(size, '\0');
  DR_CHECK(png_image_write_to_memory(&img, out.data(), &size, 0, image.pixels.data(), 0, nullptr),
           "view", "PNG encoding failed");
  out.resize(size);
  return out;
}

std::string encode_webp(const RgbaImage& image, int quality) {
  uint8_t* data = nullptr;
  const size_t n = WebPEncodeRGBA(image.pixels.data(), image.width, image.height, image.width * 4,
                                  static_cast<float>(quality), &data);
  DR_CHECK(n > 0, "view", "WebP encoding failed");
  std::string out(reinterpret_cast<char*>(data), n);
  WebPFree(data);
  return out;
}

std::string encode_jpeg(const RgbaImage& image, int quality) {
  jpeg_compress_struct cinfo{};
  jpeg_error_mgr err{};
  cinfo.err = jpeg_std_error(&err);
  jpeg_create_compress(&cinfo);
  unsigned char* mem = nullptr;
  unsigned long mem_size = 0;
  jpeg_mem_dest(&cinfo, &mem, &mem_size);
  cinfo.image_width = static_cast<JDIMENSION>(image.width);
  cinfo.image_height = static_cast<JDIMENSION>(image.height);
  cinfo.input_components = 3;
  cinfo.in_color_space = JCS_RGB;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, quality, TRUE);
  jpeg_start_compress(&cinfo, TRUE);
  std::vector<uint8_t> row(static_cast<size_t>(image.width) * 3);
  while (cinfo.next_scanline < cinfo.image_height) {
    const uint8_t* src = &image.pixels[static_cast<size_t>(cinfo.next_scanline) * image.width * 4];
    for (int x = 0; x < image.width; ++x) std::memcpy(&row[x * 3], &src[x * 4], 3);
    JSAMPROW r = row.data();
    jpeg_write_scanlines(&cinfo, &r, 1);
  }
  jpeg_finish_compress(&cinfo);
  std::string out(reinterpret_cast<char*>(mem), mem_size);
  jpeg_destroy_compress(&cinfo);
  std::free(mem);
  return out;
}

}  // namespace darkroom::server
