// The sampler_name and scheduler combo lists (KSampler, KSamplerAdvanced, KSamplerSelect):
// the names the sampling registry holds, in its order (ComfyUI's KSampler.SAMPLERS and
// SCHEDULERS). Computed when asked: the registry's tables may not be initialised yet when
// the nodes' static registrars run (static initialisation order across files).
#pragma once

#include <string>
#include <vector>

#include "sampling/registry.h"
#include "sampling/schedule.h"
#include "workflow/folder_paths.h"

namespace darkroom::workflow {

inline std::vector<std::string> sampler_names(const FolderPaths&) {
  std::vector<std::string> out;
  for (const sampling::SamplerInfo& s : sampling::samplers()) out.emplace_back(s.name);
  return out;
}

inline std::vector<std::string> scheduler_names(const FolderPaths&) {
  std::vector<std::string> out;
  for (const sampling::SchedulerInfo& s : sampling::schedulers()) out.emplace_back(s.name);
  return out;
}

}  // namespace darkroom::workflow
