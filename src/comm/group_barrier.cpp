#include "comm/group_barrier.hpp"

#include <fmt/format.h>

#include "common/deadline.hpp"

namespace gmmav::comm {

std::uint64_t GroupBarrier::arrive_and_wait(int rank, const char* what, bool progress_aware, const Hooks& hooks) {
  std::unique_lock lk(mu_);
  if (broken_) throw Error(Errc::group_broken, "group", reason_);
  const std::uint64_t gen = generation_;
  if (here_[static_cast<std::size_t>(rank)])
    throw Error(Errc::invalid_argument, "group",
                fmt::format("group: rank {} arrived twice at {} (two threads used rank {}'s communicator at once; a Comm is "
                            "used by one thread at a time)",
                            rank, what, rank));
  here_[static_cast<std::size_t>(rank)] = true;
  if (hooks.on_arrival) hooks.on_arrival(gen);
  if (++arrived_ == size_) {
    if (hooks.on_complete) hooks.on_complete(gen);
    arrived_ = 0;
    here_.assign(here_.size(), false);
    ++generation_;
    cv_.notify_all();
    return gen;
  }
  auto deadline = deadline_after(timeout_);
  std::uint64_t seen = progress_.load(std::memory_order_relaxed);
  while (generation_ == gen && !broken_) {
    if (cv_.wait_until(lk, deadline) != std::cv_status::timeout) continue;
    if (generation_ != gen || broken_) break;
    const std::uint64_t now_progress = progress_.load(std::memory_order_relaxed);
    if (progress_aware && now_progress != seen) {
      seen = now_progress;
      deadline = deadline_after(timeout_);
      continue;
    }
    std::string missing;
    for (int r = 0; r < size_; ++r)
      if (!here_[static_cast<std::size_t>(r)]) missing += (missing.empty() ? "" : ", ") + std::to_string(r);
    broken_ = true;
    reason_ = fmt::format("group: rank {} timed out after {} ms at {} waiting for rank(s) {}; the group is broken, recreate it",
                          rank, timeout_.count(), what, missing);
    cv_.notify_all();
    throw Error(Errc::timeout, "group", reason_);
  }
  if (generation_ == gen) throw Error(Errc::group_broken, "group", reason_);
  return gen;
}

void GroupBarrier::wait_until(int rank, const std::string& what, const std::function<bool()>& done) {
  std::unique_lock lk(mu_);
  auto deadline = deadline_after(timeout_);
  std::uint64_t seen = progress_.load(std::memory_order_relaxed);
  while (!broken_ && !done()) {
    if (cv_.wait_until(lk, deadline) != std::cv_status::timeout) continue;
    if (broken_ || done()) break;
    const std::uint64_t now_progress = progress_.load(std::memory_order_relaxed);
    if (now_progress != seen) {
      seen = now_progress;
      deadline = deadline_after(timeout_);
      continue;
    }
    broken_ = true;
    reason_ = fmt::format("group: rank {} timed out after {} ms waiting for {}; the group is broken, recreate it", rank,
                          timeout_.count(), what);
    cv_.notify_all();
    throw Error(Errc::timeout, "group", reason_);
  }
  if (broken_) throw Error(Errc::group_broken, "group", reason_);
}

void GroupBarrier::wake() noexcept {
  { std::lock_guard lk(mu_); }  // a waiter between its check and its wait holds the lock: no lost wake-up
  cv_.notify_all();
}

void GroupBarrier::break_group(const std::string& reason) noexcept {
  std::lock_guard lk(mu_);
  if (!broken_) {
    broken_ = true;
    reason_ = reason;
  }
  cv_.notify_all();
}

void GroupBarrier::throw_if_broken() {
  std::lock_guard lk(mu_);
  if (broken_) throw Error(Errc::group_broken, "group", reason_);
}

}  // namespace gmmav::comm
