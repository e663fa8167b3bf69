// Parsing and validation of a safetensors header held in memory; no files, no tensors
// (io/safetensors.h maps files and hands out views; the fuzzer calls this directly).
// See io/safetensors.h for the format and what is checked.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/dtype.h"
#include "core/shape.h"

namespace darkroom {

// The largest header accepted (the reference implementation's limit): a hostile file
// cannot make us parse gigabytes of JSON.
inline constexpr uint64_t kSafetensorsMaxHeaderBytes = 100'000'000;

// "F32", "BF16", "F8_E4M3", ... as the format spells them.
std::string_view safetensors_dtype_name(DType t);
// The inverse; nullopt for strings darkroom does not know (including newer dtypes
// such as "U32" or "F8_E8M0").
std::optional<DType> parse_safetensors_dtype(std::string_view name);

struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  Shape shape;
  // Byte range [begin, end) relative to the start of the data section.
  uint64_t begin = 0;
  uint64_t end = 0;

  uint64_t nbytes() const { return end - begin; }
};

struct SafetensorsHeader {
  // Sorted by `begin` (the order a sequential loader reads them), then by name.
  std::vector<TensorInfo> tensors;
  std::map<std::string, std::string> metadata;
  // Where the data section starts in the file: 8 + N.
  uint64_t data_offset = 0;
};

// Parses and validates a whole safetensors file held in memory (`file` is every byte
// of it). `source` names it in error messages (a path, or "<memory>"). Throws only
// darkroom::Error (or std::bad_alloc).
SafetensorsHeader parse_safetensors_header(std::span<const uint8_t> file, std::string_view source);

}  // namespace darkroom
