// CLIP's pre-tokenizer: the pieces that BPE then runs on, as `regex.findall` finds them
// with CLIP's pattern (compiled with re.IGNORECASE, Python's `regex` module):
//
//   <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
//
// At each position the first alternative that matches wins: the two special-token
// spellings, the English contractions, a run of letters, a single number character, or a
// run of anything else that is not whitespace. IGNORECASE uses simple case folding, under
// which 's' also matches U+017F (ſ, long s); the text is lower-case already, so that is
// the only case it changes.
#pragma once

#include <string_view>
#include <vector>

namespace darkroom::text {

// Appends the pieces of `word` (one cleaned word: no whitespace in it) to `pieces`; the
// views point into `word`.
void clip_pretokenize(std::u32string_view word, std::vector<std::u32string_view>& pieces);

}  // namespace darkroom::text
