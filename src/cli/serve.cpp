#include "cli/commands.h"
#include "core/error.h"

namespace darkroom::cli {
int run_serve(const std::vector<std::string>&) { fail("serve", "PLACEHOLDER"); }
}  // namespace darkroom::cli
