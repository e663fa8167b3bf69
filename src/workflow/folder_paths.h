// ComfyUI's folder_paths.py: where models, inputs and outputs live.
//
//   <base>/models/{checkpoints,vae,loras,embeddings,controlnet,upscale_models,clip,...}
//   <base>/input  <base>/output  <base>/temp  <base>/user
//
// plus extra model folders from extra_model_paths.yaml. File names given by clients are
// resolved only inside these folders: absolute paths, "..", and symlinks whose real path
// leaves the folder are refused.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace darkroom::workflow {

struct FolderPaths {
  std::string base_directory;
  std::string output_directory;
  std::string input_directory;
  std::string temp_directory;
  std::string user_directory;
  // "checkpoints" → its directories (first is the default), with ComfyUI's folder names.
  std::map<std::string, std::vector<std::string>> model_folders;

  // The layout under `base` (ComfyUI's defaults; created if missing).
  static FolderPaths under(const std::string& base);
  // Adds the folders of an extra_model_paths.yaml (ComfyUI's format: sections with
  // base_path and folder_name: relative paths, one per line).
  void add_extra_model_paths(const std::string& yaml_file);

  // Files in a model folder, relative names with '/', sorted; filtered by the folder's
  // extensions (.safetensors, .ckpt, .pt, .pth, .bin, ...).
  std::vector<std::string> list(const std::string& folder) const;
  // The real path of `name` inside `folder`, or nullopt if it is not there or escapes it.
  std::optional<std::string> find(const std::string& folder, const std::string& name) const;
  // A directory for "output" | "input" | "temp" (ComfyUI's /view `type`).
  std::optional<std::string> directory_for_type(const std::string& type) const;
};

// `name` (with '/' subfolders) resolved inside `root`: nullopt for absolute paths, ".."
// components, NUL bytes, or a real path (symlinks resolved) outside root's real path.
std::optional<std::string> resolve_inside(const std::string& root, const std::string& name);

}  // namespace darkroom::workflow
