// Checkpoints written by torch.save (.ckpt) load like .safetensors: the same tensor names
// (the "state_dict." level dropped), shapes and values, the same family facts, and the
// same model outputs. The fixture pair is data/pipeline/clip32.{safetensors,ckpt}, both
// written by tools/fixtures/pipeline_golden.py from one text model (the .ckpt as ldm's
// training checkpoints are laid out, one tensor stored transposed).
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "core/error.h"
#include "models/clip_text.h"
#include "pipeline/checkpoint.h"
#include "pipeline/sd15_pipeline.h"
#include "sampling/torch_rng.h"

namespace darkroom::pipeline {
namespace {

const std::string kClipPrefix = "cond_stage_model.transformer.text_model.";

std::string data(const std::string& file) {
  return std::string(DARKROOM_TEST_DATA) + "/pipeline/" + file;
}

// The golden text model from either file (token table redrawn as the golden tests do).
ClipTextEncoder clip_from(const CheckpointFile& f) {
  const Weights w = f.weights(kClipPrefix, kCpu, DType::F32);
  std::map<std::string, Tensor> tensors;
  for (const auto& [name, shape] : f.tensors())
    if (name.rfind(kClipPrefix, 0) == 0 && name.find("position_ids") == std::string::npos)
      tensors[name.substr(kClipPrefix.size())] =
          w.get(std::string_view(name).substr(kClipPrefix.size()));
  sampling::TorchGenerator gen(20240611);
  tensors["embeddings.token_embedding.weight"] = gen.randn({49408, 32});
  const Weights all = Weights::from_tensors(std::move(tensors), "", kCpu, DType::F32);
  return ClipTextEncoder::load(all, ClipTextConfig::detect(all, 2));
}

TEST(CheckpointFile, TorchSaveGivesTheSafetensorsTensors) {
  const CheckpointFile st = CheckpointFile::open(data("clip32.safetensors"));
  const CheckpointFile ck = CheckpointFile::open(data("clip32.ckpt"));
  EXPECT_FALSE(st.is_torch_save());
  EXPECT_TRUE(ck.is_torch_save());
  std::map<std::string, Shape> a, b;
  for (const auto& [n, s] : st.tensors()) a.emplace(n, s);
  for (const auto& [n, s] : ck.tensors()) b.emplace(n, s);
  ASSERT_FALSE(a.empty());
  EXPECT_EQ(a, b) << "names (without state_dict.) and shapes";
  EXPECT_EQ(ck.metadata().count("global_step"), 0u) << "outside state_dict: not kept";
  EXPECT_TRUE(ck.has(kClipPrefix + "final_layer_norm.weight"));
  EXPECT_FALSE(ck.has("state_dict." + kClipPrefix + "final_layer_norm.weight"));

  const Weights wa = st.weights(kClipPrefix, kCpu, DType::F32);
  const Weights wb = ck.weights(kClipPrefix, kCpu, DType::F32);
  for (const auto& [name, shape] : a) {
    if (shape.numel() == 0 || name.find("position_ids") != std::string::npos) continue;
    const std::string_view rest = std::string_view(name).substr(kClipPrefix.size());
    // Bit for bit, including the tensor saved as a transposed view.
    EXPECT_EQ(wa.get(rest).to_floats(), wb.get(rest).to_floats()) << name;
  }
}

TEST(CheckpointFile, SameFactsAndSameModelOutputs) {
  const CheckpointFile st = CheckpointFile::open(data("clip32.safetensors"));
  const CheckpointFile ck = CheckpointFile::open(data("clip32.ckpt"));
  const CheckpointFacts fa = inspect_checkpoint(st), fb = inspect_checkpoint(ck);
  EXPECT_EQ(fa.tensors, fb.tensors);
  EXPECT_TRUE(fb.has_clip_l);
  EXPECT_EQ(fa.has_clip_l, fb.has_clip_l);
  EXPECT_EQ(fa.top_level_prefixes, fb.top_level_prefixes);

  const ClipTextEncoder ca = clip_from(st), cb = clip_from(ck);
  Tensor ids = Tensor::empty({1, 77}, DType::I32);
  for (int i = 0; i < 77; ++i)
    ids.data<int32_t>()[i] = i == 0 ? 49406 : (i < 9 ? 300 + 97 * i : 49407);
  EXPECT_EQ(ca.encode(ids, 1).hidden.to_floats(), cb.encode(ids, 1).hidden.to_floats());
}

TEST(CheckpointFile, FromCheckpointReadsTorchSaveFiles) {
  // A .ckpt goes through the same family detection as a .safetensors: this one is a text
  // model only, and the error says what the .ckpt holds (not that it is no safetensors).
  try {
    Sd15Pipeline::from_checkpoint(
        data("clip32.ckpt"),
        text::ClipTokenizer::load(
            std::string(DARKROOM_CLIP_DATA) + "/sd1_tokenizer",
            std::string(DARKROOM_CLIP_DATA) + "/bpe_simple_vocab_16e6.txt.gz"),
        DType::F32);
    FAIL() << "a text model alone is no SD 1.x checkpoint";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("not a Stable Diffusion 1.x"), std::string::npos) << m;
    EXPECT_NE(m.find("CLIP-L text model yes"), std::string::npos) << m;
    EXPECT_NE(m.find("UNet no"), std::string::npos) << m;
  }
}

TEST(CheckpointFile, RefusesWhatIsNeither) {
  const std::string path =
      (std::filesystem::temp_directory_path() / "darkroom_golden_not_a_ckpt.bin").string();
  {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    std::fputs("PK\x03\x04 not really a zip", f);
    std::fclose(f);
  }
  EXPECT_THROW(CheckpointFile::open(path), Error);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace darkroom::pipeline
