// CPU time (user + system) from getrusage, in seconds: of this process
// (RUSAGE_SELF) or of the calling thread (RUSAGE_THREAD).
#pragma once

#include <sys/resource.h>

namespace gmmav::bench {

inline double cpu_seconds(int who) {
  rusage u{};
  getrusage(who, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         1e-6 * static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

}  // namespace gmmav::bench
