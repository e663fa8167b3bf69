// A value made on first use: LoraLoader's MODEL / CLIP carry their LoRA'd networks as a
// Deferred, so that a chain of loaders merges only the stack that a sampler or text
// encoder finally uses (ComfyUI likewise patches when the model is loaded, not in the
// loader). get() makes the value once; if making it throws, the next get() tries again.
#pragma once

#include <functional>
#include <mutex>
#include <utility>

namespace darkroom::pipeline {

template <class T>
class Deferred {
 public:
  explicit Deferred(std::function<T()> make) : make_(std::move(make)) {}

  const T& get() const {
    std::call_once(once_, [this] {
      value_ = make_();
      make_ = nullptr;  // drop what the maker held (the stack's files stay in `value_`)
    });
    return value_;
  }

 private:
  mutable std::once_flag once_;
  mutable std::function<T()> make_;
  mutable T value_{};
};

}  // namespace darkroom::pipeline
