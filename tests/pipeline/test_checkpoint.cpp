// Family detection from tensor names and shapes, on small files written here that carry
// the names of real checkpoints (SD 1.5's full list from data/reference/), and the
// built-in SD 1.5 tensor list against the reference .tsv read independently.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "io/safetensors.h"
#include "io/safetensors_writer.h"
#include "models/clip_vae_fixtures.h"
#include "pipeline/checkpoint.h"
#include "pipeline/reference_tensors.h"

namespace darkroom::pipeline {
namespace {

using Named = std::vector<std::pair<std::string, Tensor>>;

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          ("darkroom_ckpt_" + std::to_string(::getpid()) + "_" + name))
      .string();
}

// Writes `tensors` and returns the opened file (removed from disk at once; the mapping
// stays valid).
SafetensorsFile write_and_open(const std::string& name, const Named& tensors) {
  const std::string path = temp_path(name);
  write_safetensors(path, tensors);
  SafetensorsFile f = SafetensorsFile::open(path);
  std::filesystem::remove(path);
  return f;
}

Tensor small(const Shape& s) {
  return Tensor::zeros(s, DType::F16);
}

// Every SD 1.5 name, each a 1-element tensor except the cross-attention key projections,
// which keep their real shape (the context width is read from them).
Named sd15_like() {
  Named t;
  for (const auto& [name, shape] : test::reference_shapes("sd15-ldm-tensors.tsv")) {
    const bool keep = name.find("attn2.to_k.weight") != std::string::npos;
    t.emplace_back(name, keep ? small(shape) : small({1}));
  }
  return t;
}

std::string error_of(const SafetensorsFile& f) {
  try {
    detect_family(f);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Checkpoint, DetectsSd15FromTheReferenceNames) {
  const SafetensorsFile f = write_and_open("sd15.safetensors", sd15_like());
  const CheckpointFacts facts = inspect_checkpoint(f);
  EXPECT_EQ(facts.tensors, 1130u);
  EXPECT_EQ(facts.context_dim, 768);
  EXPECT_TRUE(facts.has_unet && facts.has_clip_l && facts.has_vae);
  EXPECT_FALSE(facts.has_label_emb || facts.has_open_clip || facts.has_conditioner);
  EXPECT_EQ(detect_family(f), ModelFamily::Sd15);
}

TEST(Checkpoint, RejectsSd2WithWhatItFound) {
  Named t;
  t.emplace_back("model.diffusion_model.input_blocks.0.0.weight", small({320, 4, 3, 3}));
  t.emplace_back("model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight",
                 small({320, 1024}));
  t.emplace_back("cond_stage_model.model.token_embedding.weight", small({4, 1024}));
  t.emplace_back("first_stage_model.decoder.conv_in.weight", small({512, 4, 3, 3}));
  const std::string msg = error_of(write_and_open("sd2.safetensors", t));
  EXPECT_NE(msg.find("[checkpoint]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("looks like SD 2.x"), std::string::npos) << msg;
  EXPECT_NE(msg.find("context width 1024 (SD 1.x: 768)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("CLIP-L text model no"), std::string::npos) << msg;
  EXPECT_NE(msg.find("OpenCLIP yes"), std::string::npos) << msg;
  EXPECT_NE(msg.find("cond_stage_model (1), first_stage_model (1), model (2)"), std::string::npos)
      << msg;
}

TEST(Checkpoint, RejectsSdxlWithWhatItFound) {
  Named t;
  t.emplace_back("model.diffusion_model.input_blocks.0.0.weight", small({320, 4, 3, 3}));
  t.emplace_back("model.diffusion_model.label_emb.0.0.weight", small({1280, 2816}));
  t.emplace_back("model.diffusion_model.input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight",
                 small({640, 2048}));
  t.emplace_back("conditioner.embedders.0.transformer.text_model.final_layer_norm.weight",
                 small({768}));
  const std::string msg = error_of(write_and_open("sdxl.safetensors", t));
  EXPECT_NE(msg.find("looks like SDXL"), std::string::npos) << msg;
  EXPECT_NE(msg.find("label_emb yes"), std::string::npos) << msg;
  EXPECT_NE(msg.find("context width 2048"), std::string::npos) << msg;
  EXPECT_NE(msg.find("conditioner.embedders yes"), std::string::npos) << msg;
  EXPECT_NE(msg.find("VAE decoder no"), std::string::npos) << msg;
}

TEST(Checkpoint, RejectsAFileWithoutAUNet) {
  Named t;
  t.emplace_back("text_model.embeddings.token_embedding.weight", small({8, 4}));
  const std::string msg = error_of(write_and_open("clip.safetensors", t));
  EXPECT_NE(msg.find("no SD-style UNet"), std::string::npos) << msg;
  EXPECT_NE(msg.find("Found: 1 tensors"), std::string::npos) << msg;
  EXPECT_NE(msg.find("text_model (1)"), std::string::npos) << msg;
}

TEST(Checkpoint, Sd15MissingItsVaeIsRejected) {
  Named t;
  for (auto& [name, tensor] : sd15_like())
    if (name.rfind("first_stage_model.", 0) != 0) t.emplace_back(name, tensor);
  const std::string msg = error_of(write_and_open("novae.safetensors", t));
  EXPECT_NE(msg.find("VAE decoder no"), std::string::npos) << msg;
}

TEST(Sd15TensorList, BuiltInListEqualsTheReferenceFile) {
  const auto list = parse_tensor_list(sd15_ldm_tensor_tsv());
  const auto ref = test::reference_shapes("sd15-ldm-tensors.tsv");
  ASSERT_EQ(list.size(), ref.size());
  EXPECT_EQ(list.size(), 1130u);
  int64_t params = 0;
  for (const auto& [name, shape] : list) {
    ASSERT_TRUE(ref.count(name)) << name;
    EXPECT_EQ(shape, ref.at(name)) << name;
    params += shape.numel();
  }
  EXPECT_EQ(params, 1066235307);  // the count in the .tsv's header comment
}

TEST(Sd15TensorList, RejectsMalformedLines) {
  EXPECT_THROW(parse_tensor_list("a.weight [1, 2]\n"), Error);   // no tab
  EXPECT_THROW(parse_tensor_list("a.weight\t1, 2\n"), Error);    // no brackets
  EXPECT_THROW(parse_tensor_list("a.weight\t[1, x]\n"), Error);  // not a number
  const auto ok = parse_tensor_list("# comment\n\nb\t[]\nc\t[3, 4]\r\n");
  ASSERT_EQ(ok.size(), 2u);
  EXPECT_EQ(ok[0].second.ndim(), 0);
  EXPECT_EQ(ok[1].second, Shape({3, 4}));
}

}  // namespace
}  // namespace darkroom::pipeline
