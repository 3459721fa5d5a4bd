// How a thread waits between non-blocking tests of a transport: it yields
// the core for the first few hundred microseconds (a peer's message is
// usually that close, and a sleep costs 50-100 us of timer slack per test),
// then sleeps 50 us per test (a long wait must not take a core from ranks
// that still compute).
#pragma once

#include <sched.h>

#include <chrono>
#include <thread>

namespace gmmav::comm {

class Backoff {
 public:
  void pause() {
    if (std::chrono::steady_clock::now() - start_ < std::chrono::microseconds(300)) {
      sched_yield();
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }

 private:
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

}  // namespace gmmav::comm
