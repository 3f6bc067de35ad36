// Internal helpers for argument checks: format a message and throw hilo::Error.
#pragma once

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "hilo/error.hpp"

namespace hilo {

#if defined(__CUDACC__)
// nvcc's front end cannot evaluate fmt's consteval format-string checks: format at run time in CUDA sources.
template <typename... Args>
[[noreturn]] void fail(std::string_view format, const Args&... args) {
  throw Error(fmt::vformat(format, fmt::make_format_args(args...)));
}
#else
template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}
#endif

}  // namespace hilo

// HILO_CHECK(cond, "where: x = {} must be positive", x)
#define HILO_CHECK(cond, ...)    \
  do {                           \
    if (!(cond)) {               \
      ::hilo::fail(__VA_ARGS__); \
    }                            \
  } while (0)
