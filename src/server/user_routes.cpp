// ComfyUI's user data routes (app/user_manager.py, app/app_settings.py) in single-user
// mode: everything lives under <user dir>/default/. The frontend keeps its settings,
// workflows and templates here.
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <sstream>

#include "core/error.h"
#include "server/api_context.h"
#include "server/http_util.h"

namespace darkroom::server {
namespace fs = std::filesystem;
namespace {

std::string user_root(const ApiContext& ctx) {
  return (fs::path(ctx.paths.user_directory) / "default").string();
}

std::optional<std::string> read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

void write_atomic(const fs::path& path, const std::string& data) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  const fs::path tmp = path.parent_path() / (".tmp-" + std::to_string(rng()));
  {
    std::ofstream out(tmp, std::ios::binary);
    DR_CHECK(out.good(), "userdata", "cannot write '", path.filename().string(), "'");
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    fail("userdata", "cannot write '", path.filename().string(), "'");
  }
}

// comfy.settings.json, read-modify-written under one lock.
std::mutex settings_mutex;

fs::path settings_file(const ApiContext& ctx) {
  return fs::path(user_root(ctx)) / "comfy.settings.json";
}

json load_settings(const ApiContext& ctx) {
  auto text = read_text(settings_file(ctx));
  if (!text) return json::object();
  json j = json::parse(*text, nullptr, false);
  return j.is_object() ? j : json::object();
}

void save_settings(const ApiContext& ctx, const json& j) {
  fs::create_directories(user_root(ctx));
  write_atomic(settings_file(ctx), j.dump(4));
}

int64_t ms(const struct timespec& t) {
  return static_cast<int64_t>(t.tv_sec) * 1000 + t.tv_nsec / 1000000;
}

// ComfyUI's get_file_info(): {"path", "size", "modified", "created"} (milliseconds).
json file_info(const fs::path& path, const fs::path& relative_to) {
  struct stat st {};
  ::stat(path.c_str(), &st);
  return {{"path", path.lexically_relative(relative_to).generic_string()},
          {"size", static_cast<int64_t>(st.st_size)},
          {"modified", ms(st.st_mtim)},
          {"created", ms(st.st_ctim)}};
}

// The path of a {file} parameter inside the user's folder; nullopt escapes (→ 403).
std::optional<fs::path> user_path(const ApiContext& ctx, const std::string& file) {
  if (file.empty()) return std::nullopt;
  auto p = workflow::resolve_inside(user_root(ctx), file);
  if (!p) return std::nullopt;
  return fs::path(*p);
}

Response list_userdata(const ApiContext& ctx, const Request& r) {
  const std::string dir = r.arg("dir");
  if (dir.empty()) return Response::text(400, "Directory not provided");
  auto path = user_path(ctx, dir);
  if (!path) return Response::text(403, "Invalid directory");
  std::error_code ec;
  if (!fs::exists(*path, ec)) return Response::text(404, "Directory not found");
  auto lower = [](std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  };
  const bool recurse = lower(r.arg("recurse")) == "true";
  const bool full_info = lower(r.arg("full_info")) == "true";
  const bool split = lower(r.arg("split")) == "true";
  std::vector<fs::path> files;
  if (recurse) {
    for (auto it = fs::recursive_directory_iterator(*path, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
      if (it->is_regular_file(ec)) files.push_back(it->path());
  } else {
    for (const auto& e : fs::directory_iterator(*path, ec))
      if (e.is_regular_file(ec)) files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  json out = json::array();
  for (const fs::path& f : files) {
    // Dot files are the temporary files of writes in progress (glob skips them too).
    if (f.filename().string().rfind('.', 0) == 0) continue;
    if (full_info) {
      out.push_back(file_info(f, *path));
      continue;
    }
    const std::string rel = f.lexically_relative(*path).generic_string();
    if (split) {
      json parts = json::array({rel});
      size_t start = 0;
      while (start <= rel.size()) {
        size_t end = rel.find('/', start);
        if (end == std::string::npos) end = rel.size();
        parts.push_back(rel.substr(start, end - start));
        start = end + 1;
      }
      out.push_back(parts);
    } else {
      out.push_back(rel);
    }
  }
  return Response::json_body(out);
}

Response list_userdata_v2(const ApiContext& ctx, const Request& r) {
  const fs::path base = user_root(ctx);
  const std::string rel = r.arg("path");
  fs::path target = base;
  if (!rel.empty()) {
    auto p = user_path(ctx, rel);
    if (!p) return Response::text(400, "Invalid path requested");
    target = *p;
  }
  std::error_code ec;
  if (!fs::exists(target, ec))
    return target == base ? Response::json_body(json::array())
                          : Response::text(404, "Requested path not found");
  if (!fs::is_directory(target, ec))
    return Response::text(400, "Requested path is not a directory");
  std::vector<json> dirs, files;
  for (auto it = fs::recursive_directory_iterator(target, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    json e = {{"name", name}, {"path", it->path().lexically_relative(base).generic_string()}};
    if (it->is_directory(ec)) {
      e["type"] = "directory";
      dirs.push_back(e);
    } else {
      e["type"] = "file";
      struct stat st {};
      if (::stat(it->path().c_str(), &st) == 0) {
        e["size"] = static_cast<int64_t>(st.st_size);
        e["modified"] = static_cast<double>(ms(st.st_mtim)) / 1000.0;
      }
      files.push_back(e);
    }
  }
  auto by_name = [](const json& a, const json& b) {
    std::string x = a["name"], y = b["name"];
    for (char& c : x) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    for (char& c : y) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return x < y;
  };
  std::sort(dirs.begin(), dirs.end(), by_name);
  std::sort(files.begin(), files.end(), by_name);
  json out = json::array();
  for (auto& d : dirs) out.push_back(d);
  for (auto& f : files) out.push_back(f);
  return Response::json_body(out);
}

Response get_userdata(const ApiContext& ctx, const Request& r) {
  auto path = user_path(ctx, r.params.at("file"));
  if (!path) return Response::empty(403);
  std::error_code ec;
  const auto css = workflow::resolve_inside(user_root(ctx), "user.css");
  const bool user_css = css && *path == fs::path(*css);
  // The frontend always asks for user.css; no file means no custom style (not an error).
  if (user_css && !fs::exists(*path, ec)) return {200, "text/css", "", {}};
  if (!fs::is_regular_file(*path, ec)) return Response::empty(404);
  auto text = read_text(*path);
  if (!text) return Response::empty(404);
  std::string type = content_type_for(path->string());
  std::string disposition = "attachment";
  if (user_css) {
    type = "text/css";
    disposition = "inline";
  } else if (type.rfind("text/html", 0) == 0 || type.rfind("application/javascript", 0) == 0 ||
             type == "image/svg+xml") {
    // User files never run as markup or script in the app's origin (stored XSS).
    type = "application/octet-stream";
  }
  return {200,
          type,
          std::move(*text),
          {{"X-Content-Type-Options", "nosniff"}, {"Content-Disposition", disposition}}};
}

Response post_userdata(const ApiContext& ctx, const Request& r) {
  auto path = user_path(ctx, r.params.at("file"));
  if (!path) return Response::empty(403);
  const bool overwrite = r.arg("overwrite", "true") != "false";
  const bool full_info = r.arg("full_info", "false") == "true";
  std::error_code ec;
  if (!overwrite && fs::exists(*path, ec)) return Response::text(409, "File already exists");
  fs::create_directories(path->parent_path(), ec);
  // The parent, once it exists, must still resolve inside (no planted links).
  if (!user_path(ctx, path->lexically_relative(fs::weakly_canonical(user_root(ctx))).string()))
    return Response::empty(403);
  write_atomic(*path, r.body);
  const fs::path root = fs::weakly_canonical(user_root(ctx));
  if (full_info) return Response::json_body(file_info(*path, root));
  return Response::json_body(path->lexically_relative(root).generic_string());
}

Response move_userdata(const ApiContext& ctx, const Request& r) {
  auto source = user_path(ctx, r.params.at("file"));
  if (!source) return Response::empty(403);
  std::error_code ec;
  if (!fs::exists(*source, ec)) return Response::empty(404);
  auto dest = user_path(ctx, r.params.at("dest"));
  if (!dest) return Response::empty(403);
  const bool overwrite = r.arg("overwrite", "true") != "false";
  const bool full_info = r.arg("full_info", "false") == "true";
  if (!overwrite && fs::exists(*dest, ec)) return Response::text(409, "File already exists");
  fs::create_directories(dest->parent_path(), ec);
  fs::rename(*source, *dest, ec);
  DR_CHECK(!ec, "userdata", "cannot move: ", ec.message());
  const fs::path root = fs::weakly_canonical(user_root(ctx));
  if (full_info) return Response::json_body(file_info(*dest, root));
  return Response::json_body(dest->lexically_relative(root).generic_string());
}

}  // namespace

void add_user_routes(HttpServer& server, ApiContext& ctx) {
  // The folders and files the frontend reads at load, so that a fresh user directory
  // answers with empty lists instead of 404s.
  std::error_code ec;
  for (const char* d : {"workflows", "subgraphs"})
    fs::create_directories(fs::path(user_root(ctx)) / d, ec);
  const fs::path templates = fs::path(user_root(ctx)) / "comfy.templates.json";
  if (!fs::exists(templates, ec)) write_atomic(templates, "[]");

  // index.html links "user.css" at the root: the user's own stylesheet, if any.
  server.route("GET", "/user.css", [&ctx](const Request&) {
    auto text = read_text(fs::path(user_root(ctx)) / "user.css");
    return Response{200, "text/css", text.value_or(""), {}};
  });
  server.route("GET", "/users", [&ctx](const Request&) {
    std::error_code e;
    return Response::json_body(
        {{"storage", "server"}, {"migrated", fs::exists(user_root(ctx), e)}});
  });
  server.route("POST", "/users", [](const Request&) {
    return Response::json_body({{"error", "darkroom runs in single-user mode"}}, 400);
  });
  server.route("GET", "/settings", [&ctx](const Request&) {
    std::lock_guard<std::mutex> lock(settings_mutex);
    return Response::json_body(load_settings(ctx));
  });
  server.route("GET", "/settings/{id}", [&ctx](const Request& r) {
    std::lock_guard<std::mutex> lock(settings_mutex);
    const json s = load_settings(ctx);
    auto it = s.find(r.params.at("id"));
    return Response::json_body(it == s.end() ? json(nullptr) : *it);
  });
  server.route("POST", "/settings", [&ctx](const Request& r) {
    const json update = json::parse(r.body);
    DR_CHECK(update.is_object(), "settings", "expected a JSON object of settings");
    std::lock_guard<std::mutex> lock(settings_mutex);
    json s = load_settings(ctx);
    for (auto it = update.begin(); it != update.end(); ++it) s[it.key()] = it.value();
    save_settings(ctx, s);
    return Response::empty(200);
  });
  server.route("POST", "/settings/{id}", [&ctx](const Request& r) {
    const json value = json::parse(r.body);
    std::lock_guard<std::mutex> lock(settings_mutex);
    json s = load_settings(ctx);
    s[r.params.at("id")] = value;
    save_settings(ctx, s);
    return Response::empty(200);
  });
  server.route("GET", "/userdata", [&ctx](const Request& r) { return list_userdata(ctx, r); });
  server.route("GET", "/v2/userdata",
               [&ctx](const Request& r) { return list_userdata_v2(ctx, r); });
  server.route("GET", "/userdata/{file}",
               [&ctx](const Request& r) { return get_userdata(ctx, r); });
  server.route("POST", "/userdata/{file}",
               [&ctx](const Request& r) { return post_userdata(ctx, r); });
  server.route("DELETE", "/userdata/{file}", [&ctx](const Request& r) {
    auto path = user_path(ctx, r.params.at("file"));
    if (!path) return Response::empty(403);
    std::error_code e;
    if (!fs::is_regular_file(*path, e)) return Response::empty(404);
    fs::remove(*path, e);
    return Response::empty(204);
  });
  server.route("POST", "/userdata/{file}/move/{dest}",
               [&ctx](const Request& r) { return move_userdata(ctx, r); });
}

}  // namespace darkroom::server
