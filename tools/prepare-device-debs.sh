#!/usr/bin/env bash
# Run HERE (the Debian development machine) before a GPU session: downloads the Debian
# packages that tools/device-check.sh unpacks on the GPU machine, which has CUDA, CMake
# and ninja but none of our libraries and no network. Pass `.device-debs` in the device
# tool's `carry` list. (~32 MB: libicu-dev is repacked without its static libraries, 42 MB
# of .a files the shared build never links, so that the carry, the working tree and the
# other carried folders stay under the device tool's 64 MiB.) OpenCV is not carried: its
# core and imgproc .debs with TBB are 6.3 MB and what libopencv_core links besides (GLX
# and X11, LAPACK/BLAS, gfortran) 4.7 MB more, for one CPU-only node, so device-check.sh
# builds with DARKROOM_OPENCV=OFF (no Canny node there).
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
for deb in libicu-dev_*.deb; do
  tmp=$(mktemp -d)
  dpkg-deb -R "$deb" "$tmp"
  find "$tmp" -name '*.a' -delete
  rm -f "$tmp/DEBIAN/md5sums"
  dpkg-deb -Zxz -b "$tmp" "$deb" >/dev/null
  rm -rf "$tmp"
done
ls -la
