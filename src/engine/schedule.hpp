// A call's work as the process's pool runs it: jobs in order, each a set of
// tasks the pool runs in parallel, with the points between jobs where the
// calling thread waits (an exchange's arrivals, its finish) or steps in (the
// bench's baselines move data there, bench/baselines/expert_pipeline.cpp). One builder
// per op (engine/pipeline.cpp: combine, engine/dispatch_pipeline.cpp:
// dispatch), one executor. A schedule decides only when work runs, never how a
// tile is computed: every schedule of a plan gives the same bits.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <vector>

namespace gmmav::engine {

using Task = std::function<void()>;

struct Job {
  /// On the calling thread before the job's tasks start (a wait point); may be empty.
  std::function<void()> before;
  /// Run in parallel on the pool; the job ends when every one has run.
  std::vector<Task> tasks;
  /// tasks[0, lead) stay ahead of the tasks a previous job's `then` adds (e.g. the
  /// next stage's weight preparation, which should start first).
  std::size_t lead = 0;
  /// On the calling thread after the job; tasks it appends run in the next job
  /// (after its lead), or in a job of their own after the last one.
  std::function<void(std::vector<Task>& next)> then;
  /// Whether the schedule's `idle` runs while this job computes.
  bool poll = true;
  /// Labels for callers that step in (they never change what runs): the routed
  /// expert whose tiles end in this job (-1: none), and whether every routed
  /// tile has run when it ends.
  int expert = -1;
  bool routed_done = false;
};

struct Schedule {
  std::vector<Job> jobs;
  /// Called by the calling thread while the pool computes a job with `poll` set
  /// (progress of the exchange); may be empty.
  std::function<void()> idle;
  /// What the tasks refer to (weights being prepared, tile lists), kept alive with the schedule.
  std::shared_ptr<void> state;

  /// Appends `step` to job i's `then` (after whatever it does already).
  void then_also(std::size_t i, std::function<void(std::vector<Task>& next)> step);
};

/// Runs the jobs in order on the process's compute pool; rethrows the first
/// exception a task or a step threw (the job's other tasks still run).
void execute(Schedule& schedule);

}  // namespace gmmav::engine
