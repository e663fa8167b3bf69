#include "io/torch_checkpoint.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "io/mapped_file.h"

namespace darkroom {
namespace {

// Copies a strided tensor into contiguous `dst`, element by element (only for the rare
// non-contiguous checkpoint tensor). `src` points at element 0.
void gather_strided(const uint8_t* src, uint8_t* dst, const std::vector<int64_t>& size,
                    const std::vector<int64_t>& stride, size_t elem) {
  const size_t nd = size.size();
  std::vector<int64_t> index(nd, 0);
  int64_t numel = 1;
  for (int64_t d : size) numel *= d;
  for (int64_t n = 0; n < numel; ++n) {
    int64_t off = 0;
    for (size_t d = 0; d < nd; ++d) off += index[d] * stride[d];
    std::memcpy(dst + static_cast<size_t>(n) * elem, src + static_cast<size_t>(off) * elem, elem);
    for (size_t d = nd; d-- > 0;) {
      if (++index[d] < size[d]) break;
      index[d] = 0;
    }
  }
}

}  // namespace

TorchCheckpoint TorchCheckpoint::open(const std::string& path) {
  auto map = std::make_shared<const MappedFile>(MappedFile::open(path, "ckpt"));
  TorchCheckpoint c;
  c.path_ = path;
  c.archive_ = parse_torch_archive(map->bytes(), path);
  // As in SafetensorsFile: the release function only holds the mapping.
  void* base = const_cast<uint8_t*>(map->data());
  c.storage_ = std::make_shared<Storage>(base, map->size(), kCpu, [map](void*) {});
  c.map_ = std::move(map);
  return c;
}

const CkptTensorInfo* TorchCheckpoint::find(std::string_view name) const {
  auto it =
      std::lower_bound(archive_.tensors.begin(), archive_.tensors.end(), name,
                       [](const CkptTensorInfo& t, std::string_view n) { return t.name < n; });
  return it != archive_.tensors.end() && it->name == name ? &*it : nullptr;
}

Tensor TorchCheckpoint::tensor(std::string_view name) const {
  const CkptTensorInfo* info = find(name);
  if (info == nullptr) fail("ckpt", path_, ": no tensor named '", name, "'");
  // An empty tensor reads nothing (and its offset need not lie inside the storage).
  if (info->shape.numel() == 0) return Tensor::empty(info->shape, info->dtype);
  const CkptEntry& entry = archive_.storages.at(info->storage);
  if (entry.stored && info->contiguous)
    return Tensor::view_of(storage_, static_cast<size_t>(entry.data_offset + info->byte_offset),
                           info->shape, info->dtype);
  std::vector<uint8_t> scratch;
  std::span<const uint8_t> bytes = ckpt_entry_bytes(map_->bytes(), entry, path_, scratch);
  Tensor out = Tensor::empty(info->shape, info->dtype);
  // parse_torch_archive checked that every element read lies inside the storage.
  gather_strided(bytes.data() + info->byte_offset, static_cast<uint8_t*>(out.raw()),
                 info->shape.dims(), info->stride, dtype_size(info->dtype));
  return out;
}

}  // namespace darkroom
