// A reusable barrier for the ranks of one in-process group, with a timeout on
// every wait and a "broken" state: once a rank times out or aborts, every
// waiter and every later arrival fails with the recorded reason (the group
// must then be recreated, as with gloo's and NCCL's communicators). A rank
// counts once per round: arriving twice is refused, never taken for another
// rank (two threads acting as one rank would otherwise complete a round).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "gmmav/types.hpp"

namespace gmmav::comm {

class GroupBarrier {
 public:
  GroupBarrier(int size, std::chrono::milliseconds timeout) : size_(size), timeout_(timeout), here_(size, false) {}

  /// Run under the barrier's lock with the round's number (so one at a time,
  /// in arrival order); they must not throw. on_arrival: once this rank is
  /// counted. on_complete: by the last rank to arrive, before anyone leaves.
  struct Hooks {
    std::function<void(std::uint64_t round)> on_arrival;
    std::function<void(std::uint64_t round)> on_complete;
  };

  /// Waits for all ranks and returns the round this rank arrived in. `what`
  /// names the phase for messages. When `progress_aware`, the deadline
  /// restarts whenever the group makes progress (a slow but working peer is
  /// not a dead one). A rank already waiting in this round is refused
  /// (Errc::invalid_argument; it is not counted and nothing else changes).
  std::uint64_t arrive_and_wait(int rank, const char* what, bool progress_aware, const Hooks& hooks = {});

  /// Waits, as `rank`, until done() holds (checked under the barrier's lock,
  /// again after every wake()); `what` names the wait in messages. The
  /// deadline restarts whenever the group makes progress. Throws as
  /// arrive_and_wait: a timeout breaks the group; a broken group is group_broken.
  void wait_until(int rank, const std::string& what, const std::function<bool()>& done);
  /// Wakes wait_until's waiters: call after making some done() true.
  void wake() noexcept;

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
