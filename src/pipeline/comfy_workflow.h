// The ComfyUI graphs equivalent to a text-to-image run, for the PNG metadata that
// ComfyUI's SaveImage writes and its loader reads back:
//
//   "prompt"    API format: {"3": {"class_type": "KSampler", "inputs": {...}}, ...}, with
//               the node ids of ComfyUI's default graph (4 checkpoint, 6/7 text, 5 latent,
//               3 sampler, 8 decode, 9 save)
//   "workflow"  UI format (LiteGraph): nodes with widgets_values, links, positions
#pragma once

#include <string>

#include "pipeline/sd15_pipeline.h"

namespace darkroom::pipeline {

struct WorkflowInfo {
  std::string ckpt_name;  // CheckpointLoaderSimple's ckpt_name (the file's name)
  std::string filename_prefix = "darkroom";
};

std::string comfy_api_prompt(const GenerateParams& p, const WorkflowInfo& info);
std::string comfy_ui_workflow(const GenerateParams& p, const WorkflowInfo& info);

}  // namespace darkroom::pipeline
