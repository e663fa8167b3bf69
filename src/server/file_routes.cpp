// ComfyUI's image file routes (server.py): GET /view, POST /upload/image, /upload/mask.
// Every client-given name is resolved with workflow::resolve_inside, so "..", absolute
// paths and symlinks that lead out of input/, output/ or temp/ are refused.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>
#include <variant>

#include "core/error.h"
#include "core/log.h"
#include "server/api_context.h"
#include "server/http_util.h"
#include "server/image_files.h"
#include "server/multipart.h"

namespace darkroom::server {
namespace fs = std::filesystem;
namespace {

Response bad(int status, const std::string& message) {
  return Response::json_body({{"error", {{"type", "bad_request"}, {"message", message}}}}, status);
}

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

// Writes through a temporary file in the same folder, so readers never see half a file.
void write_file_atomic(const fs::path& path, const std::string& data) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  const fs::path tmp = path.parent_path() / (".upload-" + std::to_string(rng()) + ".tmp");
  {
    std::ofstream out(tmp, std::ios::binary);
    DR_CHECK(out.good(), "upload", "cannot write '", tmp.string(), "'");
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
    DR_CHECK(out.good(), "upload", "cannot write '", tmp.string(), "'");
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    fail("upload", "cannot write '", path.string(), "'");
  }
}

// ComfyUI's annotated names: "x.png [output]" picks the folder by its suffix.
std::pair<std::string, std::optional<std::string>> annotated(const std::string& name) {
  for (const char* t : {"output", "input", "temp"}) {
    const std::string suffix = std::string(" [") + t + "]";
    if (name.size() > suffix.size() && name.ends_with(suffix))
      return {name.substr(0, name.size() - suffix.size()), std::string(t)};
  }
  return {name, std::nullopt};
}

// The file a (filename, subfolder, type) triple names, as /view and original_ref use them.
// Returns the status to answer with when it is refused.
std::variant<std::string, int> locate(const ApiContext& ctx, const std::string& raw_name,
                                      const std::string& type_arg, const std::string& subfolder) {
  auto [filename, type] = annotated(raw_name);
  if (filename.empty() || filename[0] == '/' || filename.find("..") != std::string::npos)
    return 400;
  const auto dir =
      ctx.paths.directory_for_type(type.value_or(type_arg.empty() ? "output" : type_arg));
  if (!dir) return 400;
  const std::string base = fs::path(filename).filename().string();
  const std::string rel = subfolder.empty() ? base : subfolder + "/" + base;
  const auto path = workflow::resolve_inside(*dir, rel);
  if (!path) return 403;
  std::error_code ec;
  if (!fs::is_regular_file(*path, ec)) return 404;
  return *path;
}

Response view(const ApiContext& ctx, const Request& req) {
  if (!req.has_arg("filename")) return Response::empty(404);
  auto where = locate(ctx, req.arg("filename"), req.arg("type", "output"), req.arg("subfolder"));
  if (std::holds_alternative<int>(where)) {
    const int status = std::get<int>(where);
    return status == 404 ? Response::empty(404) : bad(status, "file name is not allowed");
  }
  const std::string path = std::get<std::string>(where);
  const std::string name = fs::path(path).filename().string();
  const auto bytes = read_file(path);
  if (!bytes) return Response::empty(404);
  const std::string channel = req.arg("channel");
  auto disposition = [](const std::string& n) { return "filename=\"" + n + "\""; };

  if (req.has_arg("preview") || channel == "rgb" || channel == "a") {
    auto image = decode_rgba(*bytes);
    if (image) {
      if (req.has_arg("preview")) {
        // "webp;90" | "jpeg;80": format and quality (ComfyUI: webp when asked for alpha).
        const std::string p = req.arg("preview");
        std::string format = p.substr(0, p.find(';'));
        if ((format != "webp" && format != "jpeg") || channel.find('a') != std::string::npos)
          format = "webp";
        int quality = 90;
        const std::string q = p.substr(p.rfind(';') + 1);
        if (!q.empty() && std::all_of(q.begin(), q.end(), ::isdigit) && q.size() < 4)
          quality = std::clamp(std::stoi(q), 1, 100);
        std::string out =
            format == "jpeg" ? encode_jpeg(*image, quality) : encode_webp(*image, quality);
        std::string out_name = name;
        if (auto pos = out_name.rfind("png"); pos != std::string::npos)
          out_name.replace(pos, 3, format);
        return {200,
                "image/" + format,
                std::move(out),
                {{"Content-Disposition", disposition(out_name)}}};
      }
      if (channel == "rgb") {
        for (size_t i = 3; i < image->pixels.size(); i += 4) image->pixels[i] = 255;
      } else {  // "a": the alpha channel as a transparent black image
        for (size_t i = 0; i < image->pixels.size(); i += 4)
          image->pixels[i] = image->pixels[i + 1] = image->pixels[i + 2] = 0;
      }
      return {200, "image/png", encode_png(*image), {{"Content-Disposition", disposition(name)}}};
    }
  }
  return {200, content_type_for(path), *bytes, {{"Content-Disposition", disposition(name)}}};
}

std::string form_value(const std::map<std::string, FormPart>& parts, const std::string& key,
                       const std::string& fallback = "") {
  auto it = parts.find(key);
  return it == parts.end() ? fallback : it->second.data;
}

// ComfyUI's image_upload(): save the "image" part under type/subfolder, renaming to
// "name (1).png" when a different file already has the name.
// `make_content` may replace the bytes to store (the mask route); it returns a response to
// send instead when the request cannot be served.
Response image_upload(
    ApiContext& ctx, const Request& req,
    const std::function<std::variant<std::string, Response>(const std::map<std::string, FormPart>&,
                                                            const std::string&)>& make_content) {
  const auto parts = parse_multipart(req.header("content-type"), req.body);
  auto reject = [&](int status, const std::string& message) {
    ctx.uploads_rejected.fetch_add(1);
    return bad(status, message);
  };
  auto image = parts.find("image");
  if (image == parts.end() || !image->second.filename)
    return reject(400, "the form has no 'image' file part");
  std::string filename = image->second.filename.value();
  if (filename.empty() || filename.find_first_of("/\\") != std::string::npos || filename == "." ||
      filename == ".." || filename.find('\0') != std::string::npos)
    return reject(400, "bad file name '" + filename + "'");
  const std::string type = form_value(parts, "type", "input");
  const auto dir = ctx.paths.directory_for_type(type.empty() ? "input" : type);
  if (!dir) return reject(400, "type must be input, output or temp");
  const std::string subfolder = form_value(parts, "subfolder");
  const std::string overwrite = form_value(parts, "overwrite");

  if (!sniff_image(image->second.data))
    return reject(400, "'" + filename + "' is not an image (PNG, JPEG, WebP, GIF or BMP)");
  std::string content = image->second.data;
  if (make_content) {
    auto made = make_content(parts, content);
    if (std::holds_alternative<Response>(made)) {
      ctx.uploads_rejected.fetch_add(1);
      return std::get<Response>(made);
    }
    content = std::move(std::get<std::string>(made));
  }

  auto folder = workflow::resolve_inside(*dir, subfolder);
  if (!folder) return reject(400, "subfolder '" + subfolder + "' is not inside " + type);
  std::error_code ec;
  fs::create_directories(*folder, ec);
  // Re-check after creating: a link planted in the path must not lead out.
  folder = workflow::resolve_inside(*dir, subfolder);
  if (!folder || !fs::is_directory(*folder, ec))
    return reject(400, "bad subfolder '" + subfolder + "'");
  auto target = workflow::resolve_inside(*folder, filename);
  if (!target || !workflow::resolve_inside(*dir, (fs::path(subfolder) / filename).string()))
    return reject(400, "bad file name '" + filename + "'");

  bool duplicate = false;
  if (overwrite != "true" && overwrite != "1") {
    const fs::path stem = fs::path(filename).stem(), ext = fs::path(filename).extension();
    for (int i = 1; fs::exists(*target, ec); ++i) {
      if (read_file(*target) == content) {
        duplicate = true;  // the same bytes are there already (ComfyUI's hash check)
        break;
      }
      filename = stem.string() + " (" + std::to_string(i) + ")" + ext.string();
      target = (fs::path(*folder) / filename).string();
    }
  }
  if (fs::is_symlink(*target, ec)) return reject(400, "bad file name '" + filename + "'");
  if (!duplicate) write_file_atomic(*target, content);
  ctx.uploads.fetch_add(1);
  return Response::json_body({{"name", filename}, {"subfolder", subfolder}, {"type", type}});
}

// /upload/mask: the alpha of the uploaded mask onto the original image (original_ref).
std::variant<std::string, Response> apply_mask(const ApiContext& ctx,
                                               const std::map<std::string, FormPart>& parts,
                                               const std::string& mask_bytes) {
  const json ref = json::parse(form_value(parts, "original_ref", "{}"), nullptr, false);
  if (!ref.is_object() || !ref.contains("filename") || !ref["filename"].is_string())
    return bad(400, "original_ref must be JSON with a filename");
  auto where = locate(ctx, ref["filename"].get<std::string>(), ref.value("type", "output"),
                      ref.value("subfolder", ""));
  if (std::holds_alternative<int>(where)) {
    const int status = std::get<int>(where);
    return bad(status, status == 404 ? "original image not found" : "original_ref is not allowed");
  }
  const auto original_bytes = read_file(std::get<std::string>(where));
  auto original = original_bytes ? decode_rgba(*original_bytes) : std::nullopt;
  auto mask = decode_rgba(mask_bytes);
  if (!original || !mask) return bad(400, "original or mask image does not decode");
  if (original->width != mask->width || original->height != mask->height)
    return bad(400, "mask size differs from the original image");
  for (size_t i = 3; i < original->pixels.size(); i += 4) original->pixels[i] = mask->pixels[i];
  return encode_png(*original);
}

}  // namespace

void add_file_routes(HttpServer& server, ApiContext& ctx) {
  server.route("GET", "/view", [&ctx](const Request& r) { return view(ctx, r); });
  server.route("POST", "/upload/image",
               [&ctx](const Request& r) { return image_upload(ctx, r, nullptr); });
  server.route("POST", "/upload/mask", [&ctx](const Request& r) {
    return image_upload(ctx, r, [&ctx](const auto& parts, const std::string& bytes) {
      return apply_mask(ctx, parts, bytes);
    });
  });
}

}  // namespace darkroom::server
