// The compute pool's two modes: the caller waits while the workers compute
// (in-process ranks), or the caller computes too (MPI ranks). Every index runs
// exactly once either way, errors reach the caller, and threads() counts the
// threads that compute a call.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "engine/compute_pool.hpp"

namespace {

using gmmav::engine::ComputePool;

// Restores the process-wide pool's mode and size after a test.
class PoolState {
 public:
  PoolState() : threads_(ComputePool::instance().threads()), caller_(ComputePool::instance().caller_computes()) {}
  ~PoolState() {
    ComputePool::instance().set_caller_computes(caller_);
    ComputePool::instance().set_threads(threads_);
  }

 private:
  int threads_;
  bool caller_;
};

struct Seen {
  std::mutex mu;
  std::set<std::thread::id> threads;
  std::vector<int> runs;
  explicit Seen(std::size_t n) : runs(n, 0) {}
  void mark(std::size_t i) {
    std::lock_guard lk(mu);
    threads.insert(std::this_thread::get_id());
    ++runs[i];
  }
};

TEST(ComputePool, WaitingCallerLeavesTheWorkToTheWorkers) {
  PoolState keep;
  auto& pool = ComputePool::instance();
  pool.set_caller_computes(false);
  pool.set_threads(2);
  EXPECT_EQ(pool.threads(), 2);
  Seen seen(64);
  pool.parallel_for(64, [&](std::size_t i) { seen.mark(i); });
  EXPECT_EQ(seen.threads.count(std::this_thread::get_id()), 0u);
  for (int r : seen.runs) EXPECT_EQ(r, 1);
}

TEST(ComputePool, CallerComputesAloneWhenItIsTheOnlyThread) {
  PoolState keep;
  auto& pool = ComputePool::instance();
  pool.set_caller_computes(true);
  pool.set_threads(1);
  EXPECT_TRUE(pool.caller_computes());
  EXPECT_EQ(pool.threads(), 1);  // the caller, no worker
  Seen seen(40);
  std::atomic<int> idles{0};
  pool.parallel_for(40, [&](std::size_t i) { seen.mark(i); }, [&] { ++idles; });
  ASSERT_EQ(seen.threads.size(), 1u);
  EXPECT_EQ(*seen.threads.begin(), std::this_thread::get_id());
  for (int r : seen.runs) EXPECT_EQ(r, 1);
  EXPECT_GE(idles.load(), 40);  // idle() runs between the caller's own tasks
}

TEST(ComputePool, CallerComputesBesideTheWorkers) {
  PoolState keep;
  auto& pool = ComputePool::instance();
  pool.set_caller_computes(true);
  pool.set_threads(3);
  EXPECT_EQ(pool.threads(), 3);  // caller + 2 workers
  Seen seen(300);
  pool.parallel_for(300, [&](std::size_t i) {
    seen.mark(i);
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  });
  EXPECT_EQ(seen.threads.count(std::this_thread::get_id()), 1u);
  EXPECT_GE(seen.threads.size(), 2u);
  for (int r : seen.runs) EXPECT_EQ(r, 1);
}

TEST(ComputePool, ModeSwitchKeepsTheThreadCount) {
  PoolState keep;
  auto& pool = ComputePool::instance();
  pool.set_caller_computes(false);
  pool.set_threads(2);
  pool.set_caller_computes(true);
  EXPECT_EQ(pool.threads(), 2);
  pool.set_caller_computes(false);
  EXPECT_EQ(pool.threads(), 2);
}

TEST(ComputePool, ErrorsReachTheCallerAfterEveryTaskRan) {
  PoolState keep;
  auto& pool = ComputePool::instance();
  for (bool caller : {false, true}) {
    pool.set_caller_computes(caller);
    pool.set_threads(2);
    Seen seen(50);
    EXPECT_THROW(pool.parallel_for(50,
                                   [&](std::size_t i) {
                                     seen.mark(i);
                                     if (i == 7) throw std::runtime_error("task 7 failed");
                                   }),
                 std::runtime_error)
        << "caller computes: " << caller;
    for (int r : seen.runs) EXPECT_EQ(r, 1);
  }
}

TEST(ComputePool, ManyCallersAtOnceInBothModes) {
  PoolState keep;
  auto& pool = ComputePool::instance();
  for (bool caller : {false, true}) {
    pool.set_caller_computes(caller);
    pool.set_threads(2);
    std::vector<std::unique_ptr<Seen>> seen;
    for (int c = 0; c < 6; ++c) seen.push_back(std::make_unique<Seen>(100));
    std::vector<std::thread> callers;
    for (int c = 0; c < 6; ++c)
      callers.emplace_back([&, c] { pool.parallel_for(100, [&](std::size_t i) { seen[static_cast<std::size_t>(c)]->mark(i); }); });
    for (auto& t : callers) t.join();
    for (auto& s : seen)
      for (int r : s->runs) EXPECT_EQ(r, 1);
  }
}

}  // namespace
