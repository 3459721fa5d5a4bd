// The compute pool's two modes: the caller waits while the workers compute
// (in-process ranks), or the caller computes too (MPI ranks). Every index runs
// exactly once either way, errors reach the caller, and threads() counts the
// threads that compute a call.
#include <gtest/gtest.h>

#include <cstdio>

#include <sys/resource.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "engine/compute_pool.hpp"
#include "gmmav/gmmav.hpp"
#include "support/expect_error.hpp"

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
  pool.parallel_for(
      40, [&](std::size_t i) { seen.mark(i); }, [&] { ++idles; });
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
      callers.emplace_back(
          [&, c] { pool.parallel_for(100, [&](std::size_t i) { seen[static_cast<std::size_t>(c)]->mark(i); }); });
    for (auto& t : callers) t.join();
    for (auto& s : seen)
      for (int r : s->runs) EXPECT_EQ(r, 1);
  }
}

// ---- issue 16: thread counts are bounded; a refused thread is an error, not a leak ----
int threads_of_process() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("Threads:", 0) == 0) return std::stoi(line.substr(8));
  return -1;
}
long vm_size_kib() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmSize:", 0) == 0) return std::stol(line.substr(7));
  return -1;
}

TEST(ComputePool, ThreadCountOutOfRangeRefused) {
  PoolState keep;
  gmmav::set_compute_threads(2);
  for (int bad : {0, -1, 1025, 1 << 30}) {
    gmmav::testing::expect_error([&] { gmmav::set_compute_threads(bad); }, gmmav::Errc::invalid_argument, "threads");
    EXPECT_EQ(gmmav::compute_threads(), 2) << "a refused count changes nothing";
  }
}

// What the death tests below run in a fresh process (threadsafe death tests
// re-execute the binary), so the pool is created there, from the environment
// set there. Exit code 0: as expected.
[[noreturn]] void create_pool_with_bad_num_threads() {
  ::setenv("GMMAV_NUM_THREADS", "abc", 1);
  try {
    (void)gmmav::compute_threads();
  } catch (const gmmav::Error& e) {
    std::exit(e.param() == "GMMAV_NUM_THREADS" ? 0 : 2);
  }
  std::exit(1);  // silently ignored
}

[[noreturn]] void start_threads_beyond_the_address_space() {
  gmmav::set_compute_threads(2);
  const int before = threads_of_process();
  // Room for a few more 8 MiB thread stacks, not for 1000.
  const rlim_t limit = static_cast<rlim_t>(vm_size_kib() + 64 * 1024) * 1024;
  const rlimit rl{limit, limit};
  if (setrlimit(RLIMIT_AS, &rl) != 0) std::exit(3);
  try {
    gmmav::set_compute_threads(1000);
  } catch (const gmmav::Error& e) {
    // Under the limit either the thread or memory for it is refused first (both are gmmav errors).
    if (e.code() != gmmav::Errc::internal && e.code() != gmmav::Errc::out_of_memory) {
      std::fprintf(stderr, "unexpected error: %s\n", e.what());
      std::exit(2);
    }
    if (gmmav::compute_threads() != 2) std::exit(5);
    // No worker left behind. "<=": a thread that was still exiting when `before` was counted may be
    // gone by now (seen under load: 4 before, 3 after).
    if (threads_of_process() > before) {
      std::fprintf(stderr, "threads: %d before, %d after\n", before, threads_of_process());
      std::exit(6);
    }
    std::exit(0);
  } catch (...) {
    std::exit(4);  // std::system_error escaped
  }
  std::exit(1);
}

TEST(ComputePoolDeathTest, BadNumThreadsEnvironmentRefused) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(create_pool_with_bad_num_threads(), ::testing::ExitedWithCode(0), "");
}

TEST(ComputePoolDeathTest, RefusedThreadCreationJoinsTheStartedWorkers) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "an address-space limit breaks the sanitizer's shadow memory";
#endif
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(start_threads_beyond_the_address_space(), ::testing::ExitedWithCode(0), "");
}

}  // namespace
