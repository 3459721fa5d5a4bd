#include "engine/compute_pool.hpp"

#include <sched.h>

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <exception>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#include "common/config.hpp"
#include "common/fail.hpp"
#include "gemm/library_threads.hpp"

namespace gmmav::engine {

int available_cores() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

namespace {
// Ranks of this job on this machine, from the MPI launcher's environment (1 without one).
int local_ranks() {
  for (const char* v : {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS"})
    if (const auto n = env_int(v, 1, 1 << 20, "ranks of the job on this machine")) return static_cast<int>(*n);
  return 1;
}

}  // namespace

// GMMAV_NUM_THREADS, else the cores shared fairly by the ranks of this machine
// (4 MPI processes on 2 cores each get 1 thread, not 2: no oversubscription).
int default_threads() {
  if (const auto n = config::num_threads(kMaxThreads)) return static_cast<int>(*n);
  return std::clamp(available_cores() / local_ranks(), 1, kMaxThreads);
}

namespace {
struct Job {
  const std::function<void(std::size_t)>* fn = nullptr;
  std::size_t n = 0;
  std::size_t next = 0;  // next index to hand out
  std::size_t done = 0;
  std::exception_ptr error;
  std::condition_variable finished;
  bool notify_each = false;  // wake the waiter after every task (it polls)
};
}  // namespace

struct ComputePool::Impl {
  std::mutex mu;
  std::condition_variable work;
  std::deque<Job*> queue;
  std::vector<std::thread> workers;
  bool stop = false;
  std::mutex resize_mu;  // serializes set_threads / set_caller_computes
  bool caller_computes = false;

  // Hands out the next index of `job` (mu held); drops the job from the queue
  // once every index is handed out. Returns false when none is left.
  bool take(Job* job, std::size_t& i) {
    if (job->next >= job->n) return false;
    i = job->next++;
    if (job->next >= job->n) {
      if (auto it = std::find(queue.begin(), queue.end(), job); it != queue.end()) queue.erase(it);
    }
    return true;
  }
  static void run_task(Job* job, std::size_t i, std::unique_lock<std::mutex>& lk) {
    lk.unlock();
    std::exception_ptr err;
    try {
      (*job->fn)(i);
    } catch (...) {
      err = std::current_exception();
    }
    lk.lock();
    if (err && !job->error) job->error = err;
    ++job->done;
  }

  // Starts n workers, or none: if the system refuses a thread, the ones
  // already started are stopped and joined before the error is thrown.
  void start(int n) {
    stop = false;
    workers.reserve(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) {
      try {
        workers.emplace_back([this] { loop(); });
      } catch (const std::system_error& e) {
        const std::size_t started = workers.size();
        join();
        fail(Errc::internal, "threads", "expected {} compute threads to start, got a failure after {}: {}", n, started, e.what());
      }
    }
  }
  void join() {
    {
      std::lock_guard lk(mu);
      stop = true;
    }
    work.notify_all();
    for (auto& t : workers) t.join();
    workers.clear();
  }
  void loop() {
    gemm::make_library_single_threaded();
    std::unique_lock lk(mu);
    for (;;) {
      work.wait(lk, [&] { return stop || !queue.empty(); });
      if (queue.empty()) return;  // stop requested and nothing left
      Job* job = queue.front();
      std::size_t i = 0;
      take(job, i);
      run_task(job, i, lk);
      if (job->done == job->n || job->notify_each) job->finished.notify_all();
      // Let a woken rank thread run now (it may be about to queue the next
      // job): Linux does not preempt a busy worker for a thread it wakes, so
      // without this a rank stuck behind the workers left them idle later.
      lk.unlock();
      sched_yield();
      lk.lock();
    }
  }
};

ComputePool::ComputePool() : impl_(new Impl) {
  try {
    impl_->start(default_threads());
  } catch (...) {  // a bad GMMAV_NUM_THREADS or no threads to be had: the next use tries again
    delete impl_;
    throw;
  }
}
ComputePool::~ComputePool() {
  impl_->join();
  delete impl_;
}

ComputePool& ComputePool::instance() {
  static ComputePool pool;
  return pool;
}

int ComputePool::threads() const {
  std::lock_guard lk(impl_->mu);
  return static_cast<int>(impl_->workers.size()) + (impl_->caller_computes ? 1 : 0);
}

void ComputePool::set_threads(int n) {
  if (n < 1 || n > kMaxThreads)
    fail(Errc::invalid_argument, "threads", "expected a compute thread count in [1, {}], got {}", kMaxThreads, n);
  std::lock_guard rl(impl_->resize_mu);
  const int before = static_cast<int>(impl_->workers.size());
  impl_->join();  // workers drain the queue before they exit
  try {
    impl_->start(n - (impl_->caller_computes ? 1 : 0));
  } catch (const Error&) {
    try {  // the count that ran before (with none, callers compute alone: still correct)
      impl_->start(before);
    } catch (const Error&) {
    }
    throw;
  }
}

void ComputePool::set_caller_computes(bool on) {
  std::lock_guard rl(impl_->resize_mu);
  if (impl_->caller_computes == on) return;
  const int total = static_cast<int>(impl_->workers.size()) + (impl_->caller_computes ? 1 : 0);
  impl_->join();
  impl_->caller_computes = on;  // no worker runs now: safe to flip without mu
  impl_->start(on ? total - 1 : total);
}

bool ComputePool::caller_computes() const {
  std::lock_guard lk(impl_->mu);
  return impl_->caller_computes;
}

void ComputePool::parallel_for(std::size_t n, const std::function<void(std::size_t)>& fn) { parallel_for(n, fn, nullptr); }

void ComputePool::parallel_for(std::size_t n, const std::function<void(std::size_t)>& fn, const std::function<void()>& idle,
                               std::chrono::microseconds idle_period) {
  if (n == 0) return;
  Job job;
  job.fn = &fn;
  job.n = n;
  job.notify_each = static_cast<bool>(idle);
  std::unique_lock lk(impl_->mu);
  impl_->queue.push_back(&job);
  impl_->work.notify_all();
  // `job` lives on this stack: whatever idle() throws, wait for every task first.
  std::exception_ptr idle_error;
  const auto run_idle = [&] {
    if (!idle || idle_error) return;
    lk.unlock();
    try {
      idle();
    } catch (...) {
      idle_error = std::current_exception();
    }
    lk.lock();
  };
  if (impl_->caller_computes || impl_->workers.empty()) {
    // Tasks call the library single-threaded on any thread that runs them.
    const gemm::SingleThreadedLibraryScope single;
    for (std::size_t i = 0; impl_->take(&job, i);) {
      Impl::run_task(&job, i, lk);
      run_idle();
    }
  }
  if (!idle) {
    job.finished.wait(lk, [&] { return job.done == job.n; });
  } else {
    while (job.done != job.n) {
      job.finished.wait_for(lk, idle_period);
      run_idle();
    }
  }
  if (idle_error && !job.error) job.error = idle_error;
  if (job.error) std::rethrow_exception(job.error);
}

}  // namespace gmmav::engine
