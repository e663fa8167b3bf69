// Shared by the text tests: CLIP's vocabulary files (fetched by scripts/fetch_clip_vocab.sh
// into <repo>/data/clip/) and the reference data of tools/make_tokenizer_fixtures.py.
#pragma once

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "text/clip_tokenizer.h"

namespace darkroom::test {

inline std::filesystem::path clip_bpe_file() {
  return std::filesystem::path(DARKROOM_CLIP_DATA) / "bpe_simple_vocab_16e6.txt.gz";
}
// ComfyUI's comfy/sd1_tokenizer/ folder (vocab.json, merges.txt).
inline std::filesystem::path clip_hf_folder() {
  return std::filesystem::path(DARKROOM_CLIP_DATA) / "sd1_tokenizer";
}

inline std::string missing_vocab_message(const std::filesystem::path& p) {
  return p.string() + " is missing: run scripts/fetch_clip_vocab.sh (scripts/setup.sh does)";
}

// Loaded once per test binary; nullptr when the file is missing, which the caller turns
// into a failure with ASSERT_NE(tok, nullptr) << missing_vocab_message(...).
inline const text::ClipTokenizer* openai_clip_tokenizer() {
  static const std::unique_ptr<text::ClipTokenizer> tok =
      std::filesystem::exists(clip_bpe_file())
          ? std::make_unique<text::ClipTokenizer>(
                text::ClipTokenizer::from_openai_bpe(clip_bpe_file()))
          : nullptr;
  return tok.get();
}

inline const text::ClipTokenizer* hf_clip_tokenizer() {
  static const std::unique_ptr<text::ClipTokenizer> tok =
      std::filesystem::exists(clip_hf_folder() / "vocab.json")
          ? std::make_unique<text::ClipTokenizer>(
                text::ClipTokenizer::from_hf_folder(clip_hf_folder()))
          : nullptr;
  return tok.get();
}

inline nlohmann::json text_fixture(const std::string& file) {
  const std::string path = std::string(DARKROOM_TEST_DATA) + "/text/" + file;
  std::ifstream in(path);
  EXPECT_TRUE(in) << "cannot open " << path;
  std::stringstream ss;
  ss << in.rdbuf();
  return nlohmann::json::parse(ss.str());
}

// A prompt made printable for failure messages (control characters as \xNN).
inline std::string printable(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

}  // namespace darkroom::test
