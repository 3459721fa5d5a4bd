// Deadlines that saturate. A timeout too large for the clock (GMMAV_TIMEOUT_MS
// of 10^13 ms, a 1000-year GroupOptions::timeout: "wait forever") must not
// wrap now() + timeout into the past, nor overflow when compared with a
// duration in the clock's nanoseconds, and so expire at once.
#pragma once

#include <chrono>

namespace gmmav {

using SteadyClock = std::chrono::steady_clock;

/// now + timeout, or the clock's last time point when that does not fit.
inline SteadyClock::time_point deadline_after(std::chrono::milliseconds timeout,
                                              SteadyClock::time_point now = SteadyClock::now()) {
  if (timeout <= std::chrono::milliseconds::zero()) return now;
  const auto room = std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::time_point::max() - now);
  return timeout >= room ? SteadyClock::time_point::max() : now + timeout;
}

/// elapsed > timeout, for any timeout (one beyond the clock's range is never exceeded).
inline bool exceeds(SteadyClock::duration elapsed, std::chrono::milliseconds timeout) {
  constexpr auto kLongest = std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::duration::max());
  return timeout < kLongest && elapsed > timeout;
}

}  // namespace gmmav
