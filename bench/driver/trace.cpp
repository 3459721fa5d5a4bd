#include "trace.hpp"

#include <fmt/format.h>

#include <map>
#include <set>

#include "comm/forwarding.hpp"

namespace gmmav::bench {
namespace {

using Clock = TraceRecorder::Clock;

class TracingExchange final : public comm::ForwardingExchange {
 public:
  TracingExchange(std::unique_ptr<comm::Exchange> inner, TraceRecorder& rec, int rank, bool addressable)
      : ForwardingExchange(std::move(inner)), rec_(rec), rank_(rank), addressable_(addressable) {}

  void* rows_for(int dest, int j, std::int64_t first, std::int64_t rows) override {
    const auto t0 = Clock::now();
    void* where = inner().rows_for(dest, j, first, rows);
    // The engine computes the tile right after it knows where it goes; a
    // long answer was a wait (a free staging slot, or the count check).
    tile_start() = Clock::now();
    if (tile_start() - t0 > std::chrono::microseconds(5))
      rec_.span(rank_, rec_.worker_tid(), "wait (staging slot or count check)", "comm", t0, tile_start());
    return where;
  }
  void rows_done(int dest, int j, std::int64_t first, std::int64_t rows, void* where) override {
    const auto t_done = Clock::now();
    inner().rows_done(dest, j, first, rows, where);
    const auto t = Clock::now();
    // The tile boundary's own work (MPI: the tile's Isend and a pass over the requests).
    if (t - t_done > std::chrono::microseconds(20))
      rec_.span(rank_, rec_.worker_tid(), "tile boundary (send, progress)", "comm", t_done, t);
    const nlohmann::json args = {{"expert", j}, {"dest", dest}, {"first", first}, {"rows", rows}};
    rec_.span(rank_, rec_.worker_tid(), fmt::format("e{}->r{}", j, dest), "tile", tile_start(), t, args);
    if (dest == rank_) return;
    if (addressable_)  // the tile was written straight into the peer's y: it has arrived
      rec_.instant(dest, TraceRecorder::kArrivals, fmt::format("from r{} e{}", rank_, j), "arrival", t, args);
    else
      rec_.instant(rank_, rec_.worker_tid(), fmt::format("queued for r{}", dest), "send", t, args);
  }
  void progress() noexcept override {
    inner().progress();
    try {
      rec_.instant(rank_, rec_.worker_tid(), "shared tile done", "shared", Clock::now());
    } catch (...) {
    }
  }
  void wait_agreed() override {
    const auto t0 = Clock::now();
    inner().wait_agreed();
    const auto t1 = Clock::now();
    if (t1 - t0 > std::chrono::microseconds(5)) rec_.span(rank_, rec_.worker_tid(), "wait (count check)", "comm", t0, t1);
  }
  void poll() override {
    const auto t0 = Clock::now();
    inner().poll();
    rec_.span(rank_, TraceRecorder::kRankThread, "poll", "comm", t0, Clock::now());
  }
  void finish() override {
    const auto t0 = Clock::now();
    inner().finish();
    rec_.span(rank_, TraceRecorder::kRankThread, "finish (all rows in)", "comm", t0, Clock::now());
  }

 private:
  static Clock::time_point& tile_start() {
    thread_local Clock::time_point t;
    return t;
  }
  TraceRecorder& rec_;
  int rank_;
  bool addressable_;
};

// Everything forwarded (comm/forwarding.hpp); the meet and each call's Exchange are recorded.
class TracingCommunicator final : public comm::ForwardingCommunicator {
 public:
  TracingCommunicator(std::shared_ptr<comm::Communicator> inner, TraceRecorder& rec, bool addressable)
      : ForwardingCommunicator(std::move(inner)), rec_(rec), addressable_(addressable) {}
  std::unique_ptr<comm::Exchange> meet(const comm::CallInfo& mine, std::span<std::byte> workspace) override {
    const auto t0 = Clock::now();
    auto ex = inner().meet(mine, workspace);
    rec_.span(rank(), TraceRecorder::kRankThread, "meet", "comm", t0, Clock::now());
    return std::make_unique<TracingExchange>(std::move(ex), rec_, rank(), addressable_);
  }

 private:
  TraceRecorder& rec_;
  bool addressable_;
};

double micros(Clock::duration d) { return std::chrono::duration<double, std::micro>(d).count(); }

}  // namespace

void TraceRecorder::span(int pid, int tid, const std::string& name, const char* cat, Clock::time_point t0, Clock::time_point t1,
                         nlohmann::json args) {
  std::lock_guard lk(mu_);
  events_.push_back({pid, tid, name, cat, true, t0, t1, std::move(args)});
}

void TraceRecorder::instant(int pid, int tid, const std::string& name, const char* cat, Clock::time_point t,
                            nlohmann::json args) {
  std::lock_guard lk(mu_);
  events_.push_back({pid, tid, name, cat, false, t, t, std::move(args)});
}

int TraceRecorder::worker_tid() {
  std::lock_guard lk(mu_);
  auto [it, added] = workers_.emplace(std::this_thread::get_id(), static_cast<int>(workers_.size()) + 1);
  return it->second;
}

nlohmann::json TraceRecorder::events() const {
  std::lock_guard lk(mu_);
  nlohmann::json out = nlohmann::json::array();
  std::map<int, std::set<int>> seen;  // pid -> tids with events
  for (const Event& ev : events_) {
    nlohmann::json e = {{"name", ev.name}, {"cat", ev.cat}, {"pid", ev.pid}, {"tid", ev.tid}, {"ts", micros(ev.t0 - base_)}};
    if (ev.span) {
      e["ph"] = "X";
      e["dur"] = micros(ev.t1 - ev.t0);
    } else {
      e["ph"] = "i";
      e["s"] = "t";
    }
    if (!ev.args.is_null()) e["args"] = ev.args;
    out.push_back(std::move(e));
    seen[ev.pid].insert(ev.tid);
  }
  for (const auto& [pid, tids] : seen) {
    out.push_back({{"name", "process_name"}, {"ph", "M"}, {"pid", pid}, {"args", {{"name", fmt::format("rank {}", pid)}}}});
    out.push_back({{"name", "process_sort_index"}, {"ph", "M"}, {"pid", pid}, {"args", {{"sort_index", pid}}}});
    for (int tid : tids) {
      const std::string n = tid == kRankThread ? "rank thread (meet, poll, finish)"
                            : tid == kArrivals ? "rows arriving in y"
                                               : fmt::format("pool worker {}", tid);
      out.push_back({{"name", "thread_name"}, {"ph", "M"}, {"pid", pid}, {"tid", tid}, {"args", {{"name", n}}}});
      out.push_back({{"name", "thread_sort_index"}, {"ph", "M"}, {"pid", pid}, {"tid", tid}, {"args", {{"sort_index", tid}}}});
    }
  }
  return out;
}

std::shared_ptr<comm::Communicator> make_tracing_communicator(std::shared_ptr<comm::Communicator> inner, TraceRecorder& rec,
                                                              bool addressable) {
  return std::make_shared<TracingCommunicator>(std::move(inner), rec, addressable);
}

nlohmann::json trace_document(const std::vector<nlohmann::json>& per_process_events, nlohmann::json metadata) {
  nlohmann::json all = nlohmann::json::array();
  for (const auto& evs : per_process_events)
    for (const auto& e : evs) all.push_back(e);
  return {{"traceEvents", std::move(all)}, {"displayTimeUnit", "ms"}, {"metadata", std::move(metadata)}};
}

}  // namespace gmmav::bench
