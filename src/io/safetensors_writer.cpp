#include "io/safetensors_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "io/safetensors.h"

namespace darkroom {
namespace {

// The data section starts at a multiple of this, so that a mapped file's first tensor
// (and every later one whose predecessors' sizes are multiples of it) is aligned.
constexpr size_t kDataAlignment = 64;

std::string build_header(const std::string& path,
                         const std::vector<std::pair<std::string, Tensor>>& tensors,
                         const std::map<std::string, std::string>& metadata) {
  // ordered_json keeps the entries in data order, which makes files easy to read by eye.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    auto& meta = header["__metadata__"] = nlohmann::ordered_json::object();
    for (const auto& [key, value] : metadata) meta[key] = value;
  }
  std::set<std::string> names;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    DR_CHECK(name != "__metadata__", "safetensors", path,
             ": \"__metadata__\" is reserved and cannot name a tensor");
    DR_CHECK(names.insert(name).second, "safetensors", path, ": duplicate tensor name '", name,
             "'");
    DR_CHECK(t.defined(), "safetensors", path, ": tensor '", name, "' is undefined");
    DR_CHECK(t.device().type == DeviceType::Cpu, "safetensors", path, ": tensor '", name,
             "' is on ", t.device(), "; copy it to the CPU first");
    auto& entry = header[name] = nlohmann::ordered_json::object();
    entry["dtype"] = safetensors_dtype_name(t.dtype());
    entry["shape"] = t.shape().dims();
    entry["data_offsets"] = {offset, offset + t.nbytes()};
    offset += t.nbytes();
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception& e) {
    // Names and metadata must be valid UTF-8 to be JSON strings.
    fail("safetensors", path, ": cannot encode the header: ", e.what());
  }
  // Pad N so that 8 + N is a multiple of kDataAlignment.
  const size_t total = 8 + text.size();
  text.append((kDataAlignment - total % kDataAlignment) % kDataAlignment, ' ');
  return text;
}

void write_all(int fd, const void* data, size_t n, const std::string& tmp) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) fail("safetensors", tmp, ": write failed: ", std::strerror(errno));
    p += w;
    n -= static_cast<size_t>(w);
  }
}

}  // namespace

void write_safetensors(const std::string& path,
                       const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  const std::string header = build_header(path, tensors, metadata);

  std::string tmp = path + ".tmp.XXXXXX";
  const int fd = ::mkstemp(tmp.data());
  if (fd < 0) fail("safetensors", path, ": cannot create a temporary file: ", std::strerror(errno));
  bool is_open = true;
  try {
    uint8_t len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(header.size() >> (8 * i));
    write_all(fd, len, 8, tmp);
    write_all(fd, header.data(), header.size(), tmp);
    for (const auto& [name, t] : tensors) write_all(fd, t.raw(), t.nbytes(), tmp);
    // mkstemp makes the file 0600; a weights file is for everyone to read.
    if (::fchmod(fd, 0644) != 0 || ::fsync(fd) != 0)
      fail("safetensors", tmp, ": cannot finish the file: ", std::strerror(errno));
    is_open = false;  // close() releases the descriptor even when it reports an error
    if (::close(fd) != 0) fail("safetensors", tmp, ": close failed: ", std::strerror(errno));
  } catch (...) {
    if (is_open) ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    fail("safetensors", path, ": cannot rename ", tmp, " into place: ", std::strerror(err));
  }
}

}  // namespace darkroom
