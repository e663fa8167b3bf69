// libFuzzer target for the safetensors header parser. Each input is tried twice:
//  1. as a whole file (length prefix, header, data), which is what a hostile file is;
//  2. as the header JSON alone, wrapped in a correct length prefix and a data section
//     of zeros, so that mutations explore the JSON and the validation behind it
//     instead of mostly breaking the length field.
// Only darkroom::Error may come out; anything else (a leaked nlohmann exception, a
// sanitizer report) is a crash. What the parser accepts must satisfy the guarantees
// that SafetensorsFile::tensor relies on; those are re-checked here independently.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "io/safetensors_header.h"

namespace {

using darkroom::SafetensorsHeader;
using darkroom::TensorInfo;

// The size of the data section given to the JSON-only interpretation.
constexpr size_t kDataBytes = 256;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

void check_accepted(const SafetensorsHeader& h, size_t file_size) {
  check(h.data_offset >= 9 && h.data_offset <= file_size);
  const uint64_t data_size = file_size - h.data_offset;
  for (size_t i = 1; i < h.tensors.size(); ++i) check(h.tensors[i - 1].begin <= h.tensors[i].begin);
  for (const TensorInfo& t : h.tensors) {
    check(t.begin <= t.end && t.end <= data_size);
    int64_t numel = 1;
    for (int64_t d : t.shape.dims()) {
      check(d >= 0);
      check(!__builtin_mul_overflow(numel, d, &numel));
    }
    check(static_cast<uint64_t>(numel) * darkroom::dtype_size(t.dtype) == t.nbytes());
    // No two non-empty ranges share a byte (quadratic, but inputs are small).
    if (t.nbytes() == 0) continue;
    for (const TensorInfo& u : h.tensors)
      if (&u != &t && u.nbytes() != 0) check(u.end <= t.begin || t.end <= u.begin);
  }
}

void try_parse(const uint8_t* data, size_t size) {
  try {
    SafetensorsHeader h = darkroom::parse_safetensors_header({data, size}, "<fuzz>");
    check_accepted(h, size);
  } catch (const darkroom::Error&) {
    // A precise rejection is the expected outcome for most inputs.
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try_parse(data, size);

  if (size > 0) {
    std::vector<uint8_t> file(8 + size + kDataBytes, 0);
    for (int i = 0; i < 8; ++i) file[i] = static_cast<uint8_t>(uint64_t{size} >> (8 * i));
    std::memcpy(file.data() + 8, data, size);
    try_parse(file.data(), file.size());
  }
  return 0;
}
