// The process-wide compute pool: one set of worker threads, sized to the cores,
// shared by every rank of the process (8 in-process ranks on 2 cores run 2
// GEMMs at a time, not 16). Each task runs single-threaded library calls, so
// results never depend on the pool's size.
//
// Two modes for the thread that calls parallel_for:
// - it waits (in-process ranks: W rank threads would oversubscribe the cores
//   if they computed too; the workers do all the work);
// - it computes too ("caller computes", set by the MPI backend: one rank per
//   process, whose thread is then a worker like the others — no hand-off to
//   another thread and back per stage, no thread that wakes up only to poll).
//   The pool then has one worker fewer, so the threads computing a call are
//   still cores / ranks on the machine; with one core per rank it has none.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>

namespace gmmav::engine {

class ComputePool {
 public:
  /// The process's pool (created on first use: GMMAV_NUM_THREADS or the cores
  /// available). Throws gmmav::Error for a bad GMMAV_NUM_THREADS.
  static ComputePool& instance();

  /// Threads that compute a call: the workers, plus the caller in "caller computes" mode.
  int threads() const;
  /// Sets that number, in [1, kMaxThreads] (else gmmav::Error, nothing
  /// changed); waits for running work to finish. If the system refuses a
  /// thread, the workers started are joined, the previous count is restored
  /// and gmmav::Error (internal) is thrown.
  void set_threads(int n);
  /// "Caller computes" mode (see above). Keeps threads() as it is: the pool
  /// loses (or regains) the worker the caller replaces.
  void set_caller_computes(bool on);
  bool caller_computes() const;

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

/// The most compute threads a pool may have: far above any core count it
/// serves, low enough that a typo cannot exhaust the process's threads.
inline constexpr int kMaxThreads = 1024;

/// GMMAV_NUM_THREADS (checked: an integer in [1, kMaxThreads]), else the cores
/// shared by the job's ranks on this machine. Throws gmmav::Error naming the variable.
int default_threads();

}  // namespace gmmav::engine
