// Shared by the text-encoder LoRA tests (LoraDiffusersFolder, LoraRefinerTe): a LoRA file
// from tests/data/lora merged into a CLIP as LoraLoader's clip half does, and the tower's
// hidden states / pooled output against a PEFT reference file holding "ids",
// "<run>.hidden" [L + 1, 1, T, C] and "<run>.pooled".
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "models/lora.h"
#include "pipeline/lora_apply.h"
#include "test_util.h"

namespace darkroom::pipeline::test {

inline std::string lora_file(const std::string& name) {
  return std::string(DARKROOM_TEST_DATA) + "/lora/" + name;
}

inline std::shared_ptr<const text::ClipTokenizer> sd1_tokenizer() {
  static const auto t = std::make_shared<const text::ClipTokenizer>(
      text::ClipTokenizer::load(std::string(DARKROOM_CLIP_DATA) + "/sd1_tokenizer",
                                std::string(DARKROOM_CLIP_DATA) + "/bpe_simple_vocab_16e6.txt.gz"));
  return t;
}

struct PatchedClip {
  ClipHandle clip;
  std::vector<std::string> unmatched;
  size_t patches = 0;
};

// LoraLoader's clip half: the file matched against the clip's encoders, merged at `strength`.
inline PatchedClip with_lora(const ClipHandle& clip, const std::string& name, float strength) {
  const auto file = std::make_shared<const LoraFile>(
      LoraFile::open(lora_file(name), lora_base_shapes(nullptr, &clip)));
  return {with_loras(clip, {{file, strength}}), file->unmatched(), file->patches().size()};
}

// The worst difference of the tower's hidden states from ref's "<run>.hidden"; a tower with
// fewer layers (an SD 2.x diffusers folder) is compared over the layers it has.
inline double hidden_error(const SafetensorsFile& ref, const ClipTextEncoder& e,
                           const std::string& run) {
  const std::vector<Tensor> got = e.hidden_states(ref.tensor("ids"));
  const Tensor want = ref.tensor(run + ".hidden");
  EXPECT_LE(static_cast<int64_t>(got.size()), want.dim(0));
  double worst = 0;
  for (size_t i = 0; i < got.size() && static_cast<int64_t>(i) < want.dim(0); ++i) {
    const auto layer = static_cast<int64_t>(i);
    worst = std::max(worst, darkroom::test::max_abs_diff(
                                got[i], want.narrow0(layer, layer + 1).reshape(got[i].shape())));
  }
  return worst;
}

inline double pooled_error(const SafetensorsFile& ref, const ClipTextEncoder& e,
                           const std::string& run) {
  const ClipTextOutput out = e.encode(ref.tensor("ids"), ClipEncodeOptions{1, true, true});
  const Tensor want = ref.tensor(run + ".pooled");
  return darkroom::test::max_abs_diff(out.pooled, want.reshape(out.pooled.shape()));
}

// Hidden states of two towers on ref's ids, layer by layer, as far as the shorter goes.
inline double tower_difference(const SafetensorsFile& ref, const ClipTextEncoder& a,
                               const ClipTextEncoder& b) {
  const Tensor ids = ref.tensor("ids");
  const std::vector<Tensor> x = a.hidden_states(ids), y = b.hidden_states(ids);
  double worst = 0;
  for (size_t i = 0; i < std::min(x.size(), y.size()); ++i)
    worst = std::max(worst, darkroom::test::max_abs_diff(x[i], y[i]));
  return worst;
}

}  // namespace darkroom::pipeline::test
