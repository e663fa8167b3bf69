// The token half of prompt_weights.h: ComfyUI's SDTokenizer.tokenize_with_weights and
// _try_get_embedding (comfy/sd1_clip.py), from weighted segments to padded chunks.
#include <algorithm>

#include "core/error.h"
#include "core/log.h"
#include "text/prompt_weights.h"
#include "text/unicode.h"

namespace darkroom::text {

namespace {

constexpr std::string_view kEmbeddingPrefix = "embedding:";
// Groups of at least this many tokens may be cut at a chunk's end (max_word_length).
constexpr size_t kMaxWordLength = 8;

// One token or embedding vector of a group, before chunking.
struct GroupItem {
  int32_t id;
  double weight;
  int32_t embedding;
  int32_t row;
};
using Group = std::vector<GroupItem>;

// re.split(' embedding:|\nembedding:', s), then every part after the first prefixed with
// "embedding:" again, empty parts dropped.
std::vector<std::string> split_at_embeddings(const std::string& s) {
  std::vector<std::string> parts;
  size_t start = 0, pos = 0;
  while (pos < s.size()) {
    if ((s[pos] == ' ' || s[pos] == '\n') &&
        s.compare(pos + 1, kEmbeddingPrefix.size(), kEmbeddingPrefix) == 0) {
      parts.push_back(s.substr(start, pos - start));
      pos += 1 + kEmbeddingPrefix.size();
      start = pos;
    } else {
      ++pos;
    }
  }
  parts.push_back(s.substr(start));
  std::vector<std::string> out;
  for (size_t i = 0; i < parts.size(); ++i) {
    std::string word = i == 0 ? parts[i] : std::string(kEmbeddingPrefix) + parts[i];
    if (!word.empty()) out.push_back(std::move(word));
  }
  return out;
}

// Python's str.split(): the runs between whitespace, by code point.
std::vector<std::u32string> python_split(std::u32string_view s) {
  std::vector<std::u32string> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && is_python_space(s[i])) ++i;
    size_t j = i;
    while (j < s.size() && !is_python_space(s[j])) ++j;
    if (j > i) out.emplace_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

std::u32string strip_char(std::u32string_view s, char32_t c) {
  size_t b = 0, e = s.size();
  while (b < e && s[b] == c) ++b;
  while (e > b && s[e - 1] == c) --e;
  return std::u32string(s.substr(b, e - b));
}

struct EmbeddingMatch {
  std::optional<std::string> name;  // the name that was found
  int32_t rows = 0;
  std::string leftover;  // text after the name, tokenized as usual
};

// _try_get_embedding: the first whitespace-separated word is the name, the rest is
// leftover. A name not found is tried again without leading and trailing commas; the
// leftover then starts with name[len(stripped):] (the trailing commas when there were
// only trailing ones, as ComfyUI slices it).
EmbeddingMatch try_get_embedding(std::u32string_view name_and_rest, const std::string& written,
                                 const EmbeddingLookup& lookup) {
  const auto words = python_split(name_and_rest);
  DR_CHECK(!words.empty(), "prompt", "\"", written,
           "\" names no embedding (ComfyUI fails on it too): write embedding:<name>");
  const std::u32string& name = words[0];
  std::u32string leftover;
  for (size_t i = 1; i < words.size(); ++i) {
    if (i > 1) leftover += U' ';
    leftover += words[i];
  }
  EmbeddingMatch m;
  const std::string name8 = to_utf8(name);
  if (auto rows = lookup(name8)) {
    m.name = name8;
    m.rows = *rows;
    m.leftover = to_utf8(leftover);
    return m;
  }
  const std::u32string stripped = strip_char(name, U',');
  if (stripped.size() < name.size()) {
    const std::string stripped8 = to_utf8(stripped);
    if (auto rows = lookup(stripped8)) {
      m.name = stripped8;
      m.rows = *rows;
    }
    m.leftover = to_utf8(name.substr(stripped.size())) + " " + to_utf8(leftover);
    return m;
  }
  m.leftover = to_utf8(leftover);
  return m;
}

int32_t embedding_index(PromptTokens& out, const std::string& name) {
  auto it = std::find(out.embeddings.begin(), out.embeddings.end(), name);
  if (it != out.embeddings.end()) return static_cast<int32_t>(it - out.embeddings.begin());
  out.embeddings.push_back(name);
  return static_cast<int32_t>(out.embeddings.size() - 1);
}

}  // namespace

PromptTokens tokenize_with_weights(const ClipTokenizer& tokenizer, std::string_view text,
                                   const EmbeddingLookup& embeddings, const ChunkOptions& options) {
  DR_CHECK(options.max_length >= 3, "prompt", "max_length ", options.max_length,
           " leaves no room for tokens between the start and end tokens");
  PromptTokens out;

  // Tokenize: one group per weighted segment (or per embedding and its leftover text).
  std::vector<Group> groups;
  for (const WeightedSegment& seg : token_weights(escape_important(text), 1.0)) {
    for (std::string word : split_at_embeddings(unescape_important(seg.text))) {
      if (embeddings && word.starts_with(kEmbeddingPrefix)) {
        const std::u32string rest =
            strip_char(utf8_to_u32(std::string_view(word).substr(kEmbeddingPrefix.size())), U'\n');
        EmbeddingMatch m = try_get_embedding(rest, word, embeddings);
        if (m.name) {
          DR_CHECK(m.rows > 0, "prompt", "embedding ", *m.name, " has ", m.rows, " vectors");
          const int32_t index = embedding_index(out, *m.name);
          Group g;
          for (int32_t r = 0; r < m.rows; ++r) {
            g.push_back({kEmbeddingToken, seg.weight, index, r});
          }
          groups.push_back(std::move(g));
        } else {
          DR_LOG(Warn) << "embedding:" << to_utf8(rest) << " does not exist, ignoring";
        }
        if (m.leftover.empty()) continue;
        word = std::move(m.leftover);
      }
      Group g;
      for (int32_t id : tokenizer.encode(word)) g.push_back({id, seg.weight, -1, 0});
      groups.push_back(std::move(g));
    }
  }

  // Chunk.
  const int32_t start = tokenizer.start_token();
  const int32_t end = tokenizer.end_token();
  const int32_t pad = options.pad_token.value_or(end);
  const auto max_length = static_cast<size_t>(options.max_length);
  auto special = [](int32_t id) { return PromptToken{id, 1.0, 0}; };
  auto pad_by = [&](std::vector<PromptToken>& chunk, size_t n) {
    chunk.insert(chunk.end(), n, special(pad));
  };
  out.chunks.push_back({special(start)});
  for (size_t gi = 0; gi < groups.size(); ++gi) {
    const Group& group = groups[gi];
    const auto word = static_cast<int32_t>(gi + 1);
    const bool is_large = group.size() >= kMaxWordLength;
    size_t next = 0;  // first item of the group not placed yet
    while (next < group.size()) {
      std::vector<PromptToken>& chunk = out.chunks.back();
      const size_t left = group.size() - next;
      auto place = [&](size_t n) {
        for (size_t k = next; k < next + n; ++k) {
          const GroupItem& t = group[k];
          chunk.push_back({t.id, t.weight, word, t.embedding, t.row});
        }
        next += n;
      };
      if (left + chunk.size() > max_length - 1) {
        const size_t remaining = max_length - chunk.size() - 1;
        if (is_large) {
          place(remaining);  // cut the group at the chunk's end
          chunk.push_back(special(end));
        } else {
          chunk.push_back(special(end));  // move the whole group to the next chunk
          if (options.pad_to_max_length) pad_by(chunk, remaining);
        }
        out.chunks.push_back({special(start)});
      } else {
        place(left);
      }
    }
  }
  std::vector<PromptToken>& last = out.chunks.back();
  last.push_back(special(end));
  if (options.pad_to_max_length && last.size() < max_length) pad_by(last, max_length - last.size());
  if (last.size() < static_cast<size_t>(std::max(options.min_length, 0))) {
    pad_by(last, static_cast<size_t>(options.min_length) - last.size());
  }
  return out;
}

}  // namespace darkroom::text
