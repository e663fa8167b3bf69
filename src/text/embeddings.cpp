#include "text/embeddings.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/log.h"
#include "io/safetensors.h"
#include "io/torch_checkpoint.h"

namespace darkroom::text {
namespace {

namespace fs = std::filesystem;

bool ends_with_ci(std::string_view s, std::string_view suffix) {
  if (s.size() < suffix.size()) return false;
  return std::equal(suffix.begin(), suffix.end(), s.end() - static_cast<ptrdiff_t>(suffix.size()),
                    [](char a, char b) { return std::tolower(a) == std::tolower(b); });
}

// Which tensor of a file holding `names` (sorted) ComfyUI's load_embed takes.
std::string pick(const std::vector<std::string>& names, std::string_view key) {
  for (const std::string& n : names)
    if (n.rfind("string_to_param.", 0) == 0) return n;
  for (const std::string& n : names)
    if (n == key) return n;
  return names.front();
}

// [n, C] f32 from a 1-D or 2-D tensor of any float dtype.
Tensor as_vectors(const Tensor& t, const std::string& path, const std::string& name) {
  DR_CHECK(t.ndim() == 1 || t.ndim() == 2, "embedding", path, ": tensor '", name, "' has shape ",
           t.shape().str(), ", expected [C] or [n, C]");
  DR_CHECK(t.dtype() == DType::F32 || t.dtype() == DType::F16 || t.dtype() == DType::BF16,
           "embedding", path, ": tensor '", name, "' is ", dtype_name(t.dtype()),
           ", expected f32, f16 or bf16");
  const int64_t n = t.ndim() == 1 ? 1 : t.dim(0), c = t.dim(t.ndim() - 1);
  DR_CHECK(n >= 1 && c >= 1, "embedding", path, ": tensor '", name, "' is empty");
  return Tensor::from_floats(t.to_floats(), {n, c});
}

}  // namespace

Tensor read_embedding_file(const std::string& path, std::string_view key) {
  std::vector<std::string> names;
  if (ends_with_ci(path, ".safetensors")) {
    const SafetensorsFile f = SafetensorsFile::open(path);
    for (const TensorInfo& t : f.tensors()) names.push_back(t.name);
    DR_CHECK(!names.empty(), "embedding", path, ": the file holds no tensor");
    std::sort(names.begin(), names.end());
    const std::string name = pick(names, key);
    return as_vectors(f.tensor(name), path, name);
  }
  const TorchCheckpoint f = TorchCheckpoint::open(path);
  for (const CkptTensorInfo& t : f.tensors()) names.push_back(t.name);  // sorted
  DR_CHECK(!names.empty(), "embedding", path, ": the file holds no tensor");
  const std::string name = pick(names, key);
  return as_vectors(f.tensor(name), path, name);
}

EmbeddingDirectory::EmbeddingDirectory(std::vector<std::string> folders, int64_t width,
                                       std::string key)
    : folders_(std::move(folders)), width_(width), key_(std::move(key)) {}

std::optional<std::string> EmbeddingDirectory::resolve(const std::string& name) const {
  if (name.empty()) return std::nullopt;
  for (const std::string& folder : folders_) {
    std::error_code ec;
    const fs::path dir = fs::weakly_canonical(fs::absolute(folder, ec), ec);
    if (ec) continue;
    const fs::path file = fs::weakly_canonical(dir / name, ec);
    if (ec) continue;
    // os.path.commonpath((dir, file)) == dir: the name must stay inside the folder.
    const auto [d, f] = std::mismatch(dir.begin(), dir.end(), file.begin(), file.end());
    if (d != dir.end()) continue;
    if (fs::is_regular_file(file, ec)) return file.string();
    for (const char* ext : {".safetensors", ".pt", ".bin"}) {
      const fs::path with = file.string() + ext;
      if (fs::is_regular_file(with, ec)) return with.string();
    }
  }
  return std::nullopt;
}

std::optional<Tensor> EmbeddingDirectory::find(const std::string& name) const {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = cache_.find(name); it != cache_.end()) return it->second;
  }
  std::optional<Tensor> out;
  if (const std::optional<std::string> path = resolve(name)) {
    try {
      Tensor v = read_embedding_file(*path, key_);
      if (v.dim(1) == width_) {
        out = std::move(v);
      } else {
        DR_LOG(Warn) << "embedding " << name << " (" << *path << ") has vectors of width "
                     << v.dim(1) << ", the text model " << width_ << ": left out";
      }
    } catch (const Error& e) {
      DR_LOG(Warn) << "embedding " << name << ": " << e.what();
    }
  } else if (name.front() != ',' && name.back() != ',') {
    // (A name with commas is looked up again without them: warn only then.)
    DR_LOG(Warn) << "embedding " << name << " not found";
  }
  std::lock_guard<std::mutex> lock(mu_);
  cache_.emplace(name, out);
  return out;
}

EmbeddingLookup EmbeddingDirectory::lookup() const {
  return [this](const std::string& name) -> std::optional<int32_t> {
    const std::optional<Tensor> v = find(name);
    if (!v) return std::nullopt;
    return static_cast<int32_t>(v->dim(0));
  };
}

}  // namespace darkroom::text
