// Throwing a gmmav::Error with a formatted "param: expected X, got Y" message.
#pragma once

#include <fmt/format.h>

#include <string>

#include "gmmav/types.hpp"

namespace gmmav {

/// Throws Error{code, param, "<param>: <formatted message>"}.
template <typename... Args>
[[noreturn]] void fail(Errc code, const std::string& param, fmt::format_string<Args...> f, Args&&... args) {
  std::string msg =
      param.empty() ? fmt::format(f, std::forward<Args>(args)...) : param + ": " + fmt::format(f, std::forward<Args>(args)...);
  throw Error(code, param, msg);
}

}  // namespace gmmav
