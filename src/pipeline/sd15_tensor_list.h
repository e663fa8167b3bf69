// The names and shapes of an SD 1.5 single-file checkpoint (LDM layout), built into the
// executable from tests/data/reference/sd15-ldm-tensors.tsv (the one list both the
// key-layout tests and make-demo-model use).
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/shape.h"

namespace darkroom::pipeline {

// The .tsv's text, as built in (generated sd15_tensor_list.cpp).
std::string_view sd15_ldm_tensor_tsv();

// "name<TAB>[a, b, ...]" lines, in file order; '#' lines are comments. Throws
// darkroom::Error naming the line for anything else.
std::vector<std::pair<std::string, Shape>> parse_tensor_list(std::string_view tsv);

}  // namespace darkroom::pipeline
