// `darkroom serve`: the server on embedded defaults (127.0.0.1:8188).
#include <sys/sysinfo.h>
#include <cstdio>

#include "backend/device.h"
#include "cli/commands.h"
#include "core/error.h"
#include "core/log.h"
#include "server/http_server.h"
#include "server/system_routes.h"

namespace darkroom::cli {

int run_serve(const std::vector<std::string>& args) {
  server::ServerOptions opt;
  for (size_t i = 0; i < args.size(); ++i) {
    auto value = [&]() -> const std::string& {
      if (i + 1 >= args.size()) fail("serve", args[i], " needs a value");
      return args[++i];
    };
    if (args[i] == "--listen") {
      opt.listen = value();
    } else if (args[i] == "--port") {
      const std::string& v = value();
      int port = -1;
      try {
        port = std::stoi(v);
      } catch (...) {
      }
      if (port < 0 || port > 65535) fail("serve", "--port '", v, "' is not a port number");
      opt.port = static_cast<uint16_t>(port);
    } else if (args[i] == "--help") {
      std::puts("usage: darkroom serve [--listen ADDRESS] [--port N]   (default 127.0.0.1:8188)");
      return 0;
    } else {
      fail("serve", "unknown option '", args[i], "' (see darkroom serve --help)");
    }
  }
  std::vector<server::DeviceInfo> devices;
  struct sysinfo si {};
  sysinfo(&si);
  devices.push_back({cpu_device().description(), "cpu", 0,
                     static_cast<uint64_t>(si.totalram) * si.mem_unit,
                     static_cast<uint64_t>(si.freeram) * si.mem_unit});
  for (int i = 0; i < cuda_device_count(); ++i)
    devices.push_back({device_for({DeviceType::Cuda, i}).description(), "cuda", i, 0, 0});
  std::vector<std::string> argv{"darkroom", "serve"};
  argv.insert(argv.end(), args.begin(), args.end());
  server::HttpServer http(opt);
  server::add_system_routes(http, devices, argv);
  DR_LOG(Info) << "compute: " << cpu_device().description();
  http.run();
}

}  // namespace darkroom::cli
