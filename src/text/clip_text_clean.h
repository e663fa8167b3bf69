// The text cleanup in front of CLIP's BPE, as Hugging Face transformers' CLIPTokenizer
// does it when ftfy is not installed (ComfyUI's case): its BasicTokenizer with
// strip_accents=False and do_split_on_punc=False.
//
//   1. drop U+0000, U+FFFD and every category C* character except \t \n \r
//      (so zero-width joiners, soft hyphens, private-use and unassigned code points go);
//      \t \n \r and category Zs become a space;
//   2. put spaces around CJK ideographs (BasicTokenizer's _tokenize_chinese_chars ranges),
//      so each becomes its own word;
//   3. NFC;
//   4. split at runs of Python whitespace (str.split());
//   5. lower-case each word (str.lower(): full mapping, final sigma).
//
// CLIPTokenizerFast (and transformers 5's CLIPTokenizer) differ: they keep C* characters,
// do not split CJK ideographs and do not apply final sigma; ordinary prompts agree.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace darkroom::text {

// The cleaned, lower-cased words of `text`, in order; CLIPTokenizer joins them with
// single spaces before its pre-tokenizer runs.
std::vector<std::u32string> clip_clean_words(std::u32string_view text);

}  // namespace darkroom::text
