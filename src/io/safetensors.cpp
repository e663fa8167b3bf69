#include "io/safetensors.h"

#include <utility>

#include "core/error.h"
#include "io/mapped_file.h"

namespace darkroom {

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  auto map = std::make_shared<const MappedFile>(MappedFile::open(path, "safetensors"));
  SafetensorsFile f;
  f.path_ = path;
  f.header_ = parse_safetensors_header(map->bytes(), path);
  for (size_t i = 0; i < f.header_.tensors.size(); ++i)
    f.by_name_.emplace(f.header_.tensors[i].name, i);
  // The release function owns nothing but a reference to the mapping; views made from
  // this storage keep the file mapped after the SafetensorsFile is gone.
  void* base = const_cast<uint8_t*>(map->data());
  const size_t size = map->size();
  f.storage_ = std::make_shared<Storage>(base, size, kCpu, [map = std::move(map)](void*) {});
  return f;
}

const TensorInfo* SafetensorsFile::find(std::string_view name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &header_.tensors[it->second];
}

Tensor SafetensorsFile::tensor(std::string_view name) const {
  const TensorInfo* info = find(name);
  if (info == nullptr) fail("safetensors", path_, ": no tensor named '", name, "'");
  return Tensor::view_of(storage_, static_cast<size_t>(header_.data_offset + info->begin),
                         info->shape, info->dtype);
}

}  // namespace darkroom
