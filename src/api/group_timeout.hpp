// The timeout a new group gets from its GroupOptions (native API glue).
#pragma once

#include <chrono>

#include "common/fail.hpp"
#include "gmmav/comm.hpp"

namespace gmmav::api {

/// options.timeout, or default_timeout() for 0. A negative timeout is a
/// mistake, not a request for the default: refused.
inline std::chrono::milliseconds group_timeout(const GroupOptions& options) {
  if (options.timeout.count() < 0)
    fail(Errc::invalid_argument, "timeout", "expected 0 (the default) or a positive number of ms, got {} ms",
         options.timeout.count());
  return options.timeout.count() > 0 ? options.timeout : default_timeout();
}

}  // namespace gmmav::api
