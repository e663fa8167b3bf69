// ComfyUI's prompt weighting and chunking against ComfyUI's own functions
// (tests/data/text/prompt_weights.json: comfy/sd1_clip.py transcribed by
// tools/make_tokenizer_fixtures.py, tokenizing with transformers' CLIPTokenizer), plus the
// weighting rules and Python's float() written out by hand.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>

#include "core/error.h"
#include "text/prompt_weights.h"
#include "text/python_float.h"
#include "text_fixtures.h"

namespace darkroom::test {
namespace {

using text::kEmbeddingToken;
using text::PromptToken;
using text::WeightedSegment;

double fixture_weight(const nlohmann::json& w) {
  // Non-finite weights are stored as Python's repr ("inf", "nan").
  return w.is_string() ? std::strtod(w.get<std::string>().c_str(), nullptr) : w.get<double>();
}

bool same_weight(double a, double b) {
  return a == b || (std::isnan(a) && std::isnan(b));
}

std::string describe(const PromptToken& t, const text::PromptTokens& out) {
  std::string s = t.id == kEmbeddingToken ? "emb " + out.embeddings.at(t.embedding) + "[" +
                                                std::to_string(t.embedding_row) + "]"
                                          : std::to_string(t.id);
  return s + " w=" + std::to_string(t.weight) + " word=" + std::to_string(t.word);
}

TEST(PromptWeights, MatchesComfyUI) {
  const text::ClipTokenizer* tok = openai_clip_tokenizer();
  ASSERT_NE(tok, nullptr) << missing_vocab_message(clip_bpe_file());
  const auto fixture = text_fixture("prompt_weights.json");
  std::map<std::string, int32_t> table;
  for (const auto& [name, rows] : fixture.at("embeddings").items()) table[name] = rows;
  const text::EmbeddingLookup lookup = [&](const std::string& name) -> std::optional<int32_t> {
    auto it = table.find(name);
    return it == table.end() ? std::nullopt : std::optional<int32_t>(it->second);
  };

  int checked = 0;
  for (const auto& p : fixture.at("prompts")) {
    const std::string text = p.at("text");
    const auto& config = fixture.at("configs").at(p.at("config").get<std::string>());
    text::ChunkOptions options;
    options.pad_token = config.at("pad_token").get<int32_t>();
    const text::EmbeddingLookup use = config.at("embeddings").get<bool>() ? lookup : nullptr;
    SCOPED_TRACE("prompt \"" + printable(text) + "\" (" + p.at("config").get<std::string>() + ")");
    if (p.contains("error")) {
      EXPECT_THROW(text::tokenize_with_weights(*tok, text, use, options), Error);
      continue;
    }
    const text::PromptTokens got = text::tokenize_with_weights(*tok, text, use, options);
    const auto& chunks = p.at("chunks");
    ASSERT_EQ(got.chunks.size(), chunks.size());
    for (size_t c = 0; c < chunks.size(); ++c) {
      // The fixture lists each chunk as parallel lists plus a count of trailing
      // (pad, 1.0, word 0) entries.
      const auto& ref = chunks[c];
      const size_t body = ref.at("ids").size();
      const size_t pads = ref.at("trailing_pads").get<size_t>();
      ASSERT_EQ(got.chunks[c].size(), body + pads) << "chunk " << c;
      for (size_t i = 0; i < body + pads; ++i) {
        const PromptToken& t = got.chunks[c][i];
        const bool is_pad = i >= body;
        const nlohmann::json id = is_pad ? nlohmann::json(*options.pad_token) : ref["ids"][i];
        const double weight = is_pad ? 1.0 : fixture_weight(ref["weights"][i]);
        const int32_t word = is_pad ? 0 : ref["words"][i].get<int32_t>();
        bool ok = same_weight(t.weight, weight) && t.word == word;
        if (id.is_object()) {
          ok = ok && t.id == kEmbeddingToken && t.embedding >= 0 &&
               got.embeddings.at(t.embedding) == id.at("embedding").get<std::string>() &&
               t.embedding_row == id.at("row").get<int32_t>();
        } else {
          ok = ok && t.id == id.get<int32_t>();
        }
        EXPECT_TRUE(ok) << "chunk " << c << " position " << i << ": got " << describe(t, got)
                        << ", ComfyUI " << id.dump() << " w=" << weight << " word=" << word;
      }
    }
    ++checked;
  }
  EXPECT_GT(checked, 70);
}

TEST(PromptWeights, WeightingRules) {
  using Segments = std::vector<WeightedSegment>;
  auto weights = [](std::string_view s) {
    return text::token_weights(text::escape_important(s), 1.0);
  };
  auto expect_segments = [](const Segments& got, const Segments& want) {
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) {
      EXPECT_EQ(text::unescape_important(got[i].text), want[i].text) << i;
      EXPECT_EQ(got[i].weight, want[i].weight) << i;  // exact: both are the same doubles
    }
  };
  expect_segments(weights("a cat"), {{"a cat", 1.0}});
  expect_segments(weights("(cat)"), {{"cat", 1.0 * 1.1}});
  expect_segments(weights("((cat))"), {{"cat", 1.0 * 1.1 * 1.1}});
  expect_segments(weights("(cat:1.3)"), {{"cat", 1.3}});
  expect_segments(weights("((cat:1.3))"), {{"cat", 1.3}});
  expect_segments(weights("((cat):1.3)"), {{"cat", 1.3 * 1.1}});
  expect_segments(weights("a (b:0.5) c"), {{"a ", 1.0}, {"b", 0.5}, {" c", 1.0}});
  // A ':' at the start, or a suffix that float() rejects, stays text with the x1.1.
  expect_segments(weights("(:1.2)"), {{":1.2", 1.1}});
  expect_segments(weights("(a:b)"), {{"a:b", 1.1}});
  expect_segments(weights("(a:1.2:1.3)"), {{"a:1.2", 1.3}});
  // Square and curly brackets are plain text in ComfyUI.
  expect_segments(weights("[cat] {dog}"), {{"[cat] {dog}", 1.0}});
  // Escaped parentheses are text and do not nest.
  expect_segments(weights("\\(cat\\)"), {{"(cat)", 1.0}});
  expect_segments(weights("(a \\) b)"), {{"a ) b", 1.1}});
  // Unbalanced: an unclosed '(' keeps its text unweighted, a stray ')' runs on.
  expect_segments(weights("(cat"), {{"(cat", 1.0}});
  expect_segments(weights(")a(b)"), {{")a(b)", 1.0}});
  EXPECT_EQ(text::parse_parentheses("a (b (c)) d"),
            (std::vector<std::string>{"a ", "(b (c))", " d"}));
}

// Chunk layout for SD1.5 written out by hand: "cat" is one token (2368), so 80 of them are
// 75 in the first chunk and 5 in the second, each chunk start + tokens + end + end-padding.
TEST(PromptWeights, ChunkLayout) {
  const text::ClipTokenizer* tok = openai_clip_tokenizer();
  ASSERT_NE(tok, nullptr) << missing_vocab_message(clip_bpe_file());
  std::string prompt;
  for (int i = 0; i < 80; ++i) prompt += "cat ";
  const auto out = text::tokenize_with_weights(*tok, prompt);
  ASSERT_EQ(out.chunks.size(), 2u);
  for (const auto& chunk : out.chunks) {
    ASSERT_EQ(chunk.size(), 77u);
    EXPECT_EQ(chunk.front().id, 49406);
  }
  for (int i = 1; i <= 75; ++i) EXPECT_EQ(out.chunks[0][i].id, 2368) << i;
  EXPECT_EQ(out.chunks[0][76].id, 49407);
  for (int i = 1; i <= 5; ++i) EXPECT_EQ(out.chunks[1][i].id, 2368) << i;
  for (int i = 6; i < 77; ++i) EXPECT_EQ(out.chunks[1][i].id, 49407) << i;

  // The whole prompt is one weighted segment, so one group (word id 1) cut at 75 tokens.
  EXPECT_EQ(out.chunks[1][5].word, 1);
  // A short group that does not fit moves to the next chunk whole: 74 cats, then a
  // 2-token group "(a b:1.5)" -> padding after the 74th cat.
  prompt.clear();
  for (int i = 0; i < 74; ++i) prompt += "cat ";
  const auto moved = text::tokenize_with_weights(*tok, prompt + "(a b:1.5)");
  ASSERT_EQ(moved.chunks.size(), 2u);
  EXPECT_EQ(moved.chunks[0][75].id, 49407);
  EXPECT_EQ(moved.chunks[1][1].id, 320);  // "a</w>"
  EXPECT_EQ(moved.chunks[1][1].weight, 1.5);
  // SDXL CLIP-G pads with 0.
  text::ChunkOptions g;
  g.pad_token = 0;
  const auto padded = text::tokenize_with_weights(*tok, "cat", nullptr, g);
  EXPECT_EQ(padded.chunks[0][2].id, 49407);
  EXPECT_EQ(padded.chunks[0][3].id, 0);
}

TEST(PromptWeights, PythonFloat) {
  const double inf = std::numeric_limits<double>::infinity();
  const std::vector<std::pair<std::string, std::optional<double>>> cases = {
      {"1.5", 1.5},
      {" 1.5 ", 1.5},
      {"1_0", 10.0},
      {"1__0", std::nullopt},
      {"_1", std::nullopt},
      {"1_", std::nullopt},
      {"inf", inf},
      {"-Infinity", -inf},
      {"+inf", inf},
      {"１.５", 1.5},
      {"١.٥", 1.5},
      {"1e400", inf},
      {"-1e400", -inf},
      {"1e-400", 0.0},
      {"0e999999", 0.0},
      {"0x10", std::nullopt},
      {"1,5", std::nullopt},
      {"", std::nullopt},
      {".", std::nullopt},
      {"1.", 1.0},
      {".5", 0.5},
      {"1e", std::nullopt},
      {"+-1", std::nullopt},
      {"1.5\u3000", 1.5},
      {"\x1c"
       "1",
       std::nullopt},
      {"1.e5", 1e5},
      {"+.5e-1", 0.05},
      {" \t1\n", 1.0},
      {"1 0", std::nullopt},
      {"1.5é", std::nullopt},
      {"1.5\x7f", std::nullopt},
      {"1_0.2_5e1_0", 102500000000.0},
      {"infinit", std::nullopt},
  };
  for (const auto& [s, want] : cases) {
    const auto got = text::parse_python_float(s);
    ASSERT_EQ(got.has_value(), want.has_value()) << "float(\"" << printable(s) << "\")";
    if (want) {
      EXPECT_EQ(*got, *want) << "float(\"" << printable(s) << "\")";
    }
  }
  const auto nan = text::parse_python_float("nAn");
  ASSERT_TRUE(nan.has_value());
  EXPECT_TRUE(std::isnan(*nan));
}

TEST(PromptWeights, EmbeddingNames) {
  const text::ClipTokenizer* tok = openai_clip_tokenizer();
  ASSERT_NE(tok, nullptr) << missing_vocab_message(clip_bpe_file());
  std::vector<std::string> asked;
  const text::EmbeddingLookup lookup = [&](const std::string& name) -> std::optional<int32_t> {
    asked.push_back(name);
    if (name == "easynegative") return 2;
    return std::nullopt;
  };
  const auto out = text::tokenize_with_weights(*tok, "(embedding:easynegative,:1.2) cat", lookup);
  // Not found with the comma, found without; the comma is then text.
  EXPECT_EQ(asked, (std::vector<std::string>{"easynegative,", "easynegative"}));
  ASSERT_EQ(out.embeddings, std::vector<std::string>{"easynegative"});
  const auto& c = out.chunks.at(0);
  EXPECT_EQ(c[1].id, kEmbeddingToken);
  EXPECT_EQ(c[1].embedding_row, 0);
  EXPECT_EQ(c[2].embedding_row, 1);
  EXPECT_EQ(c[2].weight, 1.2);
  EXPECT_EQ(c[3].id, 267);   // ",</w>"
  EXPECT_EQ(c[4].id, 2368);  // "cat</w>"
  EXPECT_THROW(text::tokenize_with_weights(*tok, "embedding:", lookup), Error);
}

}  // namespace
}  // namespace darkroom::test
