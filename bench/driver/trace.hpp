// A Chrome/Perfetto trace ("traceEvents" JSON) of one fused call, recorded
// without touching the engine: a decorating Communicator wraps the real one
// and its Exchange records, per rank and thread, when each routed tile starts
// (rows_for) and is done (rows_done), shared-expert tiles finishing
// (progress), the meet, MPI polling and the final wait (finish).
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "comm/communicator.hpp"

namespace gmmav::bench {

/// Events of one process. Times are microseconds since `base`.
class TraceRecorder {
 public:
  using Clock = std::chrono::steady_clock;
  explicit TraceRecorder(Clock::time_point base) : base_(base) {}
  static constexpr int kRankThread = 0;  ///< tid of a rank's orchestrating thread
  static constexpr int kArrivals = 999;  ///< tid of "rows arriving in this rank's y"

  void span(int pid, int tid, const std::string& name, const char* cat, Clock::time_point t0, Clock::time_point t1,
            nlohmann::json args = {});
  void instant(int pid, int tid, const std::string& name, const char* cat, Clock::time_point t, nlohmann::json args = {});
  /// Process-wide small index of the calling pool worker (1, 2, ...).
  int worker_tid();
  /// This process's events (plus thread/process names) as a JSON array.
  nlohmann::json events() const;

 private:
  // Recorded raw (cheap under the lock); turned into JSON by events().
  struct Event {
    int pid, tid;
    std::string name;
    const char* cat;
    bool span;
    Clock::time_point t0, t1;
    nlohmann::json args;
  };
  Clock::time_point base_;
  mutable std::mutex mu_;
  std::vector<Event> events_;
  std::unordered_map<std::thread::id, int> workers_;
};

/// Wraps a rank's real communicator; every Exchange it hands out records into `rec`.
/// `addressable`: tiles land in the peer's y when written (in-process backend).
std::shared_ptr<comm::Communicator> make_tracing_communicator(std::shared_ptr<comm::Communicator> inner, TraceRecorder& rec,
                                                              bool addressable);

/// {"traceEvents": [...all processes' events...], "displayTimeUnit": "ms", "metadata": ...}
nlohmann::json trace_document(const std::vector<nlohmann::json>& per_process_events, nlohmann::json metadata);

}  // namespace gmmav::bench
