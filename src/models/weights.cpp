#include "models/weights.h"

#include <algorithm>
#include <cstring>

#include "backend/ops.h"

namespace darkroom {

struct Weights::Source {
  std::shared_ptr<const SafetensorsFile> file;  // or
  std::map<std::string, Tensor, std::less<>> tensors;
  bool shapes_only = false;  // tensors are views of one zero buffer; never copied
  std::string name;          // for messages: the file path or "in-memory weights"
  DeviceId device;
  DType dtype;
  mutable std::mutex mu;
  mutable std::set<std::string> used;
  mutable bool remember = false;                             // see Weights::remember()
  mutable std::map<std::string, Tensor, std::less<>> given;  // full name → tensor handed out

  bool contains(std::string_view full) const {
    return file ? file->find(full) != nullptr : tensors.find(full) != tensors.end();
  }
  Tensor raw(std::string_view full) const {
    return file ? file->tensor(full) : tensors.find(full)->second;
  }
};

Weights::Weights(std::shared_ptr<Source> source, std::string prefix)
    : source_(std::move(source)),
      prefix_(std::move(prefix)),
      device_(source_->device),
      dtype_(source_->dtype) {}

Weights Weights::from_file(std::shared_ptr<const SafetensorsFile> file, std::string prefix,
                           DeviceId device, DType dtype) {
  auto s = std::make_shared<Source>();
  s->name = file->path();
  s->file = std::move(file);
  s->device = device;
  s->dtype = dtype;
  return Weights(std::move(s), std::move(prefix));
}

Weights Weights::from_tensors(std::map<std::string, Tensor> tensors, std::string prefix,
                              DeviceId device, DType dtype) {
  auto s = std::make_shared<Source>();
  s->name = "in-memory weights";
  s->tensors.insert(tensors.begin(), tensors.end());
  s->device = device;
  s->dtype = dtype;
  return Weights(std::move(s), std::move(prefix));
}

Weights Weights::from_shapes(const std::map<std::string, Shape>& shapes, std::string prefix) {
  int64_t largest = 1;
  for (const auto& [n, shape] : shapes) largest = std::max(largest, shape.numel());
  auto zeros = Tensor::zeros({largest}, DType::F32);
  auto s = std::make_shared<Source>();
  s->name = "shape list";
  s->shapes_only = true;
  s->device = kCpu;
  s->dtype = DType::F32;
  for (const auto& [n, shape] : shapes)
    s->tensors.emplace(n, Tensor::view_of(zeros.storage(), 0, shape, DType::F32));
  return Weights(std::move(s), std::move(prefix));
}

bool Weights::has(std::string_view name) const {
  return source_->contains(prefix_ + std::string(name));
}

Shape Weights::shape(std::string_view name) const {
  const std::string full = prefix_ + std::string(name);
  DR_CHECK(source_->contains(full), "weights", source_->name, ": missing tensor '", full, "'");
  return source_->raw(full).shape();
}

Tensor Weights::get(std::string_view name) const {
  const std::string full = prefix_ + std::string(name);
  DR_CHECK(source_->contains(full), "weights", source_->name, ": missing tensor '", full, "'");
  Tensor t = source_->raw(full);
  DR_CHECK(is_float(t.dtype()), "weights", source_->name, ": tensor '", full, "' has dtype ",
           dtype_name(t.dtype()), ", not a float type");
  {
    std::lock_guard lock(source_->mu);
    source_->used.insert(full);
  }
  if (source_->shapes_only) return t;
  if (overrides_) {
    if (auto it = overrides_->find(full); it != overrides_->end()) {
      const Tensor& o = it->second;
      DR_CHECK(o.shape() == t.shape(), "weights", source_->name, ": the override of '", full,
               "' has shape ", o.shape(), ", the stored tensor ", t.shape());
      return ops::to_device(o.dtype() == dtype_ ? o : ops::cast(o, dtype_), device_);
    }
  }
  std::unique_lock lock(source_->mu);
  if (source_->remember) {
    if (auto it = source_->given.find(full); it != source_->given.end()) return it->second;
  }
  lock.unlock();
  // Always produce an owned, aligned copy in the compute dtype: file views are
  // read-only and may be unaligned, and the copy is what gets uploaded or reordered.
  Tensor out;
  if (t.dtype() == dtype_) {
    out = Tensor::empty(t.shape(), dtype_);
    std::memcpy(out.raw(), t.raw(), t.nbytes());
  } else {
    out = ops::cast(t, dtype_);
  }
  out = ops::to_device(out, device_);
  lock.lock();
  if (source_->remember) source_->given.emplace(full, out);
  return out;
}

void Weights::remember() const {
  std::lock_guard lock(source_->mu);
  source_->remember = true;
}

Weights Weights::with_overrides(std::map<std::string, Tensor> overrides) const {
  Weights w(source_, prefix_);
  w.overrides_ = std::make_shared<const std::map<std::string, Tensor, std::less<>>>(
      overrides.begin(), overrides.end());
  return w;
}

Tensor Weights::stored(std::string_view full_name) const {
  return source_->contains(full_name) ? source_->raw(full_name) : Tensor();
}

Tensor Weights::get(std::string_view name, const Shape& expected) const {
  const std::string full = prefix_ + std::string(name);
  if (source_->contains(full)) {
    const Shape actual = source_->raw(full).shape();
    DR_CHECK(actual == expected, "weights", source_->name, ": tensor '", full, "' has shape ",
             actual, ", expected ", expected);
  }
  return get(name);
}

Tensor Weights::get_optional(std::string_view name, const Shape& expected) const {
  return has(name) ? get(name, expected) : Tensor();
}

Weights Weights::sub(std::string_view prefix) const {
  Weights w(source_, prefix_ + std::string(prefix));
  w.overrides_ = overrides_;
  return w;
}

std::set<std::string> Weights::used() const {
  std::lock_guard lock(source_->mu);
  return source_->used;
}

std::vector<std::string> Weights::available() const {
  std::vector<std::string> names;
  if (source_->file) {
    for (const TensorInfo& t : source_->file->tensors())
      if (t.name.rfind(prefix_, 0) == 0) names.push_back(t.name);
  } else {
    for (const auto& [n, t] : source_->tensors)
      if (n.rfind(prefix_, 0) == 0) names.push_back(n);
  }
  return names;
}

}  // namespace darkroom
