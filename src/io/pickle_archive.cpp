#include "io/pickle_archive.h"

#include <minizip/unzip.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <set>
#include <sstream>

#include "core/error.h"
#include "io/pickle_vm.h"

namespace darkroom {
namespace {

// Limits on the archive itself: far above any real checkpoint (an SD model has about
// 1,200 entries and a data.pkl of ~100 KB).
constexpr uint64_t kMaxEntries = 1u << 20;
constexpr uint64_t kMaxPickleBytes = 256u << 20;
constexpr int kMaxDepth = 64;
constexpr uint64_t kMaxVisits = 16u << 20;

// minizip reads through these callbacks from a span in memory, so the same code serves
// mapped files and the fuzzer.
struct MemStream {
  std::span<const uint8_t> bytes;
  uint64_t pos = 0;
};

voidpf ZCALLBACK mem_open(voidpf opaque, const void*, int) {
  return opaque;
}
uLong ZCALLBACK mem_read(voidpf, voidpf stream, void* buf, uLong size) {
  auto* s = static_cast<MemStream*>(stream);
  const uint64_t left = s->pos < s->bytes.size() ? s->bytes.size() - s->pos : 0;
  const uint64_t n = std::min<uint64_t>(size, left);
  if (n) std::memcpy(buf, s->bytes.data() + s->pos, n);
  s->pos += n;
  return static_cast<uLong>(n);
}
uLong ZCALLBACK mem_write(voidpf, voidpf, const void*, uLong) {
  return 0;
}
ZPOS64_T ZCALLBACK mem_tell(voidpf, voidpf stream) {
  return static_cast<MemStream*>(stream)->pos;
}
long ZCALLBACK mem_seek(voidpf, voidpf stream, ZPOS64_T offset, int origin) {
  auto* s = static_cast<MemStream*>(stream);
  uint64_t base = 0;
  if (origin == ZLIB_FILEFUNC_SEEK_CUR)
    base = s->pos;
  else if (origin == ZLIB_FILEFUNC_SEEK_END)
    base = s->bytes.size();
  else if (origin != ZLIB_FILEFUNC_SEEK_SET)
    return -1;
  uint64_t target = 0;
  if (__builtin_add_overflow(base, offset, &target) || target > s->bytes.size()) return -1;
  s->pos = target;
  return 0;
}
int ZCALLBACK mem_close(voidpf, voidpf) {
  return 0;
}
int ZCALLBACK mem_error(voidpf, voidpf) {
  return 0;
}

// RAII over an unzFile reading from memory.
class Zip {
 public:
  Zip(std::span<const uint8_t> bytes, std::string_view source) : stream_{bytes}, source_(source) {
    zlib_filefunc64_def f{};
    f.zopen64_file = mem_open;
    f.zread_file = mem_read;
    f.zwrite_file = mem_write;
    f.ztell64_file = mem_tell;
    f.zseek64_file = mem_seek;
    f.zclose_file = mem_close;
    f.zerror_file = mem_error;
    f.opaque = &stream_;
    zip_ = unzOpen2_64("<memory>", &f);
    if (zip_ == nullptr) fail("ckpt", source_, ": not a readable ZIP archive (torch.save format)");
  }
  ~Zip() { unzClose(zip_); }
  Zip(const Zip&) = delete;
  Zip& operator=(const Zip&) = delete;
  unzFile get() const { return zip_; }

 private:
  MemStream stream_;
  std::string_view source_;
  unzFile zip_ = nullptr;
};

// Reads the current entry whole (inflating if needed); minizip checks the CRC at close.
std::vector<uint8_t> read_current(unzFile zip, uint64_t size, const std::string& name,
                                  std::string_view source) {
  if (unzOpenCurrentFile(zip) != UNZ_OK) fail("ckpt", source, ": cannot open entry '", name, "'");
  std::vector<uint8_t> out(size);
  uint64_t got = 0;
  while (got < size) {
    const unsigned chunk = static_cast<unsigned>(std::min<uint64_t>(size - got, 1u << 30));
    const int n = unzReadCurrentFile(zip, out.data() + got, chunk);
    if (n <= 0) break;
    got += static_cast<uint64_t>(n);
  }
  char extra;
  const bool more = unzReadCurrentFile(zip, &extra, 1) > 0;
  const int close = unzCloseCurrentFile(zip);
  if (got != size || more || close != UNZ_OK)
    fail("ckpt", source, ": entry '", name, "' is corrupt (", got, " of ", size, " bytes read",
         close == UNZ_CRCERROR ? ", CRC mismatch" : "", ")");
  return out;
}

struct RawEntry {
  CkptEntry entry;
  uint64_t compressed = 0;
};

// Every entry with its data position, from the central directory and local headers.
std::map<std::string, RawEntry> list_entries(unzFile zip, std::span<const uint8_t> file,
                                             std::string_view source) {
  unz_global_info64 gi{};
  if (unzGetGlobalInfo64(zip, &gi) != UNZ_OK) fail("ckpt", source, ": unreadable ZIP directory");
  if (gi.number_entry > kMaxEntries)
    fail("ckpt", source, ": ", gi.number_entry, " entries is more than ", kMaxEntries);
  std::map<std::string, RawEntry> out;
  int rc = unzGoToFirstFile(zip);
  for (uint64_t k = 0; k < gi.number_entry; ++k) {
    if (rc != UNZ_OK)
      fail("ckpt", source, ": ZIP directory is corrupt at entry ", k, " of ", gi.number_entry);
    unz_file_info64 info{};
    char name[1024];
    if (unzGetCurrentFileInfo64(zip, &info, name, sizeof name, nullptr, 0, nullptr, 0) != UNZ_OK ||
        info.size_filename >= sizeof name)
      fail("ckpt", source, ": unreadable ZIP directory entry ", k);
    RawEntry e;
    e.entry.name.assign(name, info.size_filename);
    e.entry.stored = info.compression_method == 0;
    e.entry.size = info.uncompressed_size;
    e.compressed = info.compressed_size;
    if (!e.entry.stored && info.compression_method != Z_DEFLATED)
      fail("ckpt", source, ": entry '", e.entry.name, "' uses compression method ",
           info.compression_method);
    // deflate expands at most ~1032:1; a larger claim would only make us allocate.
    if (!e.entry.stored && e.entry.size / 1032 > e.compressed + 1)
      fail("ckpt", source, ": entry '", e.entry.name, "' claims an impossible size ", e.entry.size);
    if (e.entry.stored && e.compressed != e.entry.size)
      fail("ckpt", source, ": stored entry '", e.entry.name, "' has two sizes");
    // The data's file offset is known only once the local header has been read.
    if (unzOpenCurrentFile(zip) != UNZ_OK)
      fail("ckpt", source, ": cannot open entry '", e.entry.name, "'");
    e.entry.data_offset = unzGetCurrentFileZStreamPos64(zip);
    unzCloseCurrentFile(zip);
    if (e.entry.data_offset > file.size() || e.compressed > file.size() - e.entry.data_offset)
      fail("ckpt", source, ": entry '", e.entry.name, "' runs past the end of the file");
    if (!out.emplace(e.entry.name, e).second)
      fail("ckpt", source, ": entry '", e.entry.name, "' appears twice");
    rc = unzGoToNextFile(zip);
  }
  return out;
}

std::string scalar_text(const PickleValue* v) {
  std::ostringstream os;
  switch (v->kind) {
    case PickleKind::None:
      return "None";
    case PickleKind::Bool:
      return v->b ? "True" : "False";
    case PickleKind::Int:
      return std::to_string(v->i);
    case PickleKind::Float:
      os.precision(17);
      os << v->f;
      return os.str();
    case PickleKind::String:
      return v->s;
    case PickleKind::Global:
      return v->s;
    default:
      return "";
  }
}

bool is_contiguous(const std::vector<int64_t>& size, const std::vector<int64_t>& stride) {
  int64_t expected = 1;
  for (size_t d = size.size(); d-- > 0;) {
    if (size[d] != 1 && stride[d] != expected) return false;
    expected *= size[d];
  }
  return true;
}

class Flattener {
 public:
  Flattener(CkptArchive& out, std::string_view source) : out_(out), source_(source) {}

  void walk(const PickleValue* v, const std::string& name, int depth) {
    if (++visits_ > kMaxVisits)
      fail("ckpt", source_, ": data.pkl holds more than ", kMaxVisits, " values");
    if (depth > kMaxDepth)
      fail("ckpt", source_, ": data.pkl nests deeper than ", kMaxDepth, " at '", name, "'");
    auto join = [&](const std::string& key) { return name.empty() ? key : name + "." + key; };
    switch (v->kind) {
      case PickleKind::Dict:
        for (const auto& [k, val] : v->entries) {
          if (k->kind != PickleKind::String && k->kind != PickleKind::Int)
            fail("ckpt", source_, ": a dict under '", name,
                 "' has a key that is not a string or integer");
          walk(val, join(scalar_text(k)), depth + 1);
        }
        break;
      case PickleKind::List:
      case PickleKind::Tuple:
        for (size_t k = 0; k < v->items.size(); ++k)
          walk(v->items[k], join(std::to_string(k)), depth + 1);
        break;
      case PickleKind::Tensor:
        add_tensor(v->tensor, name);
        break;
      case PickleKind::Storage:
        fail("ckpt", source_, ": '", name, "' is a bare storage, not a tensor");
      default:
        if (!out_.metadata.emplace(name, scalar_text(v)).second) duplicate(name);
    }
  }

 private:
  [[noreturn]] void duplicate(const std::string& name) {
    fail("ckpt", source_, ": two values are named '", name, "'");
  }

  void add_tensor(const PickleTensor& t, const std::string& name) {
    if (!names_.insert(name).second) duplicate(name);
    CkptTensorInfo info;
    info.name = name;
    info.dtype = t.storage.dtype;
    info.shape = Shape(t.size);
    info.stride = t.stride;
    info.storage = t.storage.key;
    info.byte_offset = static_cast<uint64_t>(t.storage_offset) * dtype_size(info.dtype);
    info.contiguous = is_contiguous(t.size, t.stride);
    // The VM's extent check skips empty tensors, whose other dims may be huge.
    int64_t numel = 1;
    for (int64_t d : t.size)
      if (__builtin_mul_overflow(numel, d, &numel))
        fail("ckpt", source_, ": tensor '", name, "' has too many elements");
    out_.tensors.push_back(std::move(info));
    auto [it, fresh] = storage_dtype_.emplace(t.storage.key, t.storage.dtype);
    if (!fresh && it->second != t.storage.dtype)
      fail("ckpt", source_, ": storage '", t.storage.key, "' is read as two dtypes");
    int64_t& need = storage_numel_[t.storage.key];
    need = std::max(need, t.storage.numel);
  }

 public:
  // Per storage key: its dtype and the largest numel any persistent id claimed for it
  // (every tensor was checked against that numel by the VM).
  std::map<std::string, DType> storage_dtype_;
  std::map<std::string, int64_t> storage_numel_;

 private:
  std::set<std::string> names_;
  CkptArchive& out_;
  std::string_view source_;
  uint64_t visits_ = 0;
};

}  // namespace

CkptArchive parse_torch_archive(std::span<const uint8_t> file, std::string_view source) {
  // The pre-1.6 format starts with the pickled magic number: PROTO 2, LONG1 of 10 bytes.
  static constexpr uint8_t kLegacy[] = {0x80, 0x02, 0x8a, 0x0a};
  if (file.size() >= 4 && std::memcmp(file.data(), kLegacy, 4) == 0)
    fail("ckpt", source,
         ": legacy (pre-1.6) torch.save format is not supported; re-save it "
         "with a current PyTorch or convert it to safetensors");
  if (file.size() < 4 || std::memcmp(file.data(), "PK\x03\x04", 4) != 0)
    fail("ckpt", source, ": not a torch.save checkpoint (no ZIP signature)");

  Zip zip(file, source);
  std::map<std::string, RawEntry> entries = list_entries(zip.get(), file, source);

  CkptArchive out;
  const std::string* pkl = nullptr;
  for (const auto& [name, e] : entries) {
    const size_t slash = name.find('/');
    if (slash != std::string::npos && slash > 0 && name.substr(slash) == "/data.pkl") {
      if (pkl != nullptr)
        fail("ckpt", source, ": two data.pkl entries ('", *pkl, "', '", name, "')");
      pkl = &name;
      out.prefix = name.substr(0, slash);
    }
  }
  if (pkl == nullptr)
    fail("ckpt", source, ": no <name>/data.pkl entry (not a torch.save checkpoint)");
  const RawEntry& pe = entries.at(*pkl);
  if (pe.entry.size > kMaxPickleBytes)
    fail("ckpt", source, ": data.pkl of ", pe.entry.size, " bytes is larger than ",
         kMaxPickleBytes);
  if (unzLocateFile(zip.get(), pkl->c_str(), 1) != UNZ_OK)
    fail("ckpt", source, ": cannot find '", *pkl, "'");
  const std::vector<uint8_t> pickle = read_current(zip.get(), pe.entry.size, *pkl, source);
  const PickleResult program = run_restricted_pickle(pickle, source);

  Flattener flat(out, source);
  flat.walk(program.root, "", 0);
  std::sort(out.tensors.begin(), out.tensors.end(),
            [](const CkptTensorInfo& a, const CkptTensorInfo& b) { return a.name < b.name; });

  // Each storage: present, and as long as the largest numel any persistent id gave it
  // (the VM checked every tensor against that numel).
  for (const auto& [key, numel] : flat.storage_numel_) {
    const std::string name = out.prefix + "/data/" + key;
    auto it = entries.find(name);
    if (it == entries.end()) fail("ckpt", source, ": storage entry '", name, "' is missing");
    const DType dtype = flat.storage_dtype_.at(key);
    uint64_t need = 0;
    if (__builtin_mul_overflow(static_cast<uint64_t>(numel), dtype_size(dtype), &need) ||
        it->second.entry.size < need)
      fail("ckpt", source, ": storage '", name, "' holds ", it->second.entry.size,
           " bytes but its tensors need ", numel, " × ", dtype_size(dtype));
    out.storages.emplace(key, it->second.entry);
  }
  return out;
}

std::span<const uint8_t> ckpt_entry_bytes(std::span<const uint8_t> file, const CkptEntry& entry,
                                          std::string_view source, std::vector<uint8_t>& scratch) {
  if (entry.stored) {
    DR_ASSERT(entry.data_offset <= file.size() && entry.size <= file.size() - entry.data_offset);
    return file.subspan(entry.data_offset, entry.size);
  }
  Zip zip(file, source);
  if (unzLocateFile(zip.get(), entry.name.c_str(), 1) != UNZ_OK)
    fail("ckpt", source, ": cannot find '", entry.name, "'");
  scratch = read_current(zip.get(), entry.size, entry.name, source);
  return scratch;
}

}  // namespace darkroom
