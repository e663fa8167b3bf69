// `darkroom serve`: the ComfyUI-compatible server (HTTP + WebSocket API, the official
// frontend, the durable queue with one worker per device), on 127.0.0.1:8188 by default.
// Workers: one per CUDA device found (--cuda-device N: that one only), each with a model
// budget from its device's memory; the CPU with --cpu or when no CUDA device is usable
// (then a line on stderr says why, as `darkroom generate` does).
//
// The frontend's static files come from --front-end-root, else $DARKROOM_FRONT_END_ROOT,
// else the `comfyui_frontend_package` pip package of the python3 on PATH (its static/
// folder, found by asking python3 once at start). Without any, only the API is served.
#include <sys/sysinfo.h>

#include <algorithm>
#include <boost/asio/ip/address.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>

#include "backend/device.h"
#include "backend/device_graph.h"
#include "cli/commands.h"
#include "cli/device_choice.h"
#include "core/error.h"
#include "core/log.h"
#include "queue/job_queue.h"
#include "server/api_context.h"
#include "server/http_server.h"
#include "server/webhook_client.h"

namespace darkroom::cli {
namespace {
namespace fs = std::filesystem;

const char* kUsage = R"(usage: darkroom serve [options]

  --listen [ADDRESS]          address to listen on (default 127.0.0.1; no value: 0.0.0.0)
  --port N                    port (default 8188; 0 picks a free one)
  --base-directory DIR        holds models/, input/, output/, temp/, user/ (default: .)
  --output-directory DIR      --input-directory DIR   --temp-directory DIR
  --user-directory DIR        settings, workflows and the queue database
  --extra-model-paths-config FILE   ComfyUI's extra_model_paths.yaml (repeatable)
  --max-upload-size MB        largest request body (default 100)
  --max-pixels N              most image pixels (width × height × batch) one prompt may
                              make (default 16777216 = 4096², 0: no cap)
  --max-steps N               most sampler steps one node may ask for (default 1000, 0: no cap)
  --front-end-root DIR        serve this frontend instead of comfyui_frontend_package's
  --preview-method none|auto|latent2rgb   sampler previews over the websocket (default auto)
  --auth-token TOKEN          require 'Authorization: Bearer TOKEN' (or ?token= once in a
                              browser; also read from $DARKROOM_AUTH_TOKEN)
  --insecure-no-auth          allow a non-loopback --listen without --auth-token
  --enable-cors-header [ORIGIN]   send CORS headers (default origin *) instead of
                              ComfyUI's Host/Origin check
  --tls-keyfile FILE --tls-certfile FILE   serve HTTPS and WSS with this PEM private key
                              and certificate (chain); both or neither
  --cpu                       run on the CPU even when CUDA devices exist
  --cuda-device N             run on CUDA device N only (default: one worker per device)
  --http-threads N            I/O threads (default 4)
  --max-queued-per-client N   prompts one client_id may have pending or running; more are
                              refused with 429 (default 0: no limit; prompts without a
                              client_id share one anonymous client)
  --webhook-url URL           POST {"prompt_id", "number", "status", "outputs", "client_id",
                              "completed_at"} here after each prompt ends (http:// only;
                              durable outbox in the queue database, see docs/queue.md)
  --webhook-attempts N        attempts per delivery before it is dropped (default 10)
  --webhook-backoff SECONDS   wait before the first retry, doubling up to 300 s (default 1)
  --webhook-timeout SECONDS   one attempt's time limit (default 10)
)";

std::string find_frontend(const std::string& flag_value) {
  auto usable = [](const std::string& dir) {
    return fs::is_regular_file(fs::path(dir) / "index.html");
  };
  if (!flag_value.empty()) {
    DR_CHECK(usable(flag_value), "serve", "--front-end-root '", flag_value, "' has no index.html");
    return fs::canonical(flag_value).string();
  }
  if (const char* env = std::getenv("DARKROOM_FRONT_END_ROOT"); env != nullptr && *env != 0) {
    DR_CHECK(usable(env), "serve", "$DARKROOM_FRONT_END_ROOT '", env, "' has no index.html");
    return fs::canonical(env).string();
  }
  FILE* p = popen(
      "python3 -c \"import comfyui_frontend_package, os; "
      "print(os.path.join(os.path.dirname(comfyui_frontend_package.__file__), 'static'))\" "
      "2>/dev/null",
      "r");
  std::string out;
  if (p != nullptr) {
    char buf[4096];
    while (fgets(buf, sizeof buf, p) != nullptr) out += buf;
    pclose(p);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  if (!out.empty() && usable(out)) return fs::canonical(out).string();
  DR_LOG(Warn) << "no frontend found (pip install comfyui-frontend-package, or "
                  "--front-end-root DIR): serving the API only";
  return "";
}

// A clear message for a TLS file that is not there, before OpenSSL reports it its own way.
void check_readable(const char* flag, const std::string& file) {
  std::error_code ec;
  DR_CHECK(!fs::is_directory(file, ec), "serve", flag, " '", file, "' is a directory");
  std::ifstream in(file, std::ios::binary);
  DR_CHECK(in.good(), "serve", flag, " '", file, "' cannot be read: ", std::strerror(errno));
}

bool is_loopback_address(const std::string& listen) {
  boost::system::error_code ec;
  const auto a = boost::asio::ip::make_address(listen, ec);
  return !ec && a.is_loopback();
}

}  // namespace

int run_serve(const std::vector<std::string>& args) {
  server::ServerOptions opt;
  std::string base = ".", output_dir, input_dir, temp_dir, user_dir, front_end_root;
  std::vector<std::string> extra_model_paths;
  std::string preview_method = "auto";
  workflow::ResourceLimits limits{16777216, 1000};
  bool insecure_no_auth = false, force_cpu = false;
  int cuda_pin = -1;  // --cuda-device
  int max_queued_per_client = 0;
  queue::WebhookOptions webhook;
  double webhook_timeout_s = 10;
  if (const char* env = std::getenv("DARKROOM_AUTH_TOKEN"); env != nullptr) opt.auth_token = env;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&]() -> const std::string& {
      if (i + 1 >= args.size()) fail("serve", a, " needs a value");
      return args[++i];
    };
    auto has_value = [&] { return i + 1 < args.size() && args[i + 1].rfind("--", 0) != 0; };
    auto number = [&](double lo, double hi) {
      const std::string& v = value();
      double x = -1;
      try {
        size_t used = 0;
        x = std::stod(v, &used);
        if (used != v.size()) x = lo - 1;
      } catch (...) {
        x = lo - 1;
      }
      DR_CHECK(x >= lo && x <= hi, "serve", a, " '", v, "' is not a number in [", lo, ", ", hi,
               "]");
      return x;
    };
    if (a == "--listen") {
      opt.listen = has_value() ? value() : "0.0.0.0";
    } else if (a == "--port") {
      const std::string& v = value();
      int port = -1;
      try {
        size_t used = 0;
        port = std::stoi(v, &used);
        if (used != v.size()) port = -1;
      } catch (...) {
      }
      if (port < 0 || port > 65535) fail("serve", "--port '", v, "' is not a port number");
      opt.port = static_cast<uint16_t>(port);
    } else if (a == "--base-directory") {
      base = value();
    } else if (a == "--output-directory") {
      output_dir = value();
    } else if (a == "--input-directory") {
      input_dir = value();
    } else if (a == "--temp-directory") {
      temp_dir = value();
    } else if (a == "--user-directory") {
      user_dir = value();
    } else if (a == "--extra-model-paths-config") {
      extra_model_paths.push_back(value());
    } else if (a == "--max-upload-size") {
      opt.max_body_bytes = static_cast<uint64_t>(number(0.001, 1 << 20) * 1024 * 1024);
    } else if (a == "--max-pixels") {
      limits.max_pixels = static_cast<uint64_t>(number(0, 1e15));
    } else if (a == "--max-steps") {
      limits.max_steps = static_cast<int64_t>(number(0, 1e9));
    } else if (a == "--front-end-root") {
      front_end_root = value();
    } else if (a == "--preview-method") {
      preview_method = value();
      DR_CHECK(
          preview_method == "none" || preview_method == "auto" || preview_method == "latent2rgb",
          "serve", "--preview-method must be none, auto or latent2rgb");
    } else if (a == "--auth-token") {
      opt.auth_token = value();
      DR_CHECK(opt.auth_token.size() >= 8, "serve", "--auth-token must have at least 8 characters");
    } else if (a == "--insecure-no-auth") {
      insecure_no_auth = true;
    } else if (a == "--enable-cors-header") {
      opt.cors_origin = has_value() ? value() : "*";
    } else if (a == "--tls-keyfile") {
      opt.tls_keyfile = value();
    } else if (a == "--tls-certfile") {
      opt.tls_certfile = value();
    } else if (a == "--cpu") {
      force_cpu = true;
    } else if (a == "--cuda-device") {
      cuda_pin = parse_cuda_device("serve", value());
    } else if (a == "--http-threads") {
      opt.threads = static_cast<int>(number(1, 256));
    } else if (a == "--max-queued-per-client") {
      max_queued_per_client = static_cast<int>(number(0, 1e9));
    } else if (a == "--webhook-url") {
      webhook.url = value();
      server::parse_webhook_url(webhook.url);  // a bad URL fails here, not at the first POST
    } else if (a == "--webhook-attempts") {
      webhook.max_attempts = static_cast<int>(number(1, 1000));
    } else if (a == "--webhook-backoff") {
      webhook.first_backoff_ms = static_cast<int64_t>(number(0, 3600) * 1000);
    } else if (a == "--webhook-timeout") {
      webhook_timeout_s = number(0.1, 600);
    } else if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else {
      fail("serve", "unknown option '", a, "' (see darkroom serve --help)");
    }
  }
  if (!is_loopback_address(opt.listen) && opt.auth_token.empty() && !insecure_no_auth)
    fail("serve", "--listen ", opt.listen,
         " reaches beyond this machine: pass --auth-token TOKEN (or --insecure-no-auth to "
         "serve without one)");
  DR_CHECK(!(force_cpu && cuda_pin >= 0), "serve", "--cpu and --cuda-device exclude each other");
  if (!opt.tls_keyfile.empty() || !opt.tls_certfile.empty()) {
#if !DARKROOM_HAVE_TLS
    fail("serve", "this build has no TLS (OpenSSL not found at build time)");
#endif
    DR_CHECK(!opt.tls_keyfile.empty() && !opt.tls_certfile.empty(), "serve",
             "--tls-keyfile and --tls-certfile must be given together");
    check_readable("--tls-keyfile", opt.tls_keyfile);
    check_readable("--tls-certfile", opt.tls_certfile);
    // The key and certificate themselves are checked when the server loads them (below,
    // before the queue starts), with OpenSSL's reason.
  }

  // The CUDA devices the workers run on (none: one CPU worker). choose_device prints the
  // fallback line when no CUDA device is usable and rejects a pinned index past the last.
  std::vector<int> cuda_workers;
  if (!force_cpu) {
    const DeviceId first = choose_device(cuda_pin);
    if (first.type == DeviceType::Cuda) {
      if (cuda_pin >= 0)
        cuda_workers.push_back(first.index);
      else
        for (int i = 0; i < cuda_device_count(); ++i) cuda_workers.push_back(i);
    }
  }

  workflow::FolderPaths paths = workflow::FolderPaths::under(base);
  auto set_dir = [](std::string* field, const std::string& dir) {
    if (dir.empty()) return;
    fs::create_directories(dir);
    *field = fs::absolute(dir).lexically_normal().string();
  };
  set_dir(&paths.output_directory, output_dir);
  set_dir(&paths.input_directory, input_dir);
  set_dir(&paths.temp_directory, temp_dir);
  set_dir(&paths.user_directory, user_dir);
  for (const std::string& f : extra_model_paths) paths.add_extra_model_paths(f);
  opt.web_root = find_frontend(front_end_root);

  server::ApiContext ctx;
  ctx.paths = paths;
  ctx.limits = limits;
  struct sysinfo si {};
  sysinfo(&si);
  ctx.devices.push_back({cpu_device().description(), "cpu", 0,
                         static_cast<uint64_t>(si.totalram) * si.mem_unit,
                         static_cast<uint64_t>(si.freeram) * si.mem_unit});
  std::vector<uint64_t> cuda_total(cuda_workers.size(), 0);
  for (size_t k = 0; k < cuda_workers.size(); ++k) {
    const int i = cuda_workers[k];
    const DeviceMemoryStats mem = device_memory_stats({DeviceType::Cuda, i});
    cuda_total[k] = mem.device_total;
    ctx.devices.push_back({device_for({DeviceType::Cuda, i}).description(), "cuda", i,
                           mem.device_total, mem.device_total - mem.device_used});
  }
  ctx.argv = {"darkroom", "serve"};
  for (size_t i = 0; i < args.size(); ++i) {
    ctx.argv.push_back(args[i]);
    // /system_stats must not hand out the token, nor a webhook URL (it may hold a secret).
    if ((args[i] == "--auth-token" || args[i] == "--webhook-url") && i + 1 < args.size()) {
      ctx.argv.push_back("***");
      ++i;
    }
  }

  server::HttpServer http(opt);
  ctx.server = &http;

  queue::QueueOptions qopt;
  qopt.database_path = (fs::path(paths.user_directory) / "darkroom-queue.sqlite3").string();
  qopt.paths = paths;
  qopt.preview.method = preview_method;
  qopt.limits = limits;
  qopt.max_queued_per_client = max_queued_per_client;
  qopt.webhook = webhook;
  qopt.webhook.max_backoff_ms =
      std::max<int64_t>(qopt.webhook.max_backoff_ms, webhook.first_backoff_ms);
  const auto webhook_timeout =
      std::chrono::milliseconds(static_cast<int64_t>(webhook_timeout_s * 1000));
  qopt.webhook.post = [webhook_timeout](const std::string& url, const std::string& body) {
    return server::post_webhook(url, body, webhook_timeout);
  };
  qopt.workers.clear();
  // Each worker's model budget comes from its device's memory (job_queue.cpp's
  // model_budget: half of it).
  for (size_t k = 0; k < cuda_workers.size(); ++k)
    qopt.workers.push_back({cuda_workers[k], cuda_total[k]});
  if (qopt.workers.empty()) qopt.workers.push_back({-1});
  queue::MessageSinks sinks;
  sinks.json_message = [&http](const std::string& client_id, const nlohmann::json& message) {
    http.hub().send_json(client_id, message);
  };
  sinks.binary = [&http](const std::string& client_id, const std::vector<uint8_t>& frame) {
    http.hub().send_binary(client_id, frame);
  };
  auto jobs = std::make_unique<queue::JobQueue>(qopt, sinks);
  ctx.queue = jobs.get();

  server::add_system_routes(http, ctx);
  server::add_prompt_routes(http, ctx);
  server::add_job_routes(http, ctx);
  server::add_file_routes(http, ctx);
  server::add_user_routes(http, ctx);
  server::add_info_routes(http, ctx);

  http.bind();
  jobs->start();
  std::string compute = "CPU";
  if (!cuda_workers.empty()) {
    compute = "CUDA";
    for (int i : cuda_workers)
      compute += (i == cuda_workers.front() ? " " : ", ") + std::to_string(i);
    compute += " (one worker each)";
  }
  DR_LOG(Info) << "compute: " << compute << "; " << cpu_device().description()
               << "; frontend: " << (opt.web_root.empty() ? "none" : opt.web_root)
               << "; auth: " << (opt.auth_token.empty() ? "off" : "bearer token");
  http.run();
  jobs.reset();  // workers stop after their current node
  return 0;
}

}  // namespace darkroom::cli
