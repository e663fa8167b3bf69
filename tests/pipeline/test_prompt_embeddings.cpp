// Textual-inversion embeddings ("embedding:name") as ComfyUI reads and applies them, against
// tools/fixtures/pipeline_golden.py: three files in the layouts ComfyUI's load_embed takes
// (data/pipeline/embeddings/: A1111's .safetensors "emb_params", A1111's .pt
// "string_to_param"/"*", an SDXL-era file with "clip_l" and "clip_g"), and prompts naming
// them encoded by transformers' CLIPTextModel with those rows of the input embeddings
// replaced (data/pipeline/embeddings_ref.safetensors), weights included.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <map>
#include <memory>
#include <string>

#include "io/safetensors.h"
#include "pipeline/clip_encode.h"
#include "pipeline/prompt_encoder.h"
#include "sampling/torch_rng.h"
#include "text/embeddings.h"

namespace darkroom::pipeline {
namespace {

std::string data(const std::string& file) {
  return std::string(DARKROOM_TEST_DATA) + "/pipeline/" + file;
}

const text::ClipTokenizer& tokenizer() {
  static const text::ClipTokenizer t =
      text::ClipTokenizer::load(std::string(DARKROOM_CLIP_DATA) + "/sd1_tokenizer",
                                std::string(DARKROOM_CLIP_DATA) + "/bpe_simple_vocab_16e6.txt.gz");
  return t;
}

// The golden 32-wide text model (see test_golden_sd15.cpp).
const ClipTextEncoder& clip() {
  static const ClipTextEncoder c = [] {
    const std::string prefix = "cond_stage_model.transformer.text_model.";
    auto file =
        std::make_shared<const SafetensorsFile>(SafetensorsFile::open(data("clip32.safetensors")));
    std::map<std::string, Tensor> tensors;
    for (const TensorInfo& t : file->tensors())
      if (t.name.rfind(prefix, 0) == 0)
        tensors[t.name.substr(prefix.size())] = file->tensor(t.name);
    sampling::TorchGenerator gen(20240611);
    tensors["embeddings.token_embedding.weight"] = gen.randn({49408, 32});
    const Weights w = Weights::from_tensors(std::move(tensors), "", kCpu, DType::F32);
    return ClipTextEncoder::load(w, ClipTextConfig::detect(w, 2));
  }();
  return c;
}

double max_diff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  const std::vector<float> x = a.to_floats(), y = b.to_floats();
  if (x.size() != y.size()) return 1e30;
  double m = 0;
  for (size_t i = 0; i < x.size(); ++i) m = std::max(m, std::fabs(double(x[i]) - y[i]));
  return m;
}

TEST(Embeddings, ReadsComfyUIsFileLayouts) {
  const std::string dir = data("embeddings/");
  // emb_params [2, 32]; string_to_param.* [3, 32]; clip_l [1, 32] beside a clip_g [1, 40].
  EXPECT_EQ(text::read_embedding_file(dir + "style.safetensors").shape(), Shape({2, 32}));
  EXPECT_EQ(text::read_embedding_file(dir + "thing.pt").shape(), Shape({3, 32}));
  EXPECT_EQ(text::read_embedding_file(dir + "dual.safetensors").shape(), Shape({1, 32}));
  EXPECT_EQ(text::read_embedding_file(dir + "dual.safetensors", "clip_g").shape(), Shape({1, 40}));
}

TEST(Embeddings, FindsNamesAsComfyUIDoes) {
  const text::EmbeddingDirectory d({"/nonexistent-folder", data("embeddings")}, 32);
  EXPECT_TRUE(d.resolve("style"));  // extension added
  EXPECT_TRUE(d.resolve("thing"));
  EXPECT_TRUE(d.resolve("dual.safetensors"));  // as written
  EXPECT_FALSE(d.resolve("missing"));
  EXPECT_FALSE(d.resolve("../embeddings_ref.safetensors")) << "outside its folder";
  EXPECT_TRUE(d.resolve("../embeddings/style")) << "normalised, it stays inside";
  // Vectors of another width are left out.
  const text::EmbeddingDirectory wide({data("embeddings")}, 40);
  EXPECT_FALSE(wide.find("style"));
}

TEST(Embeddings, PromptsMatchTransformersWithReplacedInputEmbeddings) {
  auto ref = SafetensorsFile::open(data("embeddings_ref.safetensors"));
  const text::EmbeddingDirectory dir({data("embeddings")}, 32);
  PromptEncodeOptions options;
  options.embeddings = &dir;
  const std::map<std::string, std::string> prompts = {
      {"plain", "a photo of embedding:style in a garden"},
      {"weighted", "a (embedding:thing:1.2) and embedding:dual.safetensors, detailed"},
  };
  for (const auto& [name, prompt] : prompts) {
    const Tensor got = encode_prompt(tokenizer(), clip(), prompt, options);
    const double err = max_diff(got, ref.tensor(name + ".context"));
    std::cout << "[embeddings] " << name << ": max err " << err << "\n";
    EXPECT_LE(err, 1e-5) << prompt;
  }
  // Without an embeddings folder the words are text (ComfyUI with no embedding
  // directory), which is a different context.
  const Tensor as_text = encode_prompt(tokenizer(), clip(), prompts.at("plain"));
  EXPECT_GT(max_diff(as_text, ref.tensor("plain.context")), 1e-2);
}

// What CLIPTextEncode runs: the CLIP handle with the embeddings folders attached
// (with_embedding_folders, as the node does with the server's "embeddings" folders).
TEST(Embeddings, ClipHandleWithFoldersMatchesTransformers) {
  auto ref = SafetensorsFile::open(data("embeddings_ref.safetensors"));
  ClipHandle handle;
  handle.family = ModelFamily::Sd15;
  // The function-local statics outlive the handle: shared without ownership.
  handle.tokenizer = std::shared_ptr<const text::ClipTokenizer>(&tokenizer(), [](auto*) {});
  handle.encoder = std::shared_ptr<const ClipTextEncoder>(&clip(), [](auto*) {});
  const ClipHandle with = with_embedding_folders(handle, {data("embeddings")});
  const std::string prompt = "a (embedding:thing:1.2) and embedding:dual.safetensors, detailed";
  EXPECT_LE(max_diff(encode_text(with, prompt).context, ref.tensor("weighted.context")), 1e-5);
  EXPECT_GT(max_diff(encode_text(handle, prompt).context, ref.tensor("weighted.context")), 1e-2);
}

}  // namespace
}  // namespace darkroom::pipeline
