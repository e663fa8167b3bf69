#!/usr/bin/env bash
# Run HERE (the Debian development machine) before a GPU session: downloads the Debian
# packages that tools/device-check.sh unpacks on the GPU machine, which has CUDA, CMake
# and ninja but none of our libraries and no network. Pass `.device-debs` in the device
# tool's `carry` list. (~41 MB)
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .device-debs
cd .device-debs
apt-get download \
  libdnnl-dev libdnnl2 ocl-icd-libopencl1 libgomp1 \
  libgtest-dev googletest \
  nlohmann-json3-dev libboost1.74-dev \
  libicu-dev libicu72 icu-devtools zlib1g-dev \
  libminizip-dev libminizip1 libpng-dev libpng16-16 zlib1g \
  libsqlite3-dev libsqlite3-0 libjpeg62-turbo-dev libjpeg62-turbo \
  libwebp-dev libwebp7 libwebpdemux2 libwebpmux3 libyaml-cpp-dev libyaml-cpp0.7
ls -la
