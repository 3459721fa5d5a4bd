// A test rank's CheckCollectives (src/comm/count_check.hpp) over a simulated
// group of ranks in one process: Group::start(rank, gather, mine, count, out)
// starts a collective and returns its id; Group::test(id) says whether it
// completed (and may complete it: the simulators decide when); Group::done(id)
// only reads.
#pragma once

#include <cstdint>

#include "comm/count_check.hpp"

namespace gmmav::comm::fakes {

template <typename Group>
class GroupCollectives final : public CheckCollectives {
 public:
  GroupCollectives(Group& g, int rank) : g_(g), rank_(rank) {}
  void start_all_gather(const std::int64_t* mine, int count, std::int64_t* all) override {
    last_ = g_.start(rank_, true, mine, count, all);
  }
  void start_all_to_all(const std::int64_t* mine, int count, std::int64_t* theirs) override {
    last_ = g_.start(rank_, false, mine, count, theirs);
  }
  bool test() override { return last_ < 0 || g_.test(last_); }
  bool settled() noexcept override { return last_ < 0 || g_.done(last_); }

 private:
  Group& g_;
  int rank_;
  int last_ = -1;
};

}  // namespace gmmav::comm::fakes
