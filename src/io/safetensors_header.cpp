#include "io/safetensors_header.h"

#include <algorithm>
#include <array>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

#include "core/error.h"

namespace darkroom {
namespace {

using json = nlohmann::json;

constexpr std::array<std::pair<DType, std::string_view>, 12> kDtypeNames{{
    {DType::F64, "F64"},
    {DType::F32, "F32"},
    {DType::F16, "F16"},
    {DType::BF16, "BF16"},
    {DType::I64, "I64"},
    {DType::I32, "I32"},
    {DType::I16, "I16"},
    {DType::I8, "I8"},
    {DType::U8, "U8"},
    {DType::Bool, "BOOL"},
    {DType::F8E4M3, "F8_E4M3"},
    {DType::F8E5M2, "F8_E5M2"},
}};

// A safetensors header nests at most: top object (0) → entry object or "__metadata__"
// (1) → shape / data_offsets arrays (2) → numbers (3). Containers that start deeper
// are refused while parsing, so no hostile header can build a deep tree.
constexpr int kMaxContainerDepth = 2;

constexpr std::string_view kMetadataKey = "__metadata__";

// Every error names the file: "[safetensors] <source>: <parts...>".
struct Reporter {
  std::string_view source;
  template <class... Args>
  [[noreturn]] void fail(const Args&... args) const {
    ::darkroom::fail("safetensors", source, ": ", args...);
  }
};

// "[2, 3]". Shape's own str() lives with Tensor; this file keeps to error and dtype so
// that the fuzzer can compile it alone.
std::string dims_str(const Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.dims().size(); ++i)
    s += (i ? ", " : "") + std::to_string(shape.dims()[i]);
  return s + "]";
}

uint64_t read_le64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// A JSON value in a few words, for messages. Never dumps containers: dump() recurses,
// and the messages only need to say what kind of thing was found.
std::string describe(const json& v) {
  if (v.is_number() || v.is_boolean() || v.is_null()) return v.dump();
  if (v.is_string()) {
    const auto& s = v.get_ref<const std::string&>();
    return "the string \"" + (s.size() <= 40 ? s : s.substr(0, 40) + "...") + "\"";
  }
  return std::string("an ") + v.type_name();  // "an array", "an object"
}

// nlohmann's parse errors quote the bytes last read, which may be invalid UTF-8 or
// control characters; messages must stay printable (they end up in logs and JSON).
std::string printable(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

// Parses the header JSON, refusing duplicate keys at any level (nlohmann would keep
// the last silently) and containers nested deeper than the format has.
json parse_json(std::span<const uint8_t> text, const Reporter& rep) {
  std::vector<std::set<std::string>> keys_seen;  // one set per open object
  std::vector<std::string> key_at_depth;         // the key being parsed at each depth
  // " inside 'w'": the top-level key whose value is being parsed, if any.
  auto in_entry = [&] {
    return key_at_depth.size() > 1 ? " inside '" + key_at_depth[1] + "'" : std::string();
  };
  auto on_event = [&](int depth, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        if (depth > kMaxContainerDepth) {
          rep.fail("header nests ",
                   event == json::parse_event_t::object_start ? "an object" : "an array",
                   " at depth ", depth, in_entry(),
                   "; a safetensors header nests containers at most ", kMaxContainerDepth, " deep");
        }
        if (event == json::parse_event_t::object_start) keys_seen.emplace_back();
        break;
      case json::parse_event_t::object_end:
        keys_seen.pop_back();
        break;
      case json::parse_event_t::key: {
        const auto& key = parsed.get_ref<const std::string&>();
        if (key_at_depth.size() <= static_cast<size_t>(depth)) key_at_depth.resize(depth + 1);
        key_at_depth[depth] = key;
        if (!keys_seen.back().insert(key).second) {
          if (depth == 1 && key == kMetadataKey) rep.fail("duplicate \"__metadata__\"");
          if (depth == 1) rep.fail("duplicate tensor name '", key, "'");
          rep.fail("duplicate key '", key, "'", in_entry());
        }
        break;
      }
      default:
        break;
    }
    return true;
  };
  try {
    const char* first = reinterpret_cast<const char*>(text.data());
    return json::parse(first, first + text.size(), on_event, /*allow_exceptions=*/true,
                       /*ignore_comments=*/false);
  } catch (const json::exception& e) {
    rep.fail("header is not valid JSON: ", printable(e.what()));
  }
}

// A non-negative JSON integer, or an error naming `what`.
uint64_t get_u64(const json& v, const Reporter& rep, std::string_view tensor,
                 std::string_view what) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer())  // nlohmann stores non-negative integers as unsigned
    rep.fail("tensor '", tensor, "': ", what, " is negative (", describe(v), ")");
  rep.fail("tensor '", tensor, "': ", what, " is ", describe(v),
           ", expected a non-negative integer");
}

const json& require(const json& entry, const char* key, const Reporter& rep,
                    const std::string& name) {
  auto it = entry.find(key);
  if (it == entry.end()) rep.fail("tensor '", name, "': missing \"", key, "\"");
  return *it;
}

std::string list_dtypes() {
  std::string s;
  for (const auto& [t, n] : kDtypeNames) s += (s.empty() ? "" : ", ") + std::string(n);
  return s;
}

// One tensor's entry: types, dtype and shape × dtype size == end − begin. Ranges
// against the data section and each other are checked once all are known.
TensorInfo parse_entry(const std::string& name, const json& entry, const Reporter& rep) {
  if (!entry.is_object())
    rep.fail("tensor '", name, "': entry is ", describe(entry), ", expected an object");
  for (const auto& [key, value] : entry.items()) {
    if (key != "dtype" && key != "shape" && key != "data_offsets")
      rep.fail("tensor '", name, "': unknown key '", key,
               "' (expected dtype, shape, data_offsets)");
  }
  TensorInfo info;
  info.name = name;

  const json& dtype = require(entry, "dtype", rep, name);
  if (!dtype.is_string())
    rep.fail("tensor '", name, "': \"dtype\" is ", describe(dtype), ", expected a string");
  const auto& dtype_str = dtype.get_ref<const std::string&>();
  std::optional<DType> t = parse_safetensors_dtype(dtype_str);
  if (!t)
    rep.fail("tensor '", name, "': unknown dtype '", dtype_str, "' (darkroom reads ", list_dtypes(),
             ")");
  info.dtype = *t;

  const json& shape = require(entry, "shape", rep, name);
  if (!shape.is_array())
    rep.fail("tensor '", name, "': \"shape\" is ", describe(shape), ", expected an array");
  std::vector<int64_t> dims;
  dims.reserve(shape.size());
  for (size_t i = 0; i < shape.size(); ++i) {
    const std::string what = "shape[" + std::to_string(i) + "]";
    const uint64_t d = get_u64(shape[i], rep, name, what);
    if (d > static_cast<uint64_t>(INT64_MAX))
      rep.fail("tensor '", name, "': ", what, " = ", d, " is larger than 2^63 - 1");
    dims.push_back(static_cast<int64_t>(d));
  }
  info.shape = Shape(std::move(dims));

  const json& offsets = require(entry, "data_offsets", rep, name);
  if (!offsets.is_array() || offsets.size() != 2)
    rep.fail("tensor '", name, "': \"data_offsets\" is ", describe(offsets),
             offsets.is_array() ? " of " + std::to_string(offsets.size()) + " elements" : "",
             ", expected [begin, end]");
  info.begin = get_u64(offsets[0], rep, name, "data_offsets[0] (begin)");
  info.end = get_u64(offsets[1], rep, name, "data_offsets[1] (end)");
  if (info.begin > info.end)
    rep.fail("tensor '", name, "': data_offsets [", info.begin, ", ", info.end,
             "] end before begin");

  // Multiply in Shape::numel's order, so that a shape accepted here can never
  // overflow there.
  int64_t numel = 1;
  for (int64_t d : info.shape.dims()) {
    if (__builtin_mul_overflow(numel, d, &numel))
      rep.fail("tensor '", name, "': shape ", dims_str(info.shape),
               " has more than 2^63 - 1 elements");
  }
  uint64_t nbytes = 0;
  if (__builtin_mul_overflow(static_cast<uint64_t>(numel), dtype_size(info.dtype), &nbytes))
    rep.fail("tensor '", name, "': shape ", dims_str(info.shape), " of ", dtype_str,
             " overflows 64-bit byte size");
  if (nbytes != info.end - info.begin)
    rep.fail("tensor '", name, "': shape ", dims_str(info.shape), " of ", dtype_str, " (",
             dtype_size(info.dtype), " bytes each) needs ", nbytes, " bytes but data_offsets [",
             info.begin, ", ", info.end, "] span ", info.end - info.begin);
  return info;
}

std::map<std::string, std::string> parse_metadata(const json& meta, const Reporter& rep) {
  if (!meta.is_object())
    rep.fail("\"__metadata__\" is ", describe(meta), ", expected an object of strings");
  std::map<std::string, std::string> out;
  for (const auto& [key, value] : meta.items()) {
    if (!value.is_string())
      rep.fail("\"__metadata__\" key '", key, "' is ", describe(value), ", expected a string");
    out.emplace(key, value.get<std::string>());
  }
  return out;
}

// Every range inside the data section and no two non-empty ranges sharing a byte.
// Sorts `tensors` by begin (then end, then name) as a side effect.
void check_ranges(std::vector<TensorInfo>& tensors, uint64_t data_size, uint64_t header_len,
                  const Reporter& rep) {
  for (const TensorInfo& t : tensors) {
    if (t.end > data_size)
      rep.fail("tensor '", t.name, "': data_offsets [", t.begin, ", ", t.end,
               "] end past the data section of ", data_size, " bytes (file size ",
               data_size + 8 + header_len, " - 8 - header length ", header_len, ")");
  }
  std::sort(tensors.begin(), tensors.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return std::tie(a.begin, a.end, a.name) < std::tie(b.begin, b.end, b.name);
  });
  // Zero-size tensors own no bytes, so they cannot overlap anything. Among the others,
  // sorted by begin, it is enough to compare each with the previous one.
  const TensorInfo* prev = nullptr;
  for (const TensorInfo& t : tensors) {
    if (t.begin == t.end) continue;
    if (prev && prev->end > t.begin)
      rep.fail("tensors '", prev->name, "' [", prev->begin, ", ", prev->end, ") and '", t.name,
               "' [", t.begin, ", ", t.end, ") overlap");
    prev = &t;
  }
}

}  // namespace

std::string_view safetensors_dtype_name(DType t) {
  for (const auto& [dt, name] : kDtypeNames)
    if (dt == t) return name;
  DR_ASSERT(false, "dtype without a safetensors name");
  return "?";
}

std::optional<DType> parse_safetensors_dtype(std::string_view name) {
  for (const auto& [dt, n] : kDtypeNames)
    if (n == name) return dt;
  return std::nullopt;
}

SafetensorsHeader parse_safetensors_header(std::span<const uint8_t> file, std::string_view source) {
  const Reporter rep{source};
  if (file.size() < 8)
    rep.fail("file is ", file.size(), " bytes, shorter than the 8-byte header length");
  const uint64_t header_len = read_le64(file.data());
  const uint64_t after_len = file.size() - 8;
  if (header_len == 0) rep.fail("header length is 0");
  if (header_len > kSafetensorsMaxHeaderBytes)
    rep.fail("header length ", header_len, " is above the limit of ", kSafetensorsMaxHeaderBytes,
             " bytes");
  if (header_len > after_len)
    rep.fail("header length ", header_len, " is larger than the ", after_len,
             " bytes after the length field (file size ", file.size(), ")");

  const json root = parse_json(file.subspan(8, header_len), rep);
  if (!root.is_object()) rep.fail("header is ", describe(root), ", expected a JSON object");

  SafetensorsHeader header;
  header.data_offset = 8 + header_len;
  header.tensors.reserve(root.size());
  for (const auto& [key, value] : root.items()) {
    if (key == kMetadataKey) {
      header.metadata = parse_metadata(value, rep);
    } else {
      header.tensors.push_back(parse_entry(key, value, rep));
    }
  }
  check_ranges(header.tensors, after_len - header_len, header_len, rep);
  return header;
}

}  // namespace darkroom
