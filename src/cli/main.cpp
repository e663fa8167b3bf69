// darkroom command line: dispatches to the subcommands.
#include <cstdio>
#include <string>
#include <vector>

#include "backend/device.h"
#include "cli/commands.h"
#include "core/error.h"
#include "core/log.h"

namespace {

void usage() {
  std::puts(
      "usage: darkroom <command> [options]\n"
      "\n"
      "commands:\n"
      "  serve                 run the server (see 'darkroom serve --help')\n"
      "  generate PROMPT --model FILE   text to image (see 'darkroom generate --help')\n"
      "  make-demo-model --out FILE     an SD 1.5 checkpoint of random weights\n"
      "  bench ops [--json]    measure conv2d, matmul and attention against raw oneDNN\n"
      "  info                  print the devices and how they compute\n"
      "  help                  this text");
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "help" || args[0] == "--help" || args[0] == "-h") {
    usage();
    return args.empty() ? 2 : 0;
  }
  try {
    darkroom::init_cuda_backend();
    const std::string cmd = args[0];
    std::vector<std::string> rest(args.begin() + 1, args.end());
    if (cmd == "bench") return darkroom::cli::run_bench(rest);
    if (cmd == "info") return darkroom::cli::run_info(rest);
    if (cmd == "serve") return darkroom::cli::run_serve(rest);
    if (cmd == "generate") return darkroom::cli::run_generate(rest);
    if (cmd == "make-demo-model") return darkroom::cli::run_make_demo_model(rest);
    std::fprintf(stderr, "darkroom: unknown command '%s'\n\n", cmd.c_str());
    usage();
    return 2;
  } catch (const darkroom::Error& e) {
    std::fprintf(stderr, "darkroom: %s\n", e.what());
    return 1;
  }
}
