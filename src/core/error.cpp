#include "core/error.h"

#include <cstdio>
#include <cstdlib>

namespace darkroom::detail {

void assert_fail(const char* expr, const char* file, int line, const std::string& msg) {
  std::fprintf(stderr, "darkroom: internal invariant broken at %s:%d: %s %s\n", file, line, expr,
               msg.c_str());
  std::fflush(stderr);
  std::abort();
}

}  // namespace darkroom::detail
