#include "pipeline/model_handles.h"

namespace darkroom::pipeline {

ModelHandle resolved(const ModelHandle& m) {
  if (!m.deferred) return m;
  const ModelHandle& built = m.deferred->get();
  ModelHandle out = m;
  out.unet = built.unet;
  out.runner = built.runner;
  out.lora_bytes = built.lora_bytes;
  out.lora_weights = built.lora_weights;
  out.deferred = nullptr;
  return out;
}

ClipHandle resolved(const ClipHandle& c) {
  if (!c.deferred) return c;
  const ClipHandle& built = c.deferred->get();
  ClipHandle out = c;
  out.encoder = built.encoder;
  out.open_clip = built.open_clip;
  out.lora_bytes = built.lora_bytes;
  out.deferred = nullptr;
  return out;
}

}  // namespace darkroom::pipeline
