// The process-wide compute pool: one set of worker threads, sized to the cores,
// shared by every rank of the process (8 in-process ranks on 2 cores run 2
// GEMMs at a time, not 16). Each task runs single-threaded library calls, so
// results never depend on the pool's size.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>

namespace gmmav::engine {

class ComputePool {
 public:
  /// The process's pool (created on first use: GMMAV_NUM_THREADS or the cores available).
  static ComputePool& instance();

  int threads() const;
  /// Resizes the pool (waits for running work to finish).
  void set_threads(int n);

  /// Runs fn(i) for i in [0, n) on the pool's workers and returns when all
  /// ran. Safe to call from many threads at once; their tasks interleave.
  /// Rethrows the first exception a task threw (the other tasks still run).
  void parallel_for(std::size_t n, const std::function<void(std::size_t)>& fn);
  /// As above; the calling thread runs `idle()` whenever a task finishes and
  /// at least every `idle_period` while it waits (progress polling).
  void parallel_for(std::size_t n, const std::function<void(std::size_t)>& fn, const std::function<void()>& idle,
                    std::chrono::microseconds idle_period = std::chrono::microseconds(200));

  ~ComputePool();
  ComputePool(const ComputePool&) = delete;
  ComputePool& operator=(const ComputePool&) = delete;

 private:
  ComputePool();
  struct Impl;
  Impl* impl_;
};

/// Cores this process may run on.
int available_cores();

}  // namespace gmmav::engine
