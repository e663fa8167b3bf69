// JPEG decoding and encoding with libjpeg-turbo.
//
// libjpeg reports errors through error_exit, which must not return: it longjmps back to
// the setjmp in read_jpeg()/write_jpeg(). Those functions hold no object with a
// destructor, and the buffers they fill belong to the caller's frame.
//
// Hostile files: the size is checked right after jpeg_read_header, before the
// decompressor allocates anything image-sized; a progressive file may carry thousands
// of scans, each a full pass over the coefficients (a time bomb), so scans are capped as
// djpeg's -maxscans does; premature end of data, which libjpeg only warns about (it
// pads the image with grey), is an error here, as Pillow's "image file is truncated".
// jpeglib.h uses size_t and FILE without including their headers.
#include <cstddef>
#include <cstdio>

#include <jerror.h>
#include <jpeglib.h>

#include <csetjmp>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include "core/error.h"
#include "io/image_codec.h"

namespace darkroom {
namespace {

constexpr int kMaxScans = 500;

struct JpegErr {
  jpeg_error_mgr pub;  // first: libjpeg passes &pub, cast back below
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX] = "unknown libjpeg error";
  bool over_limit = false;
};

[[noreturn]] void on_error_exit(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegErr*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

void on_emit_message(j_common_ptr cinfo, int level) {
  // level -1: a warning about corrupt data. Only truncation is fatal; other warnings
  // (extraneous bytes before a marker, common in camera files) are accepted, as Pillow
  // accepts them.
  if (level == -1 && cinfo->err->msg_code == JWRN_JPEG_EOF) on_error_exit(cinfo);
}

void on_progress(j_common_ptr cinfo) {
  if (!cinfo->is_decompressor) return;
  auto* d = reinterpret_cast<j_decompress_ptr>(cinfo);
  if (d->input_scan_number > kMaxScans) {
    auto* err = reinterpret_cast<JpegErr*>(cinfo->err);
    std::snprintf(err->message, sizeof(err->message), "more than %d progressive scans", kMaxScans);
    std::longjmp(err->jump, 1);
  }
}

void install_error_handlers(JpegErr& err) {
  jpeg_std_error(&err.pub);
  err.pub.error_exit = on_error_exit;
  err.pub.emit_message = on_emit_message;
}

struct JpegHeader {
  JDIMENSION width = 0;
  JDIMENSION height = 0;
  int components = 0;  // of the decoded rows: 3 (RGB) or 4 (CMYK, converted afterwards)
  bool adobe_cmyk = false;
  int orientation = 1;
};

int orientation_from_markers(j_decompress_ptr cinfo) {
  for (jpeg_saved_marker_ptr m = cinfo->marker_list; m != nullptr; m = m->next) {
    if (m->marker != JPEG_APP0 + 1 || m->data_length < 6) continue;
    if (std::memcmp(m->data, "Exif\0\0", 6) != 0) continue;
    return exif_orientation({m->data + 6, m->data_length - 6});
  }
  return 1;
}

template <class Grow>
bool read_jpeg(const uint8_t* data, size_t size, const ImageLimits& limits, JpegErr& err,
               JpegHeader& hdr, Grow&& grow) {
  // Zeroed, so that jpeg_destroy is safe even if jpeg_create itself fails.
  jpeg_decompress_struct cinfo{};
  jpeg_progress_mgr progress{};
  install_error_handlers(err);
  cinfo.err = &err.pub;
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  jpeg_create_decompress(&cinfo);
  progress.progress_monitor = on_progress;
  cinfo.progress = &progress;
  jpeg_mem_src(&cinfo, data, static_cast<unsigned long>(size));
  jpeg_save_markers(&cinfo, JPEG_APP0 + 1, 0xffff);
  jpeg_read_header(&cinfo, TRUE);
  hdr.width = cinfo.image_width;
  hdr.height = cinfo.image_height;
  if (hdr.width > limits.max_side || hdr.height > limits.max_side ||
      static_cast<int64_t>(hdr.width) * hdr.height > limits.max_pixels) {
    err.over_limit = true;
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  hdr.orientation = orientation_from_markers(&cinfo);
  if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
    cinfo.out_color_space = JCS_CMYK;  // libjpeg has no CMYK → RGB; converted below
    hdr.adobe_cmyk = true;
  } else {
    cinfo.out_color_space = JCS_RGB;
  }
  jpeg_start_decompress(&cinfo);
  hdr.components = cinfo.output_components;
  uint8_t* pixels = grow(hdr);
  if (pixels == nullptr) ERREXIT1(&cinfo, JERR_OUT_OF_MEMORY, 0);
  const size_t stride = static_cast<size_t>(hdr.width) * hdr.components;
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = pixels + cinfo.output_scanline * stride;
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  // No jpeg_finish_decompress: what follows the last scan is not needed.
  jpeg_destroy_decompress(&cinfo);
  return true;
}

// Pillow's CMYK → RGB for its "CMYK;I" (Adobe, inverted) raw mode: with the stored
// values c, k, R = k − c'·k/255 where c' = 255 − c, using Pillow's MULDIV255 rounding.
uint8_t cmyk_channel(uint8_t c, uint8_t k) {
  const uint32_t tmp = (255u - c) * k + 128u;
  const uint32_t muldiv = ((tmp >> 8) + tmp) >> 8;
  return static_cast<uint8_t>(k - muldiv);
}

template <class Setup>
bool write_jpeg(JpegErr& err, unsigned char** out, unsigned long* out_size, Setup&& rows) {
  jpeg_compress_struct cinfo{};
  install_error_handlers(err);
  cinfo.err = &err.pub;
  if (setjmp(err.jump)) {
    jpeg_destroy_compress(&cinfo);
    return false;
  }
  jpeg_create_compress(&cinfo);
  jpeg_mem_dest(&cinfo, out, out_size);
  rows(cinfo);
  jpeg_destroy_compress(&cinfo);
  return true;
}

}  // namespace

DecodedImage decode_jpeg(std::span<const uint8_t> bytes, const std::string& name,
                         const ImageLimits& limits) {
  JpegErr err;
  JpegHeader hdr;
  DecodedImage img;
  bool bad_alloc = false;
  auto grow = [&](const JpegHeader& h) -> uint8_t* {
    try {
      img.pixels.resize(static_cast<size_t>(h.width) * h.height * h.components);
    } catch (const std::bad_alloc&) {
      bad_alloc = true;
      return nullptr;
    }
    return img.pixels.data();
  };
  const bool ok = read_jpeg(bytes.data(), bytes.size(), limits, err, hdr, grow);
  if (err.over_limit) check_image_size(hdr.width, hdr.height, name, limits);
  DR_CHECK(!bad_alloc, "image", name, ": out of memory for ", hdr.width, "x", hdr.height);
  DR_CHECK(ok, "image", name, ": corrupt JPEG: ", err.message);
  img.width = static_cast<int>(hdr.width);
  img.height = static_cast<int>(hdr.height);
  img.channels = 3;
  if (hdr.components == 4) {
    // [h, w, 4] CMYK → [h, w, 3] RGB in place (the write index never passes the read one).
    const size_t n = static_cast<size_t>(img.width) * img.height;
    for (size_t i = 0; i < n; ++i) {
      const uint8_t* p = &img.pixels[i * 4];
      const uint8_t r = cmyk_channel(p[0], p[3]), g = cmyk_channel(p[1], p[3]),
                    b = cmyk_channel(p[2], p[3]);
      img.pixels[i * 3] = r;
      img.pixels[i * 3 + 1] = g;
      img.pixels[i * 3 + 2] = b;
    }
    img.pixels.resize(n * 3);
  }
  apply_exif_orientation(img, hdr.orientation);
  return img;
}

std::vector<uint8_t> encode_jpeg(std::span<const uint8_t> pixels, int width, int height,
                                 int channels, int quality) {
  DR_CHECK(width > 0 && height > 0 && width <= JPEG_MAX_DIMENSION && height <= JPEG_MAX_DIMENSION,
           "jpeg", "bad size ", width, "x", height);
  DR_CHECK(channels == 3 || channels == 4, "jpeg", "channels must be 3 or 4, got ", channels);
  DR_CHECK(pixels.size() == static_cast<size_t>(width) * height * channels, "jpeg", pixels.size(),
           " bytes for a ", width, "x", height, "x", channels, " image");
  DR_CHECK(quality >= 1 && quality <= 100, "jpeg", "quality must be 1..100, got ", quality);
  JpegErr err;
  unsigned char* out = nullptr;
  unsigned long out_size = 0;
  auto rows = [&](jpeg_compress_struct& cinfo) {
    cinfo.image_width = static_cast<JDIMENSION>(width);
    cinfo.image_height = static_cast<JDIMENSION>(height);
    cinfo.input_components = channels;
    // libjpeg-turbo reads RGBA rows directly and ignores the alpha byte.
    cinfo.in_color_space = channels == 4 ? JCS_EXT_RGBA : JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    const size_t stride = static_cast<size_t>(width) * channels;
    while (cinfo.next_scanline < cinfo.image_height) {
      JSAMPROW row = const_cast<JSAMPROW>(pixels.data() + cinfo.next_scanline * stride);
      jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
  };
  const bool ok = write_jpeg(err, &out, &out_size, rows);
  std::vector<uint8_t> result;
  if (ok) result.assign(out, out + out_size);
  std::free(out);  // jpeg_mem_dest's buffer, malloc'd by libjpeg
  DR_CHECK(ok, "jpeg", "encoding failed: ", err.message);
  return result;
}

}  // namespace darkroom
