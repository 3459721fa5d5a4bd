// Numeric settings from the environment, one rule for all of them: unset or
// empty means "use the default"; anything else must be a whole decimal
// integer in the setting's range, or the setting is refused naming the
// variable, the range and the text given (never silently ignored).
#pragma once

#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>

#include "common/fail.hpp"

namespace gmmav {

/// The value of environment variable `name` in [lo, hi] (`what` says what it
/// counts, for the message), or nullopt when it is unset or empty. Throws
/// Error{invalid_argument, name} for any other text ("abc", "12x", " 5",
/// "+5", out of range, too large for int64).
inline std::optional<std::int64_t> env_int(const char* name, std::int64_t lo, std::int64_t hi, const char* what) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return std::nullopt;
  const char* end = v + std::strlen(v);
  std::int64_t n = 0;
  const auto [stop, ec] = std::from_chars(v, end, n);
  if (ec != std::errc() || stop != end || n < lo || n > hi)
    fail(Errc::invalid_argument, name, "expected an integer in [{}, {}] ({}), got '{}'", lo, hi, what, v);
  return n;
}

/// An on/off switch: unset or empty → `fallback`; else env_int in [0, 1].
inline bool env_switch(const char* name, bool fallback) {
  const auto v = env_int(name, 0, 1, "0 = off, 1 = on");
  return v ? *v == 1 : fallback;
}

}  // namespace gmmav
