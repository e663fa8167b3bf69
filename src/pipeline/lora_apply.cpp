#include "pipeline/lora_apply.h"

#include <utility>

#include "core/error.h"
#include "models/lora.h"
#include "pipeline/checkpoint_parts.h"

namespace darkroom::pipeline {
namespace {

template <class Net>
void add_shapes(const NetworkSource<Net>* src, std::map<std::string, Shape>& out) {
  if (!src) return;
  for (const auto& [name, parts] : src->renamed) {
    Shape s = src->weights.shape(parts[0]);
    s[0] = 0;
    for (const std::string& p : parts) s[0] += src->weights.shape(p)[0];
    out.emplace(src->checkpoint_prefix + name, s);
  }
  if (!src->renamed.empty()) return;
  const size_t skip = src->weights.prefix().size();
  for (const std::string& full : src->weights.available()) {
    const std::string_view rel = std::string_view(full).substr(skip);
    out.emplace(src->checkpoint_prefix + std::string(rel), src->weights.shape(rel));
  }
}

// A renamed tensor's base: the stored tensors `parts` (names after the weights' prefix)
// stacked by rows, f32.
Tensor stacked(const Weights& w, const std::vector<std::string>& parts) {
  std::vector<float> values;
  Shape shape;
  for (const std::string& p : parts) {
    const Tensor t = w.stored(w.prefix() + p);
    if (!t.defined()) return {};
    const std::vector<float> v = t.to_floats();
    values.insert(values.end(), v.begin(), v.end());
    if (shape.ndim() == 0) {
      shape = t.shape();
      shape[0] = 0;
    }
    shape[0] += t.dim(0);
  }
  return Tensor::from_floats(values, shape);
}

// The source's network with `loras` merged: patched copies in the weights' dtype under
// the source's own names (a renamed tensor split back into its parts' rows), every other
// tensor shared with the base network; adds the copies' size to `bytes` and, when `patched`
// is given, hands the copies out (full names of the weights).
template <class Net>
std::shared_ptr<const Net> rebuild(
    const NetworkSource<Net>& src, const std::vector<LoraUse>& loras, uint64_t& bytes,
    std::shared_ptr<const std::map<std::string, Tensor>>* patched = nullptr) {
  std::vector<std::pair<const LoraFile*, float>> stack;
  for (const LoraUse& l : loras) stack.emplace_back(l.file.get(), l.strength);
  const std::string& own = src.weights.prefix();
  const std::string& named = src.checkpoint_prefix;
  auto parts_of = [&](const std::string& rel) -> const std::vector<std::string>* {
    const auto it = src.renamed.find(rel);
    return it == src.renamed.end() ? nullptr : &it->second;
  };
  auto base = [&](const std::string& name) -> Tensor {
    if (name.compare(0, named.size(), named) != 0) return {};
    const std::string rel = name.substr(named.size());
    if (src.renamed.empty()) return src.weights.stored(own + rel);
    const auto* parts = parts_of(rel);
    return parts ? stacked(src.weights, *parts) : Tensor();
  };
  std::map<std::string, Tensor> overrides;
  for (auto& [name, t] : merged_weights(base, stack, src.weights.dtype())) {
    bytes += t.nbytes();
    const std::string rel = name.substr(named.size());
    const auto* parts = parts_of(rel);
    if (!parts) {
      overrides.emplace(own + rel, std::move(t));
      continue;
    }
    int64_t row = 0;
    for (const std::string& p : *parts) {
      const int64_t rows = src.weights.shape(p)[0];
      overrides.emplace(own + p, t.narrow0(row, row + rows));
      row += rows;
    }
  }
  if (patched && !overrides.empty())
    *patched = std::make_shared<const std::map<std::string, Tensor>>(overrides);
  return src.build(src.weights.with_overrides(std::move(overrides)));
}

}  // namespace

std::map<std::string, Shape> lora_base_shapes(const ModelHandle* model, const ClipHandle* clip) {
  std::map<std::string, Shape> out;
  if (model) add_shapes(model->unet_source.get(), out);
  if (clip) {
    add_shapes(clip->encoder_source.get(), out);
    add_shapes(clip->open_clip_source.get(), out);
  }
  return out;
}

std::vector<LoraUse> stack_of(const std::vector<LoraUse>& stack,
                              std::shared_ptr<const LoraFile> file, float strength) {
  std::vector<LoraUse> out = stack;
  out.push_back({std::move(file), strength});
  return out;
}

ModelHandle with_loras(const ModelHandle& model, std::vector<LoraUse> loras) {
  DR_CHECK(model.unet_source, "lora", model.source,
           ": this model was not loaded from a checkpoint that LoRAs can patch");
  ModelHandle out = model;
  out.lora_bytes = 0;
  out.lora_weights = nullptr;
  out.unet = rebuild(*model.unet_source, loras, out.lora_bytes, &out.lora_weights);
  attach_runner(out);
  out.loras = std::move(loras);
  return out;
}

ClipHandle with_loras(const ClipHandle& clip, std::vector<LoraUse> loras) {
  ClipHandle out = clip;
  out.lora_bytes = 0;
  if (clip.encoder_source) out.encoder = rebuild(*clip.encoder_source, loras, out.lora_bytes);
  if (clip.open_clip_source) out.open_clip = rebuild(*clip.open_clip_source, loras, out.lora_bytes);
  out.loras = std::move(loras);
  return out;
}

}  // namespace darkroom::pipeline
