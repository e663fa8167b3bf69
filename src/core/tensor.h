// Tensor: a contiguous, row-major block of one dtype on one device, viewing shared
// Storage. Activations are NHWC ([N, H, W, C]) or token-major ([N, T, C]). Views
// (reshape, a slice along dim 0) share storage; everything else makes a new tensor.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <vector>

#include "core/device_id.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/shape.h"
#include "core/storage.h"

namespace darkroom {

class Tensor {
 public:
  Tensor() = default;

  // Uninitialised memory from the device's allocator (or the active arena on the CPU).
  static Tensor empty(const Shape& shape, DType dtype, DeviceId device = kCpu);
  // CPU only: zero-filled.
  static Tensor zeros(const Shape& shape, DType dtype);
  // Wraps existing storage (for example an mmap'd file); `byte_offset` is where the
  // first element lies.
  static Tensor view_of(std::shared_ptr<Storage> storage, size_t byte_offset, const Shape& shape,
                        DType dtype);
  // CPU helpers for tests and tools: f32 values converted to `dtype` (f32/f16/bf16).
  static Tensor from_floats(std::span<const float> values, const Shape& shape,
                            DType dtype = DType::F32);

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  int ndim() const { return shape_.ndim(); }
  int64_t dim(int i) const { return shape_[i]; }
  DType dtype() const { return dtype_; }
  DeviceId device() const { return storage_ ? storage_->device() : kCpu; }
  int64_t numel() const { return shape_.numel(); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }
  size_t byte_offset() const { return offset_; }
  const std::shared_ptr<Storage>& storage() const { return storage_; }

  void* raw() const { return static_cast<char*>(storage_->data()) + offset_; }
  template <class T>
  T* data() const {
    return static_cast<T*>(raw());
  }

  // Same storage, new shape with equal numel; one dimension may be -1 (inferred).
  Tensor reshape(const Shape& shape) const;
  // Rows [begin, end) of dimension 0, sharing storage.
  Tensor narrow0(int64_t begin, int64_t end) const;

  // CPU only: every element as f32 (from f32, f16, bf16, f8, f64 or integers).
  std::vector<float> to_floats() const;

 private:
  std::shared_ptr<Storage> storage_;
  size_t offset_ = 0;
  Shape shape_;
  DType dtype_ = DType::F32;
};

}  // namespace darkroom
