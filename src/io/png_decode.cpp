// PNG decoding with libpng's full API (the simplified png_image API would treat 16-bit
// files as linear light and gamma-encode them, which Pillow does not).
//
// libpng reports errors by longjmp. Everything between setjmp and the libpng calls lives
// in read_png(), which holds no object with a destructor; the output buffers belong to
// the caller's frame, which the longjmp never crosses.
#include <png.h>

#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <new>
#include <vector>

#include "core/error.h"
#include "io/image_codec.h"

namespace darkroom {
namespace {

struct PngReadState {
  const uint8_t* data = nullptr;
  size_t size = 0;
  size_t pos = 0;
  char message[256] = "unknown libpng error";
  // Set when the header was read and the image was over the limits: the caller reports
  // it with check_image_size's message.
  bool over_limit = false;
};

void on_error(png_structp png, png_const_charp msg) {
  auto* st = static_cast<PngReadState*>(png_get_error_ptr(png));
  std::snprintf(st->message, sizeof(st->message), "%s", msg);
  png_longjmp(png, 1);
}

void on_warning(png_structp, png_const_charp) {}

void on_read(png_structp png, png_bytep out, png_size_t n) {
  auto* st = static_cast<PngReadState*>(png_get_io_ptr(png));
  if (n > st->size - st->pos) png_error(png, "file is truncated");
  std::memcpy(out, st->data + st->pos, n);
  st->pos += n;
}

struct PngHeader {
  png_uint_32 width = 0;
  png_uint_32 height = 0;
  int channels = 0;
};

// Reads the header, checks the size, then the rows. Returns false with st.message set on
// a libpng error, or with st.over_limit set. `grow` is called once with the header
// filled: it allocates the pixels [height, width, channels] and returns the row pointers
// into them, or nullptr.
template <class Grow>
bool read_png(PngReadState& st, const ImageLimits& limits, PngHeader& hdr, Grow&& grow) {
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &st, on_error, on_warning);
  if (png == nullptr) return false;
  png_infop info = png_create_info_struct(png);
  if (info == nullptr) {
    png_destroy_read_struct(&png, nullptr, nullptr);
    return false;
  }
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, nullptr);
    return false;
  }
  png_set_read_fn(png, &st, on_read);
  // Ancillary chunks (iCCP, zTXt, ...) are never needed; bound what they may allocate.
  png_set_chunk_malloc_max(png, 8u << 20);
  png_read_info(png, info);

  hdr.width = png_get_image_width(png, info);
  hdr.height = png_get_image_height(png, info);
  if (static_cast<int64_t>(hdr.width) * hdr.height > limits.max_pixels ||
      hdr.width > limits.max_side || hdr.height > limits.max_side) {
    st.over_limit = true;
    png_destroy_read_struct(&png, &info, nullptr);
    return false;
  }
  const int color = png_get_color_type(png, info);
  // Palette → RGB, grey below 8 bits → 8, tRNS → alpha; 16 → 8 keeps the high byte.
  png_set_expand(png);
  png_set_strip_16(png);
  if (color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  hdr.channels = png_get_channels(png, info);
  if (hdr.channels != 3 && hdr.channels != 4) png_error(png, "unexpected channel count");

  png_bytepp rows = grow(hdr);
  if (rows == nullptr) png_error(png, "out of memory");
  png_read_image(png, rows);
  // The chunks after IDAT (text, time) are not needed and are not read: a file cut after
  // its image data decodes, as with Pillow.
  png_destroy_read_struct(&png, &info, nullptr);
  return true;
}

}  // namespace

DecodedImage decode_png(std::span<const uint8_t> bytes, const std::string& name,
                        const ImageLimits& limits) {
  PngReadState st;
  st.data = bytes.data();
  st.size = bytes.size();
  PngHeader hdr;
  DecodedImage img;
  std::vector<png_bytep> rows;
  bool bad_alloc = false;
  auto grow = [&](const PngHeader& h) -> png_bytepp {
    try {
      img.pixels.resize(static_cast<size_t>(h.width) * h.height * h.channels);
      rows.resize(h.height);
    } catch (const std::bad_alloc&) {
      bad_alloc = true;
      return nullptr;
    }
    const size_t stride = static_cast<size_t>(h.width) * h.channels;
    for (png_uint_32 y = 0; y < h.height; ++y) rows[y] = img.pixels.data() + y * stride;
    return rows.data();
  };
  const bool ok = read_png(st, limits, hdr, grow);
  if (st.over_limit) check_image_size(hdr.width, hdr.height, name, limits);
  DR_CHECK(!bad_alloc, "image", name, ": out of memory for ", hdr.width, "x", hdr.height);
  DR_CHECK(ok, "image", name, ": corrupt PNG: ", st.message);
  img.width = static_cast<int>(hdr.width);
  img.height = static_cast<int>(hdr.height);
  img.channels = hdr.channels;
  img.has_alpha = hdr.channels == 4;
  return img;
}

}  // namespace darkroom
