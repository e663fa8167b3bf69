#include "text/clip_vocab.h"

#include <zlib.h>

#include <fstream>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "text/unicode.h"

namespace darkroom::text {

namespace {

constexpr std::string_view kWho = "clip tokenizer";

// Python's ASCII whitespace (what str.split() and str.strip() remove from these files:
// the byte characters of CLIP's symbols are never whitespace).
bool is_ascii_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f' ||
         (c >= '\x1c' && c <= '\x1f');
}

std::vector<std::string_view> split_whitespace(std::string_view s) {
  std::vector<std::string_view> parts;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && is_ascii_space(s[i])) ++i;
    size_t j = i;
    while (j < s.size() && !is_ascii_space(s[j])) ++j;
    if (j > i) parts.push_back(s.substr(i, j - i));
    i = j;
  }
  return parts;
}

// Lines of `text` split at '\n' (Python's str.split("\n")), from line `first` on, at most
// `count` of them.
std::vector<std::string_view> lines(std::string_view text, size_t first, size_t count) {
  std::vector<std::string_view> out;
  size_t index = 0, pos = 0;
  while (out.size() < count) {
    const size_t nl = text.find('\n', pos);
    const std::string_view line =
        text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    if (index++ >= first) out.push_back(line);
    if (nl == std::string_view::npos) break;
    pos = nl + 1;
  }
  return out;
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  DR_CHECK(in, kWho, path.string(), ": cannot open");
  std::ostringstream ss;
  ss << in.rdbuf();
  DR_CHECK(!in.bad(), kWho, path.string(), ": read error");
  return std::move(ss).str();
}

std::string read_gzip_file(const std::filesystem::path& path) {
  // gzopen reads an uncompressed file as it is, too.
  std::unique_ptr<gzFile_s, int (*)(gzFile)> gz(gzopen(path.c_str(), "rb"), gzclose);
  DR_CHECK(gz != nullptr, kWho, path.string(), ": cannot open");
  std::string out;
  char buf[1 << 16];
  for (;;) {
    const int n = gzread(gz.get(), buf, sizeof(buf));
    if (n < 0) {
      int err = 0;
      const char* msg = gzerror(gz.get(), &err);
      fail(kWho, path.string(), ": not a readable gzip file: ", msg);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

void add_token(std::unordered_map<std::string, int32_t>& ids, std::string token, size_t id) {
  // dict(zip(vocab, range(len(vocab)))): a token listed twice keeps its later id.
  ids[std::move(token)] = static_cast<int32_t>(id);
}

}  // namespace

std::unordered_map<std::string, int32_t> parse_vocab_json(const std::string& text,
                                                          const std::string& where) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail(kWho, where, ": not valid JSON: ", e.what());
  }
  DR_CHECK(j.is_object(), kWho, where, ": expected a JSON object of token -> id");
  std::unordered_map<std::string, int32_t> ids;
  ids.reserve(j.size());
  for (const auto& [token, id] : j.items()) {
    DR_CHECK(id.is_number_integer() && id.get<int64_t>() >= 0 &&
                 id.get<int64_t>() <= std::numeric_limits<int32_t>::max(),
             kWho, where, ": the id of token \"", token, "\" is not an integer in [0, 2^31)");
    ids[token] = static_cast<int32_t>(id.get<int64_t>());
  }
  DR_CHECK(!ids.empty(), kWho, where, ": the vocabulary is empty");
  return ids;
}

std::vector<BpeMerge> parse_hf_merges(std::string_view text) {
  // merges_handle.read().strip().split("\n")[1 : 49152 - 256 - 2 + 1]
  while (!text.empty() && is_ascii_space(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_ascii_space(text.back())) text.remove_suffix(1);
  std::vector<BpeMerge> merges;
  merges.reserve(kClipNumMerges);
  for (std::string_view line : lines(text, 1, kClipNumMerges)) {
    // tuple(merge.split()): only two-part lines can ever match a pair of symbols; the
    // others still take their rank, which leaves the order of the rest unchanged.
    const auto parts = split_whitespace(line);
    if (parts.size() == 2) merges.emplace_back(std::string(parts[0]), std::string(parts[1]));
  }
  return merges;
}

ClipVocab parse_openai_bpe(std::string_view text, const std::string& where) {
  // merges = text.split('\n')[1:49152-256-2+1]
  const auto merge_lines = lines(text, 1, kClipNumMerges);
  DR_CHECK(merge_lines.size() == kClipNumMerges, kWho, where, ": has ", merge_lines.size(),
           " merges after its header line, CLIP's has ", kClipNumMerges,
           " (a truncated or different file?)");
  ClipVocab v;
  v.ids.reserve(512 + kClipNumMerges + 2);
  v.merges.reserve(kClipNumMerges);
  const auto& chars = clip_byte_chars();
  const auto& order = clip_byte_order();
  size_t id = 0;
  for (int suffix = 0; suffix < 2; ++suffix) {
    for (uint8_t b : order) {
      std::string s;
      append_utf8(s, chars[b]);
      if (suffix) s += "</w>";
      add_token(v.ids, std::move(s), id++);
    }
  }
  for (std::string_view line : merge_lines) {
    const auto parts = split_whitespace(line);
    std::string joined;
    for (auto p : parts) joined += p;
    add_token(v.ids, std::move(joined), id++);
    if (parts.size() == 2) v.merges.emplace_back(std::string(parts[0]), std::string(parts[1]));
  }
  add_token(v.ids, "<|startoftext|>", id++);
  add_token(v.ids, "<|endoftext|>", id++);
  return v;
}

ClipVocab read_hf_tokenizer_folder(const std::filesystem::path& dir) {
  const auto vocab_path = dir / "vocab.json";
  const auto merges_path = dir / "merges.txt";
  ClipVocab v;
  v.ids = parse_vocab_json(read_file(vocab_path), vocab_path.string());
  v.merges = parse_hf_merges(read_file(merges_path));
  return v;
}

ClipVocab read_openai_bpe(const std::filesystem::path& gz_file) {
  return parse_openai_bpe(read_gzip_file(gz_file), gz_file.string());
}

}  // namespace darkroom::text
