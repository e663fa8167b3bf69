// The names and shapes of real single-file checkpoints, built into the executable from
// tests/data/reference/*.tsv (the lists the key-layout tests read, copied from
// shared/reference/): make-demo-model and the pipeline benchmarks make random weights
// for exactly these tensors.
//
//   sd15-ldm-tensors.tsv   SD 1.5 (LDM layout: model.diffusion_model., cond_stage_model.,
//                          first_stage_model.)
//   sdxl-sgm-tensors.tsv   SDXL 1.0 base (SGM layout: conditioner.embedders.0 CLIP-L,
//                          conditioner.embedders.1 OpenCLIP bigG)
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/shape.h"

namespace darkroom::pipeline {

// The .tsv texts, as built in (generated reference_tensors.cpp).
std::string_view sd15_ldm_tensor_tsv();
std::string_view sdxl_sgm_tensor_tsv();

// "name<TAB>[a, b, ...]" lines, in file order; '#' lines are comments. Throws
// darkroom::Error naming the line for anything else.
std::vector<std::pair<std::string, Shape>> parse_tensor_list(std::string_view tsv);

}  // namespace darkroom::pipeline
