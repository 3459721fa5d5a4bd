#include "engine/schedule.hpp"

#include <algorithm>
#include <iterator>
#include <utility>

#include "engine/compute_pool.hpp"

namespace gmmav::engine {

void Schedule::then_also(std::size_t i, std::function<void(std::vector<Task>& next)> step) {
  Job& job = jobs.at(i);
  if (!job.then) {
    job.then = std::move(step);
    return;
  }
  job.then = [first = std::move(job.then), second = std::move(step)](std::vector<Task>& next) {
    first(next);
    second(next);
  };
}

namespace {

void run_tasks(std::vector<Task>& tasks, const std::function<void()>& idle) {
  if (tasks.empty()) return;
  ComputePool::instance().parallel_for(
      tasks.size(), [&tasks](std::size_t i) { tasks[i](); }, idle);
}

}  // namespace

void execute(Schedule& schedule) {
  static const std::function<void()> no_idle;
  std::vector<Task> added;  // by the previous job's `then`, for this one
  for (Job& job : schedule.jobs) {
    if (job.before) job.before();
    if (!added.empty()) {
      const auto at = job.tasks.begin() + static_cast<std::ptrdiff_t>(std::min(job.lead, job.tasks.size()));
      job.tasks.insert(at, std::make_move_iterator(added.begin()), std::make_move_iterator(added.end()));
      added.clear();
    }
    run_tasks(job.tasks, job.poll ? schedule.idle : no_idle);
    if (job.then) job.then(added);
  }
  run_tasks(added, schedule.idle);
}

}  // namespace gmmav::engine
