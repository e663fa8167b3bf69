// libpng's write path with setjmp error handling confined to one function.
#include "io/png_writer.h"

#include <png.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "core/error.h"

namespace darkroom {
namespace {

struct PngError {
  char message[256] = "unknown libpng error";
};

void on_error(png_structp png, png_const_charp msg) {
  auto* err = static_cast<PngError*>(png_get_error_ptr(png));
  std::snprintf(err->message, sizeof(err->message), "%s", msg);
  png_longjmp(png, 1);
}

void on_warning(png_structp, png_const_charp) {}

// Everything that touches libpng; no C++ objects with destructors live across setjmp.
// Returns false with `err` filled on failure.
bool encode(FILE* fp, const uint8_t* rgb, int width, int height, png_text* chunks, int n_chunks,
            PngError& err) {
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &err, on_error, on_warning);
  if (png == nullptr) return false;
  png_infop info = png_create_info_struct(png);
  if (info == nullptr) {
    png_destroy_write_struct(&png, nullptr);
    return false;
  }
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    return false;
  }
  png_init_io(png, fp);
  png_set_IHDR(png, info, static_cast<png_uint_32>(width), static_cast<png_uint_32>(height), 8,
               PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  if (n_chunks > 0) png_set_text(png, info, chunks, n_chunks);
  png_write_info(png, info);
  const size_t stride = static_cast<size_t>(width) * 3;
  for (int y = 0; y < height; ++y)
    png_write_row(png, const_cast<png_bytep>(rgb + static_cast<size_t>(y) * stride));
  png_write_end(png, info);
  png_destroy_write_struct(&png, &info);
  return true;
}

}  // namespace

void write_png_rgb8(const std::string& path, std::span<const uint8_t> rgb, int width, int height,
                    const std::vector<PngText>& text) {
  DR_CHECK(width > 0 && height > 0, "png", path, ": bad size ", width, "x", height);
  DR_CHECK(rgb.size() == static_cast<size_t>(width) * static_cast<size_t>(height) * 3, "png", path,
           ": ", rgb.size(), " bytes for a ", width, "x", height, " RGB image (need ",
           static_cast<size_t>(width) * height * 3, ")");
  for (const PngText& t : text)
    DR_CHECK(!t.key.empty() && t.key.size() < 80, "png", path, ": text key '", t.key,
             "' must have 1 to 79 characters");
  const std::string tmp = path + ".tmp";
  FILE* fp = std::fopen(tmp.c_str(), "wb");
  DR_CHECK(fp != nullptr, "png", "cannot create ", tmp);
  std::vector<png_text> chunks(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    chunks[i].compression = PNG_TEXT_COMPRESSION_NONE;
    chunks[i].key = const_cast<char*>(text[i].key.c_str());
    chunks[i].text = const_cast<char*>(text[i].value.c_str());
    chunks[i].text_length = text[i].value.size();
  }
  PngError err;
  const bool ok =
      encode(fp, rgb.data(), width, height, chunks.data(), static_cast<int>(chunks.size()), err);
  const bool closed = std::fclose(fp) == 0;
  if (!ok || !closed) {
    std::remove(tmp.c_str());
    fail("png", path, ": ", ok ? "write failed" : err.message);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::remove(tmp.c_str());
    fail("png", "cannot rename ", tmp, " to ", path, ": ", ec.message());
  }
}

}  // namespace darkroom
