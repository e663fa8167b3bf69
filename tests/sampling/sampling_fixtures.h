// Loading the reference data written by tools/make_sampling_fixtures.py.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "io/safetensors.h"
#include "test_util.h"

namespace darkroom::test {

inline std::string sampling_fixture(const std::string& file) {
  return std::string(DARKROOM_TEST_DATA) + "/sampling/" + file;
}

// A fixture tensor's values (copied: views into the file may be unaligned).
inline std::vector<float> fixture_floats(const SafetensorsFile& f, const std::string& name) {
  return f.tensor(name).to_floats();
}

// Every value within rel·|ref| (+ abs for values near zero); reports the worst.
inline void expect_near_all(const std::vector<float>& got, const std::vector<float>& ref,
                            double rel, double abs, const std::string& what) {
  ASSERT_EQ(got.size(), ref.size()) << what;
  size_t bad = 0, worst = 0;
  double worst_err = -1;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double err = std::fabs(static_cast<double>(got[i]) - ref[i]);
    const double allowed = abs + rel * std::fabs(ref[i]);
    if (!(err <= allowed)) ++bad;
    if (std::isnan(err) || err - allowed > worst_err) {
      worst_err = std::isnan(err) ? INFINITY : err - allowed;
      worst = i;
    }
  }
  EXPECT_EQ(bad, 0u) << what << ": " << bad << " of " << ref.size()
                     << " values out of tolerance; worst at " << worst << ": got " << got[worst]
                     << ", expected " << ref[worst];
}

}  // namespace darkroom::test
