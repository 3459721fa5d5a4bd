// A reusable barrier for the ranks of one in-process group, with a timeout on
// every wait and a "broken" state: once a rank times out or aborts, every
// waiter and every later arrival fails with the recorded reason (the group
// must then be recreated, as with gloo's and NCCL's communicators).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "gmmav/types.hpp"

namespace gmmav::comm {

class GroupBarrier {
 public:
  GroupBarrier(int size, std::chrono::milliseconds timeout) : size_(size), timeout_(timeout), here_(size, false) {}

  /// Waits for all ranks. `what` names the phase for messages. When
  /// `progress_aware`, the deadline restarts whenever the group makes progress
  /// (a slow but working peer is not a dead one).
  void arrive_and_wait(int rank, const char* what, bool progress_aware);

  /// Marks the group broken and wakes every waiter (idempotent; first reason wins).
  void break_group(const std::string& reason) noexcept;

  /// Throws Errc::group_broken if the group is broken.
  void throw_if_broken();

  void note_progress() noexcept { progress_.fetch_add(1, std::memory_order_relaxed); }

 private:
  const int size_;
  const std::chrono::milliseconds timeout_;
  std::mutex mu_;
  std::condition_variable cv_;
  int arrived_ = 0;
  std::uint64_t generation_ = 0;
  std::vector<bool> here_;  // who has arrived in the current generation
  bool broken_ = false;
  std::string reason_;
  std::atomic<std::uint64_t> progress_{0};
};

}  // namespace gmmav::comm
