// Validated reader for the safetensors format (https://github.com/huggingface/safetensors):
//
//   [u64 little-endian N] [N bytes of UTF-8 JSON header, maybe space-padded] [data section]
//
// The header maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end]}
// (offsets relative to the data section) plus an optional "__metadata__" object of
// string → string. Every fact in the header is checked before any tensor is handed out:
// lengths, JSON well-formedness, types, dtypes, sizes (overflow-checked), ranges inside
// the data section, no overlaps, no duplicate names. Each violation throws a
// darkroom::Error "[safetensors] <path>: ..." naming the tensor and the numbers.
//
// Deliberately lenient where the reference implementation is strict but no harm can
// come of it: gaps between tensors and bytes after the last one are allowed.
//
// Alignment: views point straight into the mapping, at file offset 8 + N + begin. The
// reference writer pads N to a multiple of 8 only, so its tensors are 8-byte aligned at
// best, and other writers' may not be aligned at all (darkroom's writer starts the data
// section at a multiple of 64). CPU kernels use unaligned loads; code that needs
// kTensorAlignment (or the natural alignment of the element type) must copy first.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/storage.h"
#include "core/tensor.h"
#include "io/safetensors_header.h"

namespace darkroom {

class SafetensorsFile {
 public:
  // Maps `path` and validates its header; throws darkroom::Error on any problem.
  static SafetensorsFile open(const std::string& path);

  const std::string& path() const { return path_; }
  // In data-offset order.
  const std::vector<TensorInfo>& tensors() const { return header_.tensors; }
  const std::map<std::string, std::string>& metadata() const { return header_.metadata; }
  // nullptr if there is no tensor of that name.
  const TensorInfo* find(std::string_view name) const;

  // A zero-copy CPU view of the tensor's bytes in the mapping. The view keeps the
  // mapping alive after this object is gone. The memory is read-only (writing faults)
  // and possibly unaligned (see the top of this file). Throws if `name` is missing.
  Tensor tensor(std::string_view name) const;

 private:
  std::string path_;
  SafetensorsHeader header_;
  // Index into header_.tensors by name.
  std::map<std::string, size_t, std::less<>> by_name_;
  // Spans the whole mapping; its release only drops the reference to the mapping,
  // which is unmapped when the last view (or this file) lets go.
  std::shared_ptr<Storage> storage_;
};

}  // namespace darkroom
