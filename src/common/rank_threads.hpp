// Runs one function per rank on threads of this process — the way every
// in-process program around the library drives a group (the test harness,
// the bench, `gmmav verify`, the reference's run_in_process): one thread per
// rank, all joined, each rank's exception kept for its caller to report.
#pragma once

#include <cstddef>
#include <exception>
#include <thread>
#include <vector>

namespace gmmav {

/// Runs fn(r) for r = 0 .. n-1, each on its own thread, and joins them all.
/// Returns what each threw, by r (null where it returned).
template <typename Fn>
std::vector<std::exception_ptr> run_rank_threads(int n, const Fn& fn) {
  std::vector<std::exception_ptr> errors(static_cast<std::size_t>(n));
  std::vector<std::thread> threads;
  threads.reserve(static_cast<std::size_t>(n));
  for (int r = 0; r < n; ++r)
    threads.emplace_back([&, r] {
      try {
        fn(r);
      } catch (...) {
        errors[static_cast<std::size_t>(r)] = std::current_exception();
      }
    });
  for (std::thread& t : threads) t.join();
  return errors;
}

}  // namespace gmmav
