// A torch.save checkpoint (.ckpt, .pt, .pth) held in memory, parsed into an index of
// its tensors; no files, no tensors made (io/torch_checkpoint.h maps files and hands
// out views; the fuzzer calls this directly).
//
// Since PyTorch 1.6 torch.save writes a ZIP archive, entries stored uncompressed:
//
//   <prefix>/data.pkl        the pickled object (protocol 2), run by io/pickle_vm.h
//   <prefix>/data/<key>      one raw little-endian storage per persistent id key
//   <prefix>/version, byteorder, .format_version, ...   (ignored)
//
// The pickled object is flattened into dotted names exactly as stored:
// {"state_dict": {"model.x": t}, "global_step": 5} gives the tensor "state_dict.model.x"
// and the metadata "global_step" = "5" (the loader decides what prefix to strip).
// Lists and tuples contribute their indices ("opt.0.w"). The archive is read with
// minizip (zlib's contrib); everything it reports is checked again here: the data of
// every storage lies inside the file, is as long as its tensors need, and each tensor
// stays inside its storage. The pre-1.6 format (a bare pickle stream) is refused.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/dtype.h"
#include "core/shape.h"

namespace darkroom {

// Where one archive entry's bytes are.
struct CkptEntry {
  std::string name;    // "<prefix>/data/<key>"
  bool stored = true;  // uncompressed: the bytes are file[data_offset, +size)
  uint64_t data_offset = 0;
  uint64_t size = 0;  // uncompressed size
};

struct CkptTensorInfo {
  std::string name;
  DType dtype = DType::F32;
  Shape shape;
  std::vector<int64_t> stride;  // in elements
  std::string storage;          // key of CkptArchive::storages
  uint64_t byte_offset = 0;     // of element 0 within the storage
  bool contiguous = true;       // row-major with no gaps (size-1 dims' strides ignored)
};

struct CkptArchive {
  std::string prefix;
  std::vector<CkptTensorInfo> tensors;          // sorted by name
  std::map<std::string, std::string> metadata;  // scalars: name → Python-ish text
  std::map<std::string, CkptEntry> storages;    // by persistent id key
};

// Parses and validates a whole torch.save archive held in memory. `source` names it in
// errors: "[ckpt] <source>: ...". Throws only darkroom::Error (or std::bad_alloc).
CkptArchive parse_torch_archive(std::span<const uint8_t> file, std::string_view source);

// The bytes of `entry`: a span into `file` for a stored entry; a deflated one (not
// what torch writes, but other zip tools may) is inflated into `scratch`, CRC-checked.
std::span<const uint8_t> ckpt_entry_bytes(std::span<const uint8_t> file, const CkptEntry& entry,
                                          std::string_view source, std::vector<uint8_t>& scratch);

}  // namespace darkroom
