#include "core/tensor.h"

#include <cstring>

#include "core/half.h"

namespace darkroom {

std::string Shape::str() const {
  std::string s = "[";
  for (size_t i = 0; i < dims_.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(dims_[i]);
  }
  return s + "]";
}

Tensor Tensor::empty(const Shape& shape, DType dtype, DeviceId device) {
  for (int64_t d : shape.dims()) DR_CHECK(d >= 0, "tensor", "negative dimension in ", shape);
  Tensor t;
  t.shape_ = shape;
  t.dtype_ = dtype;
  t.storage_ = allocator_for(device.type).allocate(t.nbytes(), device);
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype) {
  Tensor t = empty(shape, dtype);
  std::memset(t.raw(), 0, t.nbytes());
  return t;
}

Tensor Tensor::view_of(std::shared_ptr<Storage> storage, size_t byte_offset, const Shape& shape,
                       DType dtype) {
  Tensor t;
  t.storage_ = std::move(storage);
  t.offset_ = byte_offset;
  t.shape_ = shape;
  t.dtype_ = dtype;
  DR_ASSERT(byte_offset + t.nbytes() <= t.storage_->bytes(), "view past the end of its storage");
  return t;
}

Tensor Tensor::from_floats(std::span<const float> values, const Shape& shape, DType dtype) {
  DR_CHECK(static_cast<int64_t>(values.size()) == shape.numel(), "tensor", values.size(),
           " values do not fill shape ", shape);
  Tensor t = empty(shape, dtype);
  switch (dtype) {
    case DType::F32:
      std::memcpy(t.raw(), values.data(), values.size() * 4);
      break;
    case DType::BF16:
      for (size_t i = 0; i < values.size(); ++i) t.data<bf16>()[i] = to_bf16(values[i]);
      break;
    case DType::F16:
      for (size_t i = 0; i < values.size(); ++i) t.data<f16>()[i] = to_f16(values[i]);
      break;
    default:
      fail("tensor", "from_floats to ", dtype_name(dtype), " is not supported");
  }
  return t;
}

Tensor Tensor::reshape(const Shape& shape) const {
  Shape s = shape;
  int infer = -1;
  int64_t known = 1;
  for (int i = 0; i < s.ndim(); ++i) {
    if (s[i] == -1) {
      DR_CHECK(infer < 0, "reshape", "more than one -1 in ", shape);
      infer = i;
    } else {
      known *= s[i];
    }
  }
  if (infer >= 0) {
    DR_CHECK(known > 0 && numel() % known == 0, "reshape", "cannot reshape ", shape_, " to ",
             shape);
    s[infer] = numel() / known;
  }
  DR_CHECK(s.numel() == numel(), "reshape", "cannot reshape ", shape_, " (", numel(),
           " elements) to ", shape);
  Tensor t = *this;
  t.shape_ = s;
  return t;
}

Tensor Tensor::narrow0(int64_t begin, int64_t end) const {
  DR_CHECK(ndim() >= 1 && 0 <= begin && begin <= end && end <= dim(0), "narrow", "rows [", begin,
           ", ", end, ") out of range for ", shape_);
  Tensor t = *this;
  t.shape_[0] = end - begin;
  t.offset_ += static_cast<size_t>(begin) * (nbytes() / static_cast<size_t>(dim(0) ? dim(0) : 1));
  return t;
}

std::vector<float> Tensor::to_floats() const {
  DR_CHECK(device().type == DeviceType::Cpu, "tensor", "to_floats needs a CPU tensor, got ",
           device());
  const size_t n = static_cast<size_t>(numel());
  std::vector<float> out(n);
  const void* p = raw();
  for (size_t i = 0; i < n; ++i) {
    switch (dtype_) {
      case DType::F32:
        out[i] = static_cast<const float*>(p)[i];
        break;
      case DType::F16:
        out[i] = to_f32(static_cast<const f16*>(p)[i]);
        break;
      case DType::BF16:
        out[i] = to_f32(static_cast<const bf16*>(p)[i]);
        break;
      case DType::F8E4M3:
        out[i] = f8e4m3_to_f32(static_cast<const uint8_t*>(p)[i]);
        break;
      case DType::F8E5M2:
        out[i] = f8e5m2_to_f32(static_cast<const uint8_t*>(p)[i]);
        break;
      case DType::F64:
        out[i] = static_cast<float>(static_cast<const double*>(p)[i]);
        break;
      case DType::I64:
        out[i] = static_cast<float>(static_cast<const int64_t*>(p)[i]);
        break;
      case DType::I32:
        out[i] = static_cast<float>(static_cast<const int32_t*>(p)[i]);
        break;
      case DType::I16:
        out[i] = static_cast<const int16_t*>(p)[i];
        break;
      case DType::I8:
        out[i] = static_cast<const int8_t*>(p)[i];
        break;
      case DType::U8:
      case DType::Bool:
        out[i] = static_cast<const uint8_t*>(p)[i];
        break;
    }
  }
  return out;
}

}  // namespace darkroom
