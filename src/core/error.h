// Errors in three tiers (STYLE.md §5):
//  - darkroom::Error: bad user input or a bad file; the message starts with the op or
//    component in brackets and says what was wrong, e.g. "[linear] x has 320 features
//    but weight expects 640".
//  - DR_ASSERT: a broken invariant; stays on in release builds and aborts.
//  - expected outcomes are return values, not exceptions.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace darkroom {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

namespace detail {
template <class... Args>
std::string concat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
[[noreturn]] void assert_fail(const char* expr, const char* file, int line, const std::string& msg);
}  // namespace detail

// Throws darkroom::Error("[where] <args...>").
template <class... Args>
[[noreturn]] void fail(std::string_view where, const Args&... args) {
  throw Error(detail::concat("[", where, "] ", args...));
}

}  // namespace darkroom

// DR_CHECK(cond, "op", message parts...): user-facing validation.
#define DR_CHECK(cond, where, ...)                     \
  do {                                                 \
    if (!(cond)) ::darkroom::fail(where, __VA_ARGS__); \
  } while (0)

// DR_ASSERT(cond, message parts...): internal invariant, on in every build type.
#define DR_ASSERT(cond, ...)                                                                      \
  do {                                                                                            \
    if (!(cond))                                                                                  \
      ::darkroom::detail::assert_fail(#cond, __FILE__, __LINE__,                                  \
                                      ::darkroom::detail::concat("" __VA_OPT__(, ) __VA_ARGS__)); \
  } while (0)
