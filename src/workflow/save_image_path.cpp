// ComfyUI's get_save_image_path and json.dumps, restated (see save_image_path.h).
#include "workflow/save_image_path.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <vector>

#include "core/error.h"

namespace darkroom::workflow {
namespace {

namespace fs = std::filesystem;

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
}

std::string two_digits(int v) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%02d", v);
  return buf;
}

// os.path.normpath (POSIX): drops "" and "." components, folds "x/.." pairs, keeps
// leading ".." of relative paths, "." for an empty result.
std::string normpath(const std::string& p) {
  if (p.empty()) return ".";
  const bool absolute = p[0] == '/';
  std::vector<std::string> parts;
  size_t i = 0;
  while (i <= p.size()) {
    const size_t j = std::min(p.find('/', i), p.size());
    const std::string part = p.substr(i, j - i);
    i = j + 1;
    if (part.empty() || part == ".") continue;
    if (part == ".." && ((!parts.empty() && parts.back() != "..") || absolute)) {
      if (!parts.empty()) parts.pop_back();
      continue;
    }
    parts.push_back(part);
  }
  std::string out = absolute ? "/" : "";
  for (size_t k = 0; k < parts.size(); ++k) out += (k ? "/" : "") + parts[k];
  return out.empty() ? "." : out;
}

std::string dirname_of(const std::string& p) {
  const size_t slash = p.rfind('/');
  if (slash == std::string::npos) return "";
  std::string head = p.substr(0, slash + 1);
  // os.path.dirname strips trailing slashes unless the head is all slashes.
  while (head.size() > 1 && head.back() == '/') head.pop_back();
  return head;
}

std::string basename_of(const std::string& p) {
  const size_t slash = p.rfind('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

// Python's int(s) for what ComfyUI parses out of a file name: optional surrounding
// whitespace, an optional sign, decimal digits. nullopt where int() raises.
std::optional<int64_t> python_int(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  bool neg = false;
  if (b < e && (s[b] == '+' || s[b] == '-')) neg = s[b++] == '-';
  if (b == e) return std::nullopt;
  int64_t v = 0;
  for (size_t i = b; i < e; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return std::nullopt;
    if (v > (INT64_MAX - 9) / 10) return std::nullopt;  // beyond any real counter
    v = v * 10 + (s[i] - '0');
  }
  return neg ? -v : v;
}

void dump_python(const nlohmann::json& v, std::string& out) {
  if (v.is_object()) {
    out += '{';
    bool first = true;
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (!first) out += ", ";
      first = false;
      out += nlohmann::json(it.key()).dump(-1, ' ', true);
      out += ": ";
      dump_python(it.value(), out);
    }
    out += '}';
  } else if (v.is_array()) {
    out += '[';
    for (size_t i = 0; i < v.size(); ++i) {
      if (i) out += ", ";
      dump_python(v[i], out);
    }
    out += ']';
  } else if (v.is_number_float()) {
    const double d = v.get<double>();
    // Python writes non-finite floats as NaN / Infinity (not valid JSON, but what it does).
    if (std::isnan(d))
      out += "NaN";
    else if (std::isinf(d))
      out += d > 0 ? "Infinity" : "-Infinity";
    else
      out += v.dump();  // shortest round trip, "1e-05" and "3.0" as Python's repr
  } else {
    out += v.dump(-1, ' ', true);
  }
}

}  // namespace

std::string compute_save_vars(std::string s, int64_t image_width, int64_t image_height,
                              const std::tm& now) {
  replace_all(s, "%width%", std::to_string(image_width));
  replace_all(s, "%height%", std::to_string(image_height));
  replace_all(s, "%year%", std::to_string(now.tm_year + 1900));
  replace_all(s, "%month%", two_digits(now.tm_mon + 1));
  replace_all(s, "%day%", two_digits(now.tm_mday));
  replace_all(s, "%hour%", two_digits(now.tm_hour));
  replace_all(s, "%minute%", two_digits(now.tm_min));
  replace_all(s, "%second%", two_digits(now.tm_sec));
  return s;
}

SaveImagePath get_save_image_path(const std::string& filename_prefix_in,
                                  const std::string& output_dir_in, int64_t image_width,
                                  int64_t image_height, const std::tm* now) {
  std::string filename_prefix = filename_prefix_in;
  if (filename_prefix.find('%') != std::string::npos) {
    std::tm local{};
    if (now == nullptr) {
      const std::time_t t = std::time(nullptr);
      localtime_r(&t, &local);
      now = &local;
    }
    filename_prefix = compute_save_vars(filename_prefix, image_width, image_height, *now);
  }
  const std::string output_dir = normpath(fs::absolute(output_dir_in).string());
  const std::string norm = normpath(filename_prefix);
  SaveImagePath r;
  r.subfolder = dirname_of(norm);
  r.filename = basename_of(norm);
  r.filename_prefix = filename_prefix;
  // os.path.join: an absolute subfolder replaces output_dir.
  const std::string joined = r.subfolder.empty()          ? output_dir + "/"
                             : r.subfolder.front() == '/' ? r.subfolder
                                                          : output_dir + "/" + r.subfolder;
  const std::string abs = normpath(joined);
  const bool inside = abs == output_dir || (abs.size() > output_dir.size() &&
                                            abs.compare(0, output_dir.size(), output_dir) == 0 &&
                                            (output_dir == "/" || abs[output_dir.size()] == '/'));
  DR_CHECK(inside, "SaveImage",
           "Saving image outside the output folder is not allowed. full_output_folder: ", abs,
           ", output_dir: ", output_dir);
  r.full_output_folder = joined;

  // The counter: files "<filename>_<N>..." (N up to the next '_'); others count as 0.
  const size_t prefix_len = basename_of(filename_prefix).size();
  std::optional<int64_t> best;
  std::error_code ec;
  if (!fs::is_directory(r.full_output_folder, ec)) {
    fs::create_directories(r.full_output_folder, ec);
    DR_CHECK(!ec, "SaveImage", "cannot create ", r.full_output_folder, ": ", ec.message());
  } else {
    for (const fs::directory_entry& e : fs::directory_iterator(r.full_output_folder, ec)) {
      const std::string f = e.path().filename().string();
      const std::string prefix = f.substr(0, prefix_len + 1);
      if (prefix.empty() || prefix.back() != '_' ||
          prefix.substr(0, prefix.size() - 1) != r.filename)
        continue;
      const std::string rest = f.size() > prefix_len + 1 ? f.substr(prefix_len + 1) : "";
      const std::optional<int64_t> digits = python_int(rest.substr(0, rest.find('_')));
      const int64_t d = digits.value_or(0);
      if (!best || d > *best) best = d;
    }
  }
  r.counter = best ? *best + 1 : 1;
  return r;
}

std::string python_json_dumps(const nlohmann::json& value) {
  std::string out;
  dump_python(value, out);
  return out;
}

}  // namespace darkroom::workflow
