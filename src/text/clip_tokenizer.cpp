#include "text/clip_tokenizer.h"

#include <mutex>

#include "core/error.h"
#include "text/clip_pretokenize.h"
#include "text/clip_text_clean.h"
#include "text/unicode.h"

namespace darkroom::text {

namespace {

constexpr std::string_view kStart = "<|startoftext|>";
constexpr std::string_view kEnd = "<|endoftext|>";
// Entries kept before the cache starts over (a long-running server sees unbounded text).
constexpr size_t kCacheLimit = 1 << 17;

}  // namespace

struct ClipTokenizer::Cache {
  std::mutex mutex;
  std::unordered_map<std::string, std::vector<int32_t>> ids;  // piece (UTF-8) -> ids
};

ClipTokenizer::ClipTokenizer(ClipVocab vocab)
    : vocab_(std::move(vocab.ids)),
      bpe_(std::make_unique<ClipBpe>(vocab.merges)),
      cache_(std::make_unique<Cache>()) {
  auto start = token_id(kStart);
  auto end = token_id(kEnd);
  DR_CHECK(start && end, "clip tokenizer", "the vocabulary lacks ", !start ? kStart : kEnd);
  start_ = *start;
  end_ = *end;
  tokens_.reserve(vocab_.size());
  for (const auto& [token, id] : vocab_) tokens_.emplace(id, token);
  symbol_ids_.resize(static_cast<size_t>(bpe_->num_symbols()));
  for (int32_t s = 0; s < bpe_->num_symbols(); ++s) {
    symbol_ids_[s] = token_id(bpe_->symbol(s)).value_or(unknown_token());
  }
}

ClipTokenizer::~ClipTokenizer() = default;
ClipTokenizer::ClipTokenizer(ClipTokenizer&&) noexcept = default;
ClipTokenizer& ClipTokenizer::operator=(ClipTokenizer&&) noexcept = default;

ClipTokenizer ClipTokenizer::from_hf_folder(const std::filesystem::path& dir) {
  return ClipTokenizer(read_hf_tokenizer_folder(dir));
}

ClipTokenizer ClipTokenizer::from_openai_bpe(const std::filesystem::path& gz_file) {
  return ClipTokenizer(read_openai_bpe(gz_file));
}

ClipTokenizer ClipTokenizer::load(const std::filesystem::path& model_tokenizer_dir,
                                  const std::filesystem::path& bpe_file) {
  std::error_code ec;
  if (!model_tokenizer_dir.empty() &&
      std::filesystem::is_regular_file(model_tokenizer_dir / "vocab.json", ec) &&
      std::filesystem::is_regular_file(model_tokenizer_dir / "merges.txt", ec)) {
    return from_hf_folder(model_tokenizer_dir);
  }
  if (std::filesystem::is_regular_file(bpe_file, ec)) return from_openai_bpe(bpe_file);
  const std::string model_part =
      model_tokenizer_dir.empty()
          ? std::string("the model has no tokenizer folder")
          : model_tokenizer_dir.string() + " has no vocab.json + merges.txt";
  fail("clip tokenizer", "no vocabulary: ", model_part, ", and ", bpe_file.string(),
       " does not exist (scripts/fetch_clip_vocab.sh fetches it)");
}

std::optional<int32_t> ClipTokenizer::token_id(std::string_view token) const {
  auto it = vocab_.find(std::string(token));
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

std::string_view ClipTokenizer::token_text(int32_t id) const {
  auto it = tokens_.find(id);
  return it == tokens_.end() ? std::string_view() : std::string_view(it->second);
}

std::vector<int32_t> ClipTokenizer::encode(std::string_view text) const {
  // PreTrainedTokenizer.tokenize: the added tokens (<|startoftext|>, <|endoftext|>) are
  // cut out of the raw text first, by exact spelling, and never reach the cleanup.
  std::vector<int32_t> out;
  size_t pos = 0;
  while (pos <= text.size()) {
    const size_t s = text.find(kStart, pos);
    const size_t e = text.find(kEnd, pos);
    const size_t hit = std::min(s, e);
    encode_segment(text.substr(pos, hit == std::string_view::npos ? hit : hit - pos), out);
    if (hit == std::string_view::npos) break;
    out.push_back(hit == s ? start_ : end_);
    pos = hit + (hit == s ? kStart.size() : kEnd.size());
  }
  return out;
}

std::vector<int32_t> ClipTokenizer::encode_with_special(std::string_view text) const {
  std::vector<int32_t> out{start_};
  const auto ids = encode(text);
  out.insert(out.end(), ids.begin(), ids.end());
  out.push_back(end_);
  return out;
}

void ClipTokenizer::encode_segment(std::string_view text, std::vector<int32_t>& out) const {
  if (text.empty()) return;
  std::vector<std::u32string_view> pieces;
  for (const std::u32string& word : clip_clean_words(utf8_to_u32(text))) {
    pieces.clear();
    clip_pretokenize(word, pieces);
    for (auto piece : pieces) encode_piece(piece, out);
  }
}

void ClipTokenizer::encode_piece(std::u32string_view piece, std::vector<int32_t>& out) const {
  const std::string bytes = to_utf8(piece);
  // CLIPTokenizer's BPE cache starts out holding the two special tokens as themselves, so
  // a piece spelled exactly like one (after lower-casing) is that token.
  if (bytes == kStart || bytes == kEnd) {
    out.push_back(bytes == kStart ? start_ : end_);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(cache_->mutex);
    auto it = cache_->ids.find(bytes);
    if (it != cache_->ids.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> ids;
  for (int32_t symbol : bpe_->apply(bytes)) ids.push_back(symbol_ids_[symbol]);
  out.insert(out.end(), ids.begin(), ids.end());
  std::lock_guard<std::mutex> lock(cache_->mutex);
  if (cache_->ids.size() >= kCacheLimit) cache_->ids.clear();
  cache_->ids.emplace(bytes, std::move(ids));
}

}  // namespace darkroom::text
