// PNG output: 8-bit RGB images with tEXt chunks, as ComfyUI's SaveImage writes them
// (PIL's PngInfo.add_text: Latin-1 keywords, uncompressed tEXt, written before the
// image data). ComfyUI stores the API-format graph under "prompt" and the UI graph
// under "workflow"; readers (ComfyUI's drag-and-drop loader) take either.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace darkroom {

struct PngText {
  std::string key;    // 1–79 Latin-1 characters
  std::string value;  // written as is (tEXt holds Latin-1; JSON stays ASCII-safe if escaped)
};

// rgb: height·width·3 bytes, row-major. Atomic like write_safetensors: a temporary file
// in the same directory renamed over `path`. Throws darkroom::Error "[png] ..." on bad
// sizes or I/O failure.
void write_png_rgb8(const std::string& path, std::span<const uint8_t> rgb, int width, int height,
                    const std::vector<PngText>& text = {});

}  // namespace darkroom
