// ComfyUI's folder layout (folder_paths.py) and the confinement of client-given names.
#include "workflow/folder_paths.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <system_error>

#include "core/error.h"

namespace darkroom::workflow {
namespace fs = std::filesystem;

namespace {

// ComfyUI's supported_pt_extensions.
const std::set<std::string> kModelExtensions = {".ckpt", ".pt",          ".pt2", ".bin",
                                                ".pth",  ".safetensors", ".pkl", ".sft"};

// Folder name → (sub-directories of models/, extensions; empty = any file). The first
// directory is the default one. Names and extensions as ComfyUI's folder_paths.py.
struct FolderSpec {
  const char* name;
  std::vector<const char*> dirs;
  bool model_extensions;  // false: any extension listed in `other`
  std::vector<const char*> other;
};

const std::vector<FolderSpec>& folder_specs() {
  static const std::vector<FolderSpec> specs = {
      {"checkpoints", {"checkpoints"}, true, {}},
      {"configs", {"configs"}, false, {".yaml"}},
      {"loras", {"loras"}, true, {}},
      {"vae", {"vae"}, true, {}},
      {"text_encoders", {"text_encoders", "clip"}, true, {}},
      {"diffusion_models", {"unet", "diffusion_models"}, true, {}},
      {"clip_vision", {"clip_vision"}, true, {}},
      {"style_models", {"style_models"}, true, {}},
      {"embeddings", {"embeddings"}, true, {}},
      {"diffusers", {"diffusers"}, false, {"folder"}},
      {"vae_approx", {"vae_approx"}, true, {}},
      {"controlnet", {"controlnet", "t2i_adapter"}, true, {}},
      {"gligen", {"gligen"}, true, {}},
      {"upscale_models", {"upscale_models"}, true, {}},
      {"hypernetworks", {"hypernetworks"}, true, {}},
      {"photomaker", {"photomaker"}, true, {}},
      {"classifiers", {"classifiers"}, false, {""}},
      {"model_patches", {"model_patches"}, true, {}},
      {"audio_encoders", {"audio_encoders"}, true, {}},
  };
  return specs;
}

// ComfyUI's map_legacy(): old folder names still accepted by nodes and yaml files.
std::string canonical_folder(const std::string& name) {
  if (name == "clip") return "text_encoders";
  if (name == "unet") return "diffusion_models";
  return name;
}

const FolderSpec* spec_for(const std::string& folder) {
  for (const FolderSpec& s : folder_specs())
    if (folder == s.name) return &s;
  return nullptr;
}

bool extension_matches(const FolderSpec* spec, const fs::path& file) {
  std::string ext = file.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  if (spec == nullptr || spec->model_extensions) return kModelExtensions.count(ext) > 0;
  for (const char* e : spec->other)
    if (std::string(e).empty() || ext == e) return true;
  return false;
}

// "~/x" and "$VAR/x" as ComfyUI expands them (os.path.expanduser / expandvars).
std::string expand_path(std::string p) {
  if (!p.empty() && p[0] == '~') {
    const char* home = std::getenv("HOME");
    if (home != nullptr) p = std::string(home) + p.substr(1);
  }
  std::string out;
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] != '$') {
      out += p[i];
      continue;
    }
    size_t j = i + 1;
    const bool braced = j < p.size() && p[j] == '{';
    if (braced) ++j;
    size_t k = j;
    while (k < p.size() && (std::isalnum(static_cast<unsigned char>(p[k])) || p[k] == '_')) ++k;
    const std::string var = p.substr(j, k - j);
    const char* value = var.empty() ? nullptr : std::getenv(var.c_str());
    if (value == nullptr || (braced && (k >= p.size() || p[k] != '}'))) {
      out += p[i];  // left as written, like expandvars
      continue;
    }
    out += value;
    i = braced ? k : k - 1;
  }
  return out;
}

}  // namespace

std::optional<std::string> resolve_inside(const std::string& root, const std::string& name) {
  if (name.find('\0') != std::string::npos) return std::nullopt;
  if (!name.empty() && (name[0] == '/' || name[0] == '\\')) return std::nullopt;
  // Reject ".." as a component (both separators, since clients may send Windows paths).
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find_first_of("/\\", start);
    if (end == std::string::npos) end = name.size();
    if (name.compare(start, end - start, "..") == 0 && end - start == 2) return std::nullopt;
    start = end + 1;
  }
  std::error_code ec;
  const fs::path real_root = fs::weakly_canonical(fs::path(root), ec);
  if (ec) return std::nullopt;
  // weakly_canonical resolves every symlink of the part that exists, so a link inside
  // the folder that points outside it shows up as a path outside real_root.
  const fs::path real = fs::weakly_canonical(real_root / fs::path(name), ec);
  if (ec) return std::nullopt;
  const std::string r = real_root.string();
  const std::string p = real.string();
  if (p == r) return p;
  const std::string prefix = r.back() == '/' ? r : r + "/";
  if (p.compare(0, prefix.size(), prefix) != 0) return std::nullopt;
  return p;
}

FolderPaths FolderPaths::under(const std::string& base) {
  FolderPaths f;
  std::error_code ec;
  fs::path b = fs::absolute(fs::path(base), ec);
  DR_CHECK(!ec, "folder_paths", "cannot resolve base directory '", base, "'");
  f.base_directory = b.lexically_normal().string();
  if (f.base_directory.size() > 1 && f.base_directory.back() == '/') f.base_directory.pop_back();
  f.output_directory = (b / "output").string();
  f.input_directory = (b / "input").string();
  f.temp_directory = (b / "temp").string();
  f.user_directory = (b / "user").string();
  for (const FolderSpec& s : folder_specs())
    for (const char* d : s.dirs) f.model_folders[s.name].push_back((b / "models" / d).string());
  for (const std::string& d :
       {f.output_directory, f.input_directory, f.temp_directory, f.user_directory}) {
    fs::create_directories(d, ec);
    DR_CHECK(!ec, "folder_paths", "cannot create '", d, "': ", ec.message());
  }
  for (const auto& [name, dirs] : f.model_folders) fs::create_directories(dirs.front(), ec);
  return f;
}

void FolderPaths::add_extra_model_paths(const std::string& yaml_file) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(yaml_file);
  } catch (const YAML::Exception& e) {
    fail("extra_model_paths", "cannot read '", yaml_file, "': ", e.what());
  }
  if (!root || root.IsNull()) return;
  DR_CHECK(root.IsMap(), "extra_model_paths", "'", yaml_file, "' is not a mapping of sections");
  const fs::path yaml_dir = fs::absolute(fs::path(yaml_file)).parent_path();
  for (const auto& section : root) {
    const YAML::Node& conf = section.second;
    if (!conf || conf.IsNull()) continue;
    DR_CHECK(conf.IsMap(), "extra_model_paths", "section '", section.first.as<std::string>(),
             "' of '", yaml_file, "' is not a mapping");
    fs::path base_path;
    bool is_default = false;
    if (conf["base_path"]) {
      base_path = expand_path(conf["base_path"].as<std::string>());
      if (base_path.is_relative()) base_path = yaml_dir / base_path;
    }
    if (conf["is_default"]) is_default = conf["is_default"].as<bool>();
    for (const auto& entry : conf) {
      const std::string key = entry.first.as<std::string>();
      if (key == "base_path" || key == "is_default") continue;
      const std::string folder = canonical_folder(key);
      // A value is one path per line (a YAML block scalar), as ComfyUI splits it.
      const std::string value = entry.second.as<std::string>();
      size_t start = 0;
      while (start < value.size()) {
        size_t end = value.find('\n', start);
        if (end == std::string::npos) end = value.size();
        std::string line = value.substr(start, end - start);
        start = end + 1;
        while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back())))
          line.pop_back();
        while (!line.empty() && std::isspace(static_cast<unsigned char>(line.front())))
          line.erase(line.begin());
        if (line.empty()) continue;
        fs::path p = expand_path(line);
        if (!base_path.empty()) p = base_path / p;
        const std::string full = p.lexically_normal().string();
        auto& dirs = model_folders[folder];
        if (std::find(dirs.begin(), dirs.end(), full) != dirs.end()) continue;
        if (is_default)
          dirs.insert(dirs.begin(), full);
        else
          dirs.push_back(full);
      }
    }
  }
}

std::vector<std::string> FolderPaths::list(const std::string& folder) const {
  const std::string name = canonical_folder(folder);
  auto it = model_folders.find(name);
  if (it == model_folders.end()) return {};
  const FolderSpec* spec = spec_for(name);
  std::set<std::string> out;
  for (const std::string& dir : it->second) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) continue;
    const bool folders_only =
        spec != nullptr && !spec->other.empty() && std::string(spec->other.front()) == "folder";
    if (folders_only) {
      for (const auto& e : fs::directory_iterator(dir, ec))
        if (e.is_directory(ec)) out.insert(e.path().filename().string());
      continue;
    }
    auto rit = fs::recursive_directory_iterator(dir, ec);
    for (; !ec && rit != fs::recursive_directory_iterator(); rit.increment(ec)) {
      std::error_code fe;
      if (!rit->is_regular_file(fe)) continue;
      if (!extension_matches(spec, rit->path())) continue;
      const std::string rel = rit->path().lexically_relative(dir).generic_string();
      // Listed only if find() would hand it out (no links leading out of the folder).
      if (resolve_inside(dir, rel)) out.insert(rel);
    }
  }
  return {out.begin(), out.end()};
}

std::optional<std::string> FolderPaths::find(const std::string& folder,
                                             const std::string& name) const {
  auto it = model_folders.find(canonical_folder(folder));
  if (it == model_folders.end()) return std::nullopt;
  for (const std::string& dir : it->second) {
    auto p = resolve_inside(dir, name);
    std::error_code ec;
    if (p && fs::exists(*p, ec)) return p;
  }
  return std::nullopt;
}

std::optional<std::string> FolderPaths::directory_for_type(const std::string& type) const {
  if (type == "output") return output_directory;
  if (type == "input") return input_directory;
  if (type == "temp") return temp_directory;
  return std::nullopt;
}

}  // namespace darkroom::workflow
