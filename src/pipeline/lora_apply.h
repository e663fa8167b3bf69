// LoRA stacks on loaded models (ComfyUI's LoraLoader / LoraLoaderModelOnly): the patched
// tensors are merged into copies (models/lora.h merged_weights) and the network is built
// again from its NetworkSource with those copies in place of the originals. Every other
// tensor is the base network's own (Weights::remember), so a rebuild costs the merge of
// the patched tensors, not a checkpoint load; the base is never written, so a different
// LoRA set is simply another rebuild from the same source.
//
//   auto base = lora_base_shapes(&model, &clip);
//   auto file = std::make_shared<const LoraFile>(LoraFile::open(path, base));
//   ModelHandle m = with_loras(model, stack_of(model.loras, file, 0.8f));
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/shape.h"
#include "pipeline/model_handles.h"

namespace darkroom::pipeline {

// Names (as in a single-file checkpoint) and shapes of every tensor that the model's UNet
// and the clip's encoders were built from (of a source with NetworkSource::renamed, the
// renamed tensors only): what LoraFile::open matches module names against. Either handle
// may be null.
std::map<std::string, Shape> lora_base_shapes(const ModelHandle* model, const ClipHandle* clip);

// `stack` with one more LoRA at `strength` on top.
std::vector<LoraUse> stack_of(const std::vector<LoraUse>& stack,
                              std::shared_ptr<const LoraFile> file, float strength);

// The model with exactly `loras` merged into its base UNet (in the order given; deltas
// add), a new UNet sharing every unpatched tensor with the base (the patched copies in
// ModelHandle::lora_weights). Throws
// "[lora] <source>: ..." when the model has no NetworkSource.
ModelHandle with_loras(const ModelHandle& model, std::vector<LoraUse> loras);
// The same for each text encoder of the clip that has a NetworkSource.
ClipHandle with_loras(const ClipHandle& clip, std::vector<LoraUse> loras);

}  // namespace darkroom::pipeline
