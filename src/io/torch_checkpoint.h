// Reader for PyTorch checkpoints written by torch.save (.ckpt, .pt, .pth; the ZIP
// format, PyTorch ≥ 1.6), giving the same kind of result as SafetensorsFile: named
// tensors with dtype and shape, as zero-copy views into the mapped file.
//
// Loading a pickle normally runs code chosen by the file. This reader never does: the
// pickle is interpreted by io/pickle_vm.h, which accepts only what a state dict is
// made of and refuses any other global by name:
//   "[ckpt] <path>: refuses global 'posix.system' (only PyTorch state-dict types are allowed)"
// See io/pickle_archive.h for the archive layout and the names given to tensors
// (nested dicts are joined with '.', nothing is stripped: an SD checkpoint's tensors
// are "state_dict.model.diffusion_model....").
//
// Views: torch.save stores storages uncompressed (aligned to 64 bytes by current
// PyTorch), so tensor() views the mapping. A tensor that is not contiguous (a
// transposed view was saved) or lives in a deflated entry is copied into a fresh,
// contiguous CPU tensor instead. Like SafetensorsFile's, views are read-only.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/storage.h"
#include "core/tensor.h"
#include "io/pickle_archive.h"

namespace darkroom {

class MappedFile;

class TorchCheckpoint {
 public:
  // Maps `path` and parses its index; throws darkroom::Error "[ckpt] <path>: ..." on
  // anything wrong or not allowed (including the legacy pre-1.6 format).
  static TorchCheckpoint open(const std::string& path);

  const std::string& path() const { return path_; }
  // Sorted by name.
  const std::vector<CkptTensorInfo>& tensors() const { return archive_.tensors; }
  // Non-tensor leaves ("global_step" → "5", "epoch" → "1").
  const std::map<std::string, std::string>& metadata() const { return archive_.metadata; }
  // nullptr if there is no tensor of that name.
  const CkptTensorInfo* find(std::string_view name) const;

  // The tensor, contiguous, on the CPU (a view of the mapping where possible, see
  // above). Throws if `name` is missing.
  Tensor tensor(std::string_view name) const;

 private:
  std::string path_;
  CkptArchive archive_;
  std::shared_ptr<const MappedFile> map_;
  std::shared_ptr<Storage> storage_;  // spans the mapping; views keep it alive
};

}  // namespace darkroom
