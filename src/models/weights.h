// Weights: the named tensors a network reads, from one or more checkpoint files, each
// cast to the compute dtype and placed on the compute device when first asked for.
// Names are the checkpoint's own (ldm/sgm single-file names; diffusers folders are
// renamed to those by the loader before they get here). A Weights keeps a record of
// every name it handed out, so a test can check that a network consumes exactly the
// tensors a real checkpoint holds (shared/reference/*.tsv).
//
//   Weights w = Weights::from_file(path, "model.diffusion_model.", kCpu, DType::F32);
//   Tensor k = w.get("input_blocks.0.0.weight", {320, 4, 3, 3});
//   Weights block = w.sub("input_blocks.1.0.");
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/tensor.h"
#include "io/safetensors.h"

namespace darkroom {

class Weights {
 public:
  // A checkpoint file viewed under `prefix` (e.g. "model.diffusion_model.").
  static Weights from_file(std::shared_ptr<const SafetensorsFile> file, std::string prefix,
                           DeviceId device, DType dtype);
  // Tensors held in memory (tests, random-weight benchmarks), under `prefix`.
  static Weights from_tensors(std::map<std::string, Tensor> tensors, std::string prefix,
                              DeviceId device, DType dtype);

  // Names and shapes only (e.g. read from shared/reference/*.tsv): every get() returns a
  // read-only f32 view of one shared zero buffer with the right shape. For checking that
  // a network's loader asks for exactly a real checkpoint's tensors, without the memory
  // of its weights; such weights must never be run.
  static Weights from_shapes(const std::map<std::string, Shape>& shapes, std::string prefix);

  // prefix + name, cast to dtype() on device(); throws "[weights] <source>: missing
  // tensor '<full name>'" or a shape mismatch naming both shapes.
  Tensor get(std::string_view name) const;
  Tensor get(std::string_view name, const Shape& expected) const;
  // As get(), but undefined when absent.
  Tensor get_optional(std::string_view name, const Shape& expected) const;
  bool has(std::string_view name) const;
  // The stored shape of prefix + name, without reading or recording it; throws if absent.
  Shape shape(std::string_view name) const;

  // The same source with a longer prefix; shares the record of used names.
  Weights sub(std::string_view prefix) const;

  // From now on every get() of this source (any sub() of it) keeps the tensor it returns
  // and returns that same tensor (same storage) when asked again, instead of a fresh copy.
  // The network built from these weights holds those tensors anyway, so this costs no
  // memory while it lives; a second network built from the same source (with_overrides)
  // then shares every tensor it does not override, and oneDNN's reordered copies (keyed
  // by storage) with it. Callers must not write into tensors they get.
  void remember() const;
  // The same source where the tensors named in `overrides` (full names, any float dtype,
  // CPU) replace the source's: get() casts them to dtype() on device(). Shares the record
  // of used names and what remember() kept.
  Weights with_overrides(std::map<std::string, Tensor> overrides) const;
  // The stored tensor under a full name (the file's dtype, CPU, read-only; no copy and no
  // record of use), or undefined when absent: what a LoRA patch starts from.
  Tensor stored(std::string_view full_name) const;

  DeviceId device() const { return device_; }
  DType dtype() const { return dtype_; }
  const std::string& prefix() const { return prefix_; }
  // Full names handed out so far (across every sub() of the same root).
  std::set<std::string> used() const;
  // Every full name in the source that starts with this prefix.
  std::vector<std::string> available() const;

 private:
  struct Source;
  Weights(std::shared_ptr<Source> source, std::string prefix);

  std::shared_ptr<Source> source_;
  // with_overrides(): full name → replacement; shared by sub()s, null when none.
  std::shared_ptr<const std::map<std::string, Tensor, std::less<>>> overrides_;
  std::string prefix_;
  DeviceId device_;
  DType dtype_ = DType::F32;
};

}  // namespace darkroom
