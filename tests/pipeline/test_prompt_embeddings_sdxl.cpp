// Textual-inversion embeddings on an SDXL checkpoint: "embedding:name" with an SDXL-era file
// ("clip_l" [n, 768] for CLIP-L, "clip_g" [n, 1280] for bigG; here the tiny widths 32 and 48)
// through CLIPTextEncode (encode_text on the checkpoint's CLIP handle with the embeddings
// folder attached), against tools/fixtures/sdxl_embeddings.py: transformers' CLIPTextModel /
// CLIPTextModelWithProjection (the tiny SDXL's text models) with each file tensor as extra
// rows of that model's token table, penultimate layers concatenated [L ‖ G], ComfyUI's
// weight rule, pooled = bigG's projected output (data/pipeline/families/embeddings_ref).
//
// A file with "clip_l" only (ComfyUI, sd1_clip.py load_embed / set_up_textual_embeddings):
// bigG's lookup for "clip_g" falls back to the file's first tensor (clip_l), whose width is
// not bigG's; ComfyUI drops those vectors with a warning, shifts the later tokens left and
// pads the chunk's end, but keeps each token's weight at its unshifted position. darkroom
// leaves the word out of bigG's tokens, weights included: the same result when the weights
// after the word are 1 (tested here), not otherwise (not reproduced).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <string>

#include "io/safetensors.h"
#include "pipeline/checkpoint_loader.h"
#include "pipeline/clip_encode.h"
#include "pipeline/family_fixtures.h"

namespace darkroom::pipeline {
namespace {

const LoadedCheckpoint& sdxl() {
  static const LoadedCheckpoint ck = [] {
    const std::string path =
        (std::filesystem::temp_directory_path() /
         ("darkroom_embed_sdxl_" + std::to_string(::getpid()) + ".safetensors"))
            .string();
    test::write_family_checkpoint("sdxl.safetensors", path);
    auto tok = std::make_shared<const text::ClipTokenizer>(text::ClipTokenizer::load(
        std::string(DARKROOM_CLIP_DATA) + "/sd1_tokenizer",
        std::string(DARKROOM_CLIP_DATA) + "/bpe_simple_vocab_16e6.txt.gz"));
    LoadedCheckpoint out = load_checkpoint(path, tok, DType::F32);
    std::filesystem::remove(path);
    return out;
  }();
  return ck;
}

double max_diff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  const std::vector<float> x = a.to_floats(), y = b.to_floats();
  if (x.size() != y.size()) return 1e30;
  double m = 0;
  for (size_t i = 0; i < x.size(); ++i) m = std::max(m, std::fabs(double(x[i]) - y[i]));
  return m;
}

// sdxl_embeddings.py's PROMPT_TEXT.
const std::map<std::string, std::string>& prompts() {
  static const std::map<std::string, std::string> p = {
      {"weighted", "a photo of (embedding:xl_style:1.2) in a garden"},
      {"plain", "embedding:xl_style, a red cat"},
      // A file with "clip_l" only: bigG falls back to it, and its width is not bigG's, so
      // bigG leaves the word out (ComfyUI: a warning, the chunk padded at its end).
      {"l_only", "a embedding:l_only red cat"},
  };
  return p;
}

TEST(EmbeddingsSdxl, EachTextModelTakesItsTensorAsTransformersDoes) {
  const SafetensorsFile ref =
      SafetensorsFile::open(test::family_fixture("embeddings_ref.safetensors"));
  const ClipHandle with = with_embedding_folders(sdxl().clip, {test::family_fixture("embeddings")});
  for (const auto& [name, prompt] : prompts()) {
    const CondEntry e = encode_text(with, prompt);
    const double ec = max_diff(e.context, ref.tensor(name + ".context"));
    const double ep = max_diff(e.pooled, ref.tensor(name + ".pooled"));
    std::cout << "[embeddings sdxl] " << name << ": context max err " << ec << ", pooled " << ep
              << "\n";
    EXPECT_LE(ec, 1e-4) << prompt;
    EXPECT_LE(ep, 1e-4) << prompt;
  }
  // Without the folder "embedding:xl_style" is text: another context.
  const CondEntry as_text = encode_text(sdxl().clip, prompts().at("weighted"));
  EXPECT_GT(max_diff(as_text.context, ref.tensor("weighted.context")), 1e-2);
}

// CLIPTextEncodeSDXL with the same prompt on both sides is CLIPTextEncode's result.
TEST(EmbeddingsSdxl, SdxlNodeWithTheSamePromptOnBothSidesAgrees) {
  const SafetensorsFile ref =
      SafetensorsFile::open(test::family_fixture("embeddings_ref.safetensors"));
  const ClipHandle with = with_embedding_folders(sdxl().clip, {test::family_fixture("embeddings")});
  const std::string p = prompts().at("weighted");
  const CondEntry e = encode_text(with, p, p);
  EXPECT_LE(max_diff(e.context, ref.tensor("weighted.context")), 1e-4);
  EXPECT_LE(max_diff(e.pooled, ref.tensor("weighted.pooled")), 1e-4);
}

}  // namespace
}  // namespace darkroom::pipeline
