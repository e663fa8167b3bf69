// Shared by the CLIP text encoder, VAE and key-layout tests: the tiny SD 1.5 fixtures of
// tests/data/models/sd15_tiny/ (written by tools/fixtures/clip_vae.py from transformers and
// diffusers) and the reference tensor list of a real checkpoint (tests/data/reference/).
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "io/safetensors.h"

namespace darkroom::test {

inline std::string sd15_tiny_path(const std::string& file) {
  return std::string(DARKROOM_TEST_DATA) + "/models/sd15_tiny/" + file;
}

inline std::shared_ptr<const SafetensorsFile> open_sd15_tiny(const std::string& file) {
  return std::make_shared<const SafetensorsFile>(SafetensorsFile::open(sd15_tiny_path(file)));
}

// The reference outputs (clip_vae_ref.safetensors), opened once.
inline const SafetensorsFile& clip_vae_refs() {
  static const SafetensorsFile f =
      SafetensorsFile::open(sd15_tiny_path("clip_vae_ref.safetensors"));
  return f;
}

inline Tensor clip_vae_ref(const std::string& name) {
  return clip_vae_refs().tensor(name);
}

// got vs the reference tensor `name`: same shape and every element within
// atol + rel_to_largest · max|ref| (the second term for reduced precision, whose error
// scales with the activations' magnitude). Reports the largest error either way.
inline void expect_matches_ref(const Tensor& got, const std::string& name, double atol,
                               double rel_to_largest = 0) {
  const Tensor ref = clip_vae_ref(name);
  ASSERT_EQ(got.shape(), ref.shape()) << name;
  const std::vector<float> g = got.to_floats(), r = ref.to_floats();
  double worst = 0, largest_ref = 0;
  size_t worst_i = 0;
  for (size_t i = 0; i < r.size(); ++i) {
    const double err = std::fabs(static_cast<double>(g[i]) - r[i]);
    largest_ref = std::max(largest_ref, std::fabs(static_cast<double>(r[i])));
    if (!(err <= worst)) worst = std::isnan(err) ? INFINITY : err, worst_i = i;
  }
  EXPECT_LE(worst, atol + rel_to_largest * largest_ref)
      << name << ": worst error at " << worst_i << ": got " << g[worst_i] << ", expected "
      << r[worst_i] << " (largest |ref| " << largest_ref << ")";
  std::ostringstream note;
  note << worst << " (largest |ref| " << largest_ref << ")";
  ::testing::Test::RecordProperty(name + "_max_abs_error", note.str());
}

// name → shape of every tensor in a tests/data/reference/*.tsv list ("name<TAB>[a, b]";
// lines starting with '#' are comments).
inline std::map<std::string, Shape> reference_shapes(const std::string& tsv) {
  std::ifstream in(std::string(DARKROOM_TEST_DATA) + "/reference/" + tsv);
  EXPECT_TRUE(in.good()) << "cannot read " << tsv;
  std::map<std::string, Shape> shapes;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const size_t tab = line.find('\t');
    EXPECT_NE(tab, std::string::npos) << line;
    std::string dims = line.substr(tab + 1);
    for (char& ch : dims)
      if (ch == '[' || ch == ']' || ch == ',') ch = ' ';
    std::istringstream ds(dims);
    std::vector<int64_t> d;
    for (int64_t v; ds >> v;) d.push_back(v);
    shapes.emplace(line.substr(0, tab), Shape(d));
  }
  return shapes;
}

}  // namespace darkroom::test
