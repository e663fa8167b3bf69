#include "workflow/prompt_inputs.h"

#include <cctype>
#include <cmath>
#include <limits>

#include "text/python_float.h"
#include "workflow/python_repr.h"

namespace darkroom::workflow {

json input_config(const InputSpec& spec, const FolderPaths& paths, bool hidden) {
  if (hidden) return spec.type;
  json first = spec.type;
  if (spec.type == "COMBO") first = spec.combo ? json(spec.combo(paths)) : json::array();
  json out = json::array({first});
  if (!spec.options.empty()) out.push_back(spec.options);
  return out;
}

namespace {

const char* python_type_name(const json& v) {
  switch (v.type()) {
    case json::value_t::null:
      return "NoneType";
    case json::value_t::array:
      return "list";
    case json::value_t::object:
      return "dict";
    case json::value_t::boolean:
      return "bool";
    case json::value_t::string:
      return "str";
    case json::value_t::number_float:
      return "float";
    default:
      return "int";
  }
}

// int(s) for a str: [sign] digits with single underscores between them, surrounding
// whitespace ignored. Values past 64 bits are kept as a float (compared by magnitude).
std::optional<json> parse_python_int(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  if (b == e) return std::nullopt;
  bool neg = false;
  if (s[b] == '+' || s[b] == '-') neg = s[b++] == '-';
  if (b == e) return std::nullopt;
  unsigned __int128 v = 0;
  bool big = false;
  double approx = 0;
  bool prev_digit = false;
  for (size_t i = b; i < e; ++i) {
    const char c = s[i];
    if (c == '_') {
      if (!prev_digit || i + 1 == e) return std::nullopt;
      prev_digit = false;
      continue;
    }
    if (c < '0' || c > '9') return std::nullopt;
    prev_digit = true;
    approx = approx * 10 + (c - '0');
    if (!big) {
      v = v * 10 + static_cast<unsigned>(c - '0');
      if (v > std::numeric_limits<uint64_t>::max()) big = true;
    }
  }
  if (big) return json(neg ? -approx : approx);
  if (neg) {
    if (v > static_cast<unsigned __int128>(std::numeric_limits<int64_t>::max()) + 1)
      return json(-approx);
    return json(static_cast<int64_t>(-static_cast<__int128>(v)));
  }
  if (v > static_cast<unsigned __int128>(std::numeric_limits<int64_t>::max()))
    return json(static_cast<uint64_t>(v));
  return json(static_cast<int64_t>(v));
}

bool python_truthy(const json& v) {
  switch (v.type()) {
    case json::value_t::null:
      return false;
    case json::value_t::boolean:
      return v.get<bool>();
    case json::value_t::string:
    case json::value_t::array:
    case json::value_t::object:
      return !v.empty() && !(v.is_string() && v.get_ref<const std::string&>().empty());
    case json::value_t::number_float:
      return v.get<double>() != 0.0;
    case json::value_t::number_unsigned:
      return v.get<uint64_t>() != 0;
    default:
      return v.get<int64_t>() != 0;
  }
}

}  // namespace

Coerced coerce_literal(const InputSpec& spec, const json& raw) {
  Coerced out;
  if (spec.type == "INT") {
    if (raw.is_number_integer() || raw.is_number_unsigned()) {
      out.value = raw;
    } else if (raw.is_boolean()) {
      out.value = raw.get<bool>() ? 1 : 0;
    } else if (raw.is_number_float()) {
      const double d = raw.get<double>();
      if (std::isnan(d)) {
        out.error = "cannot convert float NaN to integer";
      } else if (std::isinf(d)) {
        out.error = "cannot convert float infinity to integer";
      } else {
        const double t = std::trunc(d);
        if (t >= -9.2e18 && t <= 9.2e18)
          out.value = static_cast<int64_t>(t);
        else
          out.value = t;
      }
    } else if (raw.is_string()) {
      if (auto v = parse_python_int(raw.get<std::string>()))
        out.value = *v;
      else
        out.error = "invalid literal for int() with base 10: " + python_repr(raw);
    } else {
      out.error = std::string(
                      "int() argument must be a string, a bytes-like object or a real "
                      "number, not '") +
                  python_type_name(raw) + "'";
    }
  } else if (spec.type == "FLOAT") {
    if (raw.is_number()) {
      out.value = raw.get<double>();
    } else if (raw.is_boolean()) {
      out.value = raw.get<bool>() ? 1.0 : 0.0;
    } else if (raw.is_string()) {
      if (auto v = text::parse_python_float(raw.get<std::string>()))
        out.value = *v;
      else
        out.error = "could not convert string to float: " + python_repr(raw);
    } else {
      out.error = std::string("float() argument must be a string or a real number, not '") +
                  python_type_name(raw) + "'";
    }
  } else if (spec.type == "STRING") {
    out.value = python_str(raw);
  } else if (spec.type == "BOOLEAN") {
    out.value = python_truthy(raw);
  } else {
    out.value = raw;
  }
  return out;
}

std::optional<std::string> link_node_id(const json& link) {
  if (!link.is_array() || link.empty()) return std::nullopt;
  const json& id = link[0];
  if (id.is_string()) return id.get<std::string>();
  if (id.is_number_integer() || id.is_number_unsigned()) return id.dump();
  return std::nullopt;
}

const json& node_inputs_json(const json& node) {
  static const json empty = json::object();
  if (!node.is_object()) return empty;
  auto it = node.find("inputs");
  return it != node.end() && it->is_object() ? *it : empty;
}

}  // namespace darkroom::workflow
