// Random weights in a real architecture's names and shapes: for demos, benchmarks and
// tests of the whole pipeline without downloading a model. The values are seeded and
// scaled like a fresh network's (so activations stay finite through every layer), not
// trained: images made with them are noise.
//
//   rank ≥ 2 ".weight" (linear, conv, embedding tables): N(0, 1)/sqrt(fan_in), with
//             fan_in = the product of all but the first dimension
//   rank 1 ".weight" (GroupNorm, LayerNorm): ones
//   everything else (biases): zeros
//
// The normal draws are Irwin–Hall sums of four uniforms (cheap and vectorisable; their
// tails are short, which random init does not mind), from a splitmix64 stream per
// tensor seeded with the global seed and a hash of the name, so every tensor's values
// are independent of the others and of the order they are made in.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace darkroom::pipeline {

// One CPU tensor of `shape` in `dtype` (f32, f16 or bf16).
Tensor demo_tensor(const std::string& name, const Shape& shape, uint64_t seed, DType dtype);

// Writes every tensor of `list` with demo values to a safetensors file, with metadata
// "darkroom.demo" = "random weights — images are noise" plus `metadata`.
void write_demo_checkpoint(const std::string& path,
                           const std::vector<std::pair<std::string, Shape>>& list, uint64_t seed,
                           DType dtype,
                           const std::vector<std::pair<std::string, std::string>>& metadata = {});

}  // namespace darkroom::pipeline
