// A restricted pickle virtual machine for the data.pkl of a torch.save checkpoint.
//
// Python's pickle is a program: GLOBAL names any importable callable and REDUCE calls
// it, so unpickling a hostile model file runs its code. This VM runs nothing. It knows
// the handful of opcodes a PyTorch state dict is written with (protocol 2, plus the
// protocol 4 forms FRAME, SHORT_BINUNICODE, STACK_GLOBAL and MEMOIZE) and a fixed
// allowlist of globals, the subset of torch's own weights_only=True list that a state
// dict needs:
//
//   collections.OrderedDict                     → an empty dict (REDUCE with no args)
//   torch._utils._rebuild_tensor_v2             → a tensor description (no data read)
//   torch._utils._rebuild_parameter             → the tensor it wraps
//   torch.<Float|Half|BFloat16|...>Storage,
//   torch.storage.UntypedStorage                → storage types, only inside BINPERSID
//   torch.<dtype> (torch.float16, ...)          → inert values
//
// Any other GLOBAL ends the parse at once with "refuses global 'posix.system' (only
// PyTorch state-dict types are allowed)", before anything could use it. Every read,
// memo index and stack access is bounds-checked, and stack depth, memo size, string
// length and object count are limited, so a hostile data.pkl can only be refused.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/dtype.h"

namespace darkroom {

enum class PickleKind : uint8_t {
  None,
  Bool,
  Int,
  Float,
  String,
  Tuple,
  List,
  Dict,
  Global,   // an allowed global, by its dotted name ("collections.OrderedDict")
  Storage,  // a storage reference from BINPERSID
  Tensor,   // the result of _rebuild_tensor_v2
};

struct PickleValue;

// ('storage', torch.FloatStorage, key, location, numel): the tensor bytes are the
// archive entry "<prefix>/data/<key>", numel elements of `dtype`.
struct PickleStorage {
  std::string key;
  DType dtype = DType::U8;
  int64_t numel = 0;
};

// _rebuild_tensor_v2(storage, storage_offset, size, stride, ...); offsets and strides
// in elements. Non-negative and within the storage's numel (checked by the VM).
struct PickleTensor {
  PickleStorage storage;
  int64_t storage_offset = 0;
  std::vector<int64_t> size;
  std::vector<int64_t> stride;
};

// Objects live in the heap of a PickleResult and refer to each other by pointer, so
// shared and even cyclic references (a list appended to itself) cost nothing and leak
// nothing.
struct PickleValue {
  PickleKind kind = PickleKind::None;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;                                                           // String, Global name
  std::vector<const PickleValue*> items;                                   // Tuple, List
  std::vector<std::pair<const PickleValue*, const PickleValue*>> entries;  // Dict, in order
  PickleTensor tensor;  // Tensor; Storage uses .storage
};

struct PickleResult {
  std::deque<PickleValue> heap;
  const PickleValue* root = nullptr;
};

// Limits on what one data.pkl may build (an object is ~250 bytes here, so 2M objects
// cap the heap near 500 MB); a real SD checkpoint needs some 25,000
// objects and a stack a few deep.
struct PickleLimits {
  size_t max_objects = 2u << 20;
  size_t max_stack = 1u << 20;
  size_t max_marks = 4096;
  size_t max_memo = 16u << 20;
  size_t max_string = 1u << 20;
  size_t max_ndim = 64;
};

// Runs `pickle` to its STOP opcode. `source` names it in errors ("<path>" or
// "<memory>"): "[ckpt] <source>: ...". Throws only darkroom::Error (or bad_alloc).
PickleResult run_restricted_pickle(std::span<const uint8_t> pickle, std::string_view source,
                                   const PickleLimits& limits = {});

// The storage type name without "torch." ("FloatStorage") → dtype; nullopt-like
// false if it is not a storage type this reader knows.
bool torch_storage_dtype(std::string_view storage_type, DType* dtype);

}  // namespace darkroom
