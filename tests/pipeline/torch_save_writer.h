// A minimal torch.save writer for tests: {"state_dict": {name: tensor}} as PyTorch's ZIP
// format lays it out (archive/data.pkl, pickle protocol 2 with one persistent id per
// storage, archive/data/<key> stored uncompressed at 64-byte offsets, archive/version), for
// checkpoints too big to commit (the family fixtures' 49408-row token tables). Only the
// pickle opcodes and globals torch.save itself uses: _rebuild_tensor_v2 over
// torch.{Float,Half}Storage, collections.OrderedDict. What PyTorch writes is read by
// tests against files torch.save made (data/pipeline/families/*.ckpt).
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/tensor.h"

namespace darkroom::pipeline::test {

namespace torch_save_detail {

inline uint32_t crc32(const std::string& bytes) {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t c = 0xFFFFFFFFu;
  for (unsigned char b : bytes) c = table[(c ^ b) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

inline void le(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out += static_cast<char>((v >> (8 * i)) & 0xFF);
}

// Pickle protocol 2 pieces.
inline void str(std::string& p, const std::string& s) {
  p += 'X';  // BINUNICODE
  le(p, s.size(), 4);
  p += s;
}
inline void integer(std::string& p, int64_t v) {
  DR_ASSERT(v >= 0 && v < (int64_t{1} << 31), "torch_save_writer: int ", v);
  p += 'J';  // BININT
  le(p, static_cast<uint64_t>(v), 4);
}
inline void tuple(std::string& p, const std::vector<int64_t>& v) {
  p += '(';  // MARK
  for (int64_t x : v) integer(p, x);
  p += 't';  // TUPLE
}

}  // namespace torch_save_detail

// Writes `tensors` (F32 or F16, CPU) and the string entries `strings` as
// torch.save({"state_dict": {...}}) to `path`.
inline void write_torch_save(const std::string& path,
                             const std::vector<std::pair<std::string, Tensor>>& tensors,
                             const std::map<std::string, std::string>& strings = {}) {
  using namespace torch_save_detail;
  std::string pkl = "\x80\x02";  // PROTO 2
  pkl += '}';                    // EMPTY_DICT
  str(pkl, "state_dict");
  pkl += '}';
  pkl += '(';  // MARK
  for (const auto& [k, v] : strings) {
    str(pkl, k);
    str(pkl, v);
  }
  std::vector<std::pair<std::string, std::string>> entries;  // name, bytes
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& [name, t] = tensors[i];
    DR_ASSERT(t.dtype() == DType::F32 || t.dtype() == DType::F16, "torch_save_writer: ", name);
    const std::string key = std::to_string(i);
    str(pkl, name);
    pkl += "ctorch._utils\n_rebuild_tensor_v2\n";  // GLOBAL
    pkl += '(';
    pkl += '(';  // the persistent id ('storage', type, key, location, numel)
    str(pkl, "storage");
    pkl += t.dtype() == DType::F32 ? "ctorch\nFloatStorage\n" : "ctorch\nHalfStorage\n";
    str(pkl, key);
    str(pkl, "cpu");
    integer(pkl, t.numel());
    pkl += 't';
    pkl += 'Q';  // BINPERSID
    integer(pkl, 0);
    std::vector<int64_t> shape, stride(static_cast<size_t>(t.ndim()));
    for (int d = 0; d < t.ndim(); ++d) shape.push_back(t.dim(d));
    int64_t s = 1;
    for (int d = t.ndim() - 1; d >= 0; --d) {
      stride[static_cast<size_t>(d)] = s;
      s *= t.dim(d);
    }
    tuple(pkl, shape);
    tuple(pkl, stride);
    pkl += '\x89';                           // NEWFALSE (requires_grad)
    pkl += "ccollections\nOrderedDict\n)R";  // backward hooks: OrderedDict()
    pkl += 't';                              // the arguments
    pkl += 'R';                              // REDUCE
    entries.emplace_back("archive/data/" + key,
                         std::string(static_cast<const char*>(t.raw()), t.nbytes()));
  }
  pkl += 'u';  // SETITEMS
  pkl += 's';  // SETITEM
  pkl += '.';  // STOP
  entries.insert(entries.begin(), {"archive/data.pkl", pkl});
  entries.emplace_back("archive/version", "3\n");

  // ZIP, stored entries; each entry's data at a multiple of 64 (padding in the extra field).
  std::string zip, central;
  for (const auto& [name, bytes] : entries) {
    const uint64_t offset = zip.size();
    const size_t header = 30 + name.size() + 4;
    const size_t pad = (64 - (offset + header) % 64) % 64;
    const uint32_t crc = crc32(bytes);
    auto common = [&](std::string& o) {
      le(o, 0, 2);  // flags
      le(o, 0, 2);  // method: stored
      le(o, 0, 4);  // time, date
      le(o, crc, 4);
      le(o, bytes.size(), 4);
      le(o, bytes.size(), 4);
      le(o, name.size(), 2);
    };
    le(zip, 0x04034b50, 4);
    le(zip, 20, 2);
    common(zip);
    le(zip, 4 + pad, 2);
    zip += name;
    le(zip, 0x4246, 2);  // a private extra field of `pad` zero bytes
    le(zip, pad, 2);
    zip.append(pad, '\0');
    zip += bytes;
    le(central, 0x02014b50, 4);
    le(central, 20, 2);
    le(central, 20, 2);
    common(central);
    le(central, 0, 2);  // extra
    le(central, 0, 2);  // comment
    le(central, 0, 2);  // disk
    le(central, 0, 2);  // internal attributes
    le(central, 0, 4);  // external attributes
    le(central, offset, 4);
    central += name;
  }
  const uint64_t cd_offset = zip.size();
  zip += central;
  le(zip, 0x06054b50, 4);
  le(zip, 0, 4);
  le(zip, entries.size(), 2);
  le(zip, entries.size(), 2);
  le(zip, central.size(), 4);
  le(zip, cd_offset, 4);
  le(zip, 0, 2);
  std::ofstream out(path, std::ios::binary);
  out.write(zip.data(), static_cast<std::streamsize>(zip.size()));
  DR_CHECK(out.good(), "test", "cannot write ", path);
}

}  // namespace darkroom::pipeline::test
