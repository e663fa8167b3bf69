// Textual-inversion embeddings ("embedding:name" in a prompt) found and read as ComfyUI
// does (comfy/sd1_clip.py, load_embed):
//
//   Finding: `name` is looked up in each embeddings folder in turn, as written and then
//   with ".safetensors", ".pt" and ".bin" appended; a name that leads out of its folder
//   ("../x") is never opened there.
//   Reading: .safetensors files with the safetensors reader, anything else as a torch.save
//   archive through the restricted pickle reader (io/torch_checkpoint.h). Which tensor:
//     "string_to_param" (A1111's .pt, {"*": [n, C]})  → the first tensor under it;
//     `key` ("clip_l" for SD 1.x's CLIP-L in SDXL-era files with "clip_l"/"clip_g")
//                                                      → that tensor;
//     otherwise                                        → the file's first tensor (by name):
//                                                        "emb_params" of A1111's
//                                                        .safetensors, a lone tensor.
//   A 1-D tensor is one vector; [n, C] is n vectors, each taking one token position.
//
// ComfyUI also accepts a pickled list of dicts; the restricted reader does not.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/tensor.h"
#include "text/prompt_weights.h"

namespace darkroom::text {

// The vectors of one embedding file, [n, C] f32 on the CPU (C as stored). Throws
// darkroom::Error "[embedding] <path>: ..." for a file that cannot be read or holds no
// tensor.
Tensor read_embedding_file(const std::string& path, std::string_view key = "clip_l");

// The embeddings folders of one text model of width `width`. Files are read once, on
// first use, and kept. Thread-safe.
class EmbeddingDirectory {
 public:
  EmbeddingDirectory(std::vector<std::string> folders, int64_t width, std::string key = "clip_l");

  // The file that `name` resolves to, or nullopt.
  std::optional<std::string> resolve(const std::string& name) const;
  // [n, width] f32, or nullopt when there is no such file, it cannot be read, or its
  // vectors are not `width` wide (ComfyUI warns and leaves such an embedding out; so
  // does this, with a warning in the log).
  std::optional<Tensor> find(const std::string& name) const;
  // For tokenize_with_weights: the vector count of `name`.
  EmbeddingLookup lookup() const;

  int64_t width() const { return width_; }

 private:
  std::vector<std::string> folders_;
  int64_t width_;
  std::string key_;
  mutable std::mutex mu_;
  mutable std::map<std::string, std::optional<Tensor>> cache_;
};

}  // namespace darkroom::text
