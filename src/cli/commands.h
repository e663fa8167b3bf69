// Subcommands of the darkroom executable; each takes the arguments after its name and
// returns the process exit code.
#pragma once

#include <string>
#include <vector>

namespace darkroom::cli {

int run_bench(const std::vector<std::string>& args);
int run_generate(const std::vector<std::string>& args);
int run_info(const std::vector<std::string>& args);
int run_make_demo_model(const std::vector<std::string>& args);
int run_serve(const std::vector<std::string>& args);

}  // namespace darkroom::cli
