// ClipTokenizer against Hugging Face transformers' CLIPTokenizer (tests/data/text/
// clip_ids.json, written by tools/make_tokenizer_fixtures.py), with both ways of loading
// the vocabulary, plus the loaders' own behaviour on small hand-made files.
#include <gtest/gtest.h>

#include <zlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "core/error.h"
#include "text/clip_tokenizer.h"
#include "text/clip_vocab.h"
#include "text_fixtures.h"

namespace darkroom::test {
namespace {

using text::ClipTokenizer;

// Every corpus prompt gives transformers' ids; reports each prompt that does not.
void expect_corpus_ids(const ClipTokenizer& tok) {
  const auto fixture = text_fixture("clip_ids.json");
  const auto& prompts = fixture.at("prompts");
  ASSERT_GT(prompts.size(), 300u);
  int mismatches = 0;
  for (const auto& p : prompts) {
    const std::string text = p.at("text");
    const std::vector<int32_t> expected = p.at("ids");
    const std::vector<int32_t> got = tok.encode_with_special(text);
    if (got != expected) {
      ++mismatches;
      ADD_FAILURE() << "prompt \"" << printable(text) << "\": ids differ from transformers'"
                    << ::testing::PrintToString(got) << " vs "
                    << ::testing::PrintToString(expected);
    }
  }
  EXPECT_EQ(mismatches, 0);
}

// A scratch directory removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "darkroom_text_XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::filesystem::path& path() const { return path_; }
  void write(const std::string& name, const std::string& content) const {
    std::ofstream(path_ / name, std::ios::binary) << content;
  }

 private:
  std::filesystem::path path_;
};

TEST(ClipTokenizer, OpenAIMergesFileMatchesTransformers) {
  const ClipTokenizer* tok = openai_clip_tokenizer();
  ASSERT_NE(tok, nullptr) << missing_vocab_message(clip_bpe_file());
  EXPECT_EQ(tok->vocab_size(), 49408u);
  EXPECT_EQ(tok->start_token(), 49406);
  EXPECT_EQ(tok->end_token(), 49407);
  expect_corpus_ids(*tok);
}

TEST(ClipTokenizer, HuggingFaceFolderMatchesTransformers) {
  const ClipTokenizer* tok = hf_clip_tokenizer();
  ASSERT_NE(tok, nullptr) << missing_vocab_message(clip_hf_folder());
  EXPECT_EQ(tok->start_token(), 49406);
  EXPECT_EQ(tok->end_token(), 49407);
  expect_corpus_ids(*tok);
}

// Ids read off the published vocabulary by hand, for a readable failure before the corpus.
TEST(ClipTokenizer, KnownIds) {
  const ClipTokenizer* tok = openai_clip_tokenizer();
  ASSERT_NE(tok, nullptr) << missing_vocab_message(clip_bpe_file());
  // "a</w>" 320, "photo</w>" 1125, "of</w>" 539, "cat</w>" 2368.
  EXPECT_EQ(tok->encode("A  Photo\nof a CAT"), (std::vector<int32_t>{320, 1125, 539, 320, 2368}));
  EXPECT_EQ(tok->encode(""), std::vector<int32_t>{});
  EXPECT_EQ(tok->encode_with_special(""), (std::vector<int32_t>{49406, 49407}));
  // "!" alone is "!</w>" (256); "'s</w>" is 568.
  EXPECT_EQ(tok->encode("!"), std::vector<int32_t>{256});
  EXPECT_EQ(tok->encode("'s"), std::vector<int32_t>{568});
  EXPECT_EQ(tok->token_id("a</w>"), 320);
  EXPECT_EQ(tok->token_text(2368), "cat</w>");
  EXPECT_EQ(tok->token_text(-5), "");
}

// The vocabulary SimpleTokenizer's construction gives from the merges file is exactly
// ComfyUI's vocab.json, and both list the same merges.
TEST(ClipTokenizer, VocabularyBuiltFromMergesEqualsVocabJson) {
  ASSERT_TRUE(std::filesystem::exists(clip_bpe_file())) << missing_vocab_message(clip_bpe_file());
  ASSERT_TRUE(std::filesystem::exists(clip_hf_folder() / "vocab.json"))
      << missing_vocab_message(clip_hf_folder());
  const text::ClipVocab built = text::read_openai_bpe(clip_bpe_file());
  const text::ClipVocab json = text::read_hf_tokenizer_folder(clip_hf_folder());
  EXPECT_EQ(built.ids.size(), 49408u);
  EXPECT_TRUE(built.ids == json.ids) << "vocabularies differ";
  EXPECT_EQ(built.merges.size(), text::kClipNumMerges);
  EXPECT_TRUE(built.merges == json.merges) << "merges differ";
  EXPECT_EQ(built.ids.at("!"), 0);
  EXPECT_EQ(built.ids.at("Ā"), 188);  // byte 0x00, the first non-printable byte
  EXPECT_EQ(built.ids.at("!</w>"), 256);
  EXPECT_EQ(built.ids.at("in"), 512);  // the first merge, "i n"
}

TEST(ClipTokenizer, MissingVocabularyIsAClearError) {
  const std::filesystem::path nowhere = "/nonexistent/darkroom/clip";
  for (const auto& model_dir : {std::filesystem::path(), nowhere / "tokenizer"}) {
    try {
      ClipTokenizer::load(model_dir, nowhere / "bpe_simple_vocab_16e6.txt.gz");
      FAIL() << "load() did not throw";
    } catch (const Error& e) {
      const std::string what = e.what();
      EXPECT_EQ(what.rfind("[clip tokenizer] no vocabulary: ", 0), 0u) << what;
      EXPECT_NE(what.find("bpe_simple_vocab_16e6.txt.gz"), std::string::npos) << what;
      EXPECT_NE(what.find("scripts/fetch_clip_vocab.sh"), std::string::npos) << what;
    }
  }
  EXPECT_THROW(ClipTokenizer::from_hf_folder(nowhere), Error);
  EXPECT_THROW(ClipTokenizer::from_openai_bpe(nowhere / "x.gz"), Error);
}

// A tiny Hugging Face folder with ids that are not CLIP's order: the ids come from
// vocab.json, merges.txt's first line is a header, and tokens the vocabulary lacks become
// <|endoftext|> (CLIPTokenizer's unk_token).
TEST(ClipTokenizer, HuggingFaceFolderUsesItsOwnIds) {
  TempDir dir;
  dir.write("vocab.json",
            R"({"a": 3, "b</w>": 4, "a</w>": 5, "b": 7, "ab</w>": 9,
                "<|startoftext|>": 100, "<|endoftext|>": 101})");
  dir.write("merges.txt", "#version: 0.2\na b</w>\n");
  const ClipTokenizer tok = ClipTokenizer::from_hf_folder(dir.path());
  EXPECT_EQ(tok.start_token(), 100);
  EXPECT_EQ(tok.end_token(), 101);
  EXPECT_EQ(tok.encode("ab"), std::vector<int32_t>{9});
  EXPECT_EQ(tok.encode("ba"), (std::vector<int32_t>{7, 5}));
  EXPECT_EQ(tok.encode("AB c"), (std::vector<int32_t>{9, 101}));  // "c</w>" is unknown
  EXPECT_EQ(tok.encode("ab!<|endoftext|>"), (std::vector<int32_t>{9, 101, 101}));
  EXPECT_EQ(tok.encode_with_special("b"), (std::vector<int32_t>{100, 4, 101}));

  // load() prefers the model's folder over the merges file.
  EXPECT_EQ(ClipTokenizer::load(dir.path(), "/nonexistent.gz").start_token(), 100);

  // Without the header line the first merge is skipped, as transformers skips it.
  dir.write("merges.txt", "a b</w>\n");
  EXPECT_EQ(ClipTokenizer::from_hf_folder(dir.path()).encode("ab"), (std::vector<int32_t>{3, 4}));
}

TEST(ClipTokenizer, BadFilesAreErrors) {
  TempDir dir;
  dir.write("vocab.json", "{\"a\": 1,");
  dir.write("merges.txt", "#version: 0.2\n");
  EXPECT_THROW(ClipTokenizer::from_hf_folder(dir.path()), Error);
  dir.write("vocab.json", "{\"a\": -1}");
  EXPECT_THROW(ClipTokenizer::from_hf_folder(dir.path()), Error);
  dir.write("vocab.json", "{\"a\": 1}");  // no special tokens
  try {
    ClipTokenizer::from_hf_folder(dir.path());
    FAIL() << "accepted a vocabulary without <|startoftext|>";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("<|startoftext|>"), std::string::npos) << e.what();
  }

  // A merges file that is too short for CLIP's (a truncated download).
  const auto gz_path = dir.path() / "short.txt.gz";
  gzFile gz = gzopen(gz_path.c_str(), "wb");
  ASSERT_NE(gz, nullptr);
  const std::string content = "bpe_simple_vocab_16e6.txt#version: 0.2\ni n\nt h\n";
  gzwrite(gz, content.data(), static_cast<unsigned>(content.size()));
  gzclose(gz);
  try {
    ClipTokenizer::from_openai_bpe(gz_path);
    FAIL() << "accepted a truncated merges file";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("48894"), std::string::npos) << e.what();
  }
}

TEST(ClipTokenizer, ConcurrentEncodingAgreesWithSerial) {
  const ClipTokenizer* tok = openai_clip_tokenizer();
  ASSERT_NE(tok, nullptr) << missing_vocab_message(clip_bpe_file());
  const auto fixture = text_fixture("clip_ids.json");
  std::vector<std::string> texts;
  std::vector<std::vector<int32_t>> expected;
  for (const auto& p : fixture.at("prompts")) {
    texts.push_back(p.at("text"));
    expected.push_back(p.at("ids"));
  }
  std::vector<int> bad(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (size_t i = 0; i < texts.size(); ++i) {
        const size_t k = (i * 7 + static_cast<size_t>(t) * 13) % texts.size();
        if (tok->encode_with_special(texts[k]) != expected[k]) ++bad[t];
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad, std::vector<int>(4, 0));
}

}  // namespace
}  // namespace darkroom::test
