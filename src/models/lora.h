// LoRA files (.safetensors) read into patches on a base checkpoint's tensors, and the
// weight deltas they add.
//
//   auto base = base_shapes(checkpoint);                    // the checkpoint's names
//   LoraFile lora = LoraFile::open(path, base);
//   for (auto& name : lora.unmatched()) log("lora key not loaded: " + name);
//   auto overrides = merged_weights(checkpoint, {{&lora, 0.8f}}, DType::F16);
//
// Formats (module names: see lora_keys.h; per-module tensors below):
//   LoRA / LoCon  kohya ".lora_up.weight" [O, r(, 1, 1)], ".lora_down.weight" [r, I(, k, k)],
//                 optional ".lora_mid.weight" [r, r, k, k] (Tucker; down is then
//                 [r, I, 1, 1]); PEFT ".lora_B.weight" / ".lora_A.weight"; older diffusers
//                 "_lora.up/down.weight", ".lora.up/down.weight", ".lora_linear_layer.*".
//   LoHa          ".hada_w1_a" [O, r], ".hada_w1_b" [r, I·k·k], w2 likewise; optional
//                 ".hada_t1" / ".hada_t2" [r, r, k, k] (Tucker: w1_a [r, O], w1_b [r, I]).
//   LoKr          ".lokr_w1" or ".lokr_w1_a" · ".lokr_w1_b"; ".lokr_w2" or ".lokr_w2_a" ·
//                 ".lokr_w2_b", optional ".lokr_t2" (Tucker, as LoHa's).
//   ".alpha"      scalar; absent → scale 1 (LoRA, LoHa). PEFT files carry none, but
//                 diffusers records lora_alpha per component in the header's
//                 "lora_adapter_metadata"; it is honoured (diffusers fuses with
//                 alpha / r; ComfyUI ignores it and uses 1).
// Deltas (all f32, as ComfyUI's weight adapters compute them, then reshaped to the target):
//   LoRA  ΔW = s · alpha/r · up[O, r] @ down[r, I·k·k]          (r = down's dim 0)
//   LoHa  ΔW = s · alpha/r · (w1_a @ w1_b) ⊙ (w2_a @ w2_b)        (r = w1_b's dim 0)
//   LoKr  ΔW = s · c · kron(w1, w2); c = alpha / r only when w1 or w2 is given as a
//         product (r = the dim 0 of the last such _b), else 1.
// Layout: the targets are the file's own tensors as torch stores them (Linear [O, I],
// Conv2d [O, I, kh, kw]); darkroom's Weights hand out conv weights in that same layout
// (layers.h Conv2d::load reads [O, I, k, k]), so a delta adds to Weights' tensors as is.
// Not supported (reported as unmatched): DoRA (".dora_scale"), full-weight ".diff",
// GLoRA, OFT/BOFT, bias patches, OpenCLIP's text_projection.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "io/safetensors.h"
#include "models/lora_keys.h"

namespace darkroom {

enum class LoraKind { Lora, LoHa, LoKr };

struct LoraPatch {
  LoraTarget target;  // base tensor (and rows) it patches
  Shape shape;        // of the delta: the target's, or [rows, …] for a row range
  LoraKind kind = LoraKind::Lora;
  std::string module;  // its name in the LoRA file
  // The module's tensors by part ("up", "down", "mid", "hada_w1_a", "lokr_w2", …), f32.
  std::map<std::string, Tensor> parts;
  float alpha = 0;  // valid when has_alpha
  bool has_alpha = false;
};

class LoraFile {
 public:
  // Reads every tensor of `path` and matches its modules to `base` (a checkpoint's tensor
  // names and shapes). Throws "[lora] <path>: ..." for a malformed module (inner ranks
  // that disagree, a delta whose size is not the target's, a missing half).
  static LoraFile open(const std::string& path, const std::map<std::string, Shape>& base);

  const std::string& path() const { return path_; }
  const std::vector<LoraPatch>& patches() const { return patches_; }
  // Tensor names of the file that patch nothing in `base` (sorted).
  const std::vector<std::string>& unmatched() const { return unmatched_; }

 private:
  std::string path_;
  std::vector<LoraPatch> patches_;
  std::vector<std::string> unmatched_;
};

// Names and shapes of every tensor of a checkpoint.
std::map<std::string, Shape> base_shapes(const SafetensorsFile& file);

// f32 ΔW [patch.shape] at `strength`.
Tensor lora_delta(const LoraPatch& patch, float strength);

// f32 copy of `base` (any float dtype, the target's shape) with `delta` added to rows
// [target.row_begin, row_end) (all rows when both are 0).
Tensor add_lora_delta(const Tensor& base, const Tensor& delta, const LoraTarget& target);

// The base tensors that the LoRAs patch, each base + Σ strength · ΔW computed in f32 and
// cast to `dtype`, by full name; tensors no LoRA touches are not in the map (the caller
// keeps using the base's). Stacked LoRAs add. Patches whose target `base` does not hold
// are skipped (a UNet and a CLIP kept in separate files are merged one file at a time).
std::map<std::string, Tensor> merged_weights(
    const SafetensorsFile& base, const std::vector<std::pair<const LoraFile*, float>>& loras,
    DType dtype);
// The same over any source of base tensors: `base_tensor(full name)` gives the tensor
// (any float dtype, CPU) or an undefined Tensor when it has none.
std::map<std::string, Tensor> merged_weights(
    const std::function<Tensor(const std::string&)>& base_tensor,
    const std::vector<std::pair<const LoraFile*, float>>& loras, DType dtype);

}  // namespace darkroom
