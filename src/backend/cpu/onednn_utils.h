// Thin wrappers over oneDNN: the process-wide engine and stream, dtype mapping, a
// CHECK macro that names the failing call, a cache of primitives keyed by their
// shapes, and a cache of weights reordered into the blocked layouts primitives want.
#pragma once

#include <dnnl.hpp>
#include <functional>
#include <list>
#include <mutex>
#include <string>
#include <unordered_map>

#include "core/tensor.h"

namespace darkroom::cpu::onednn {

dnnl::engine& engine();
dnnl::stream& stream();

dnnl::memory::data_type to_dnnl(DType t);

// True when the CPU runs bf16 dot products natively (AVX512-BF16 or AMX); otherwise
// oneDNN emulates bf16 with f32 FMAs.
bool has_native_bf16();
// "avx512_core_amx", "avx512_core", ... as oneDNN reports the effective ISA.
std::string isa_name();

// Wraps a tensor's memory (no copy) as a oneDNN memory with the given descriptor.
dnnl::memory wrap(const dnnl::memory::desc& md, const Tensor& t);

// Least-recently-used cache of primitives by a string key made from shapes, dtypes and
// parameters. oneDNN has its own primitive cache, but creating a primitive descriptor
// costs tens of microseconds that a denoiser step should not pay hundreds of times.
template <class Value>
class LruCache {
 public:
  explicit LruCache(size_t capacity) : capacity_(capacity) {}
  Value get_or_create(const std::string& key, const std::function<Value()>& make) {
    std::lock_guard lock(mu_);
    auto it = index_.find(key);
    if (it != index_.end()) {
      order_.splice(order_.begin(), order_, it->second);
      return it->second->second;
    }
    order_.emplace_front(key, make());
    index_[key] = order_.begin();
    if (order_.size() > capacity_) {
      index_.erase(order_.back().first);
      order_.pop_back();
    }
    return order_.front().second;
  }
  void clear() {
    std::lock_guard lock(mu_);
    order_.clear();
    index_.clear();
  }

 private:
  size_t capacity_;
  std::mutex mu_;
  std::list<std::pair<std::string, Value>> order_;
  std::unordered_map<std::string, typename std::list<std::pair<std::string, Value>>::iterator>
      index_;
};

// Weights reordered once into a primitive's preferred layout, keyed by the weight
// tensor's storage id and offset plus the target descriptor. Entries whose source
// storage has died are dropped on the next insert.
class WeightCache {
 public:
  dnnl::memory get(const Tensor& weight, const dnnl::memory::desc& plain,
                   const dnnl::memory::desc& wanted);
  void clear();
  size_t size() const;

 private:
  struct Entry {
    std::weak_ptr<Storage> source;
    dnnl::memory prepared;
  };
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;
};

WeightCache& weight_cache();

// A primitive with a weight operand (matmul for linear, convolution): its descriptors,
// the weight's plain (file) layout and the layout the primitive wants.
struct WeightedPlan {
  dnnl::primitive prim;
  dnnl::memory::desc src, weights_plain, weights_wanted, bias, dst;
};

// Runs `plan` on x → out with the weight reordered once (weight_cache()) and an
// optional bias; waits for completion.
void run_weighted(const WeightedPlan& plan, const Tensor& x, const Tensor& weight,
                  const Tensor& bias, const Tensor& out);

// "2x64x64x320" style text for cache keys.
std::string dims_key(const dnnl::memory::dims& d);

}  // namespace darkroom::cpu::onednn

#define DR_DNNL_CHECK(call)                                                 \
  do {                                                                      \
    try {                                                                   \
      call;                                                                 \
    } catch (const dnnl::error& e) {                                        \
      ::darkroom::fail("onednn", #call, " failed: ", e.what(), " (status ", \
                       static_cast<int>(e.status), ")");                    \
    }                                                                       \
  } while (0)
