// Failures across ranks: mismatched counts fail on every rank before any byte
// is written; a rank that never calls makes the others time out (no hang);
// a broken group says so. Every body runs through the spawn harness
// (tests/support/spawn.hpp): on in-process threads here, and on MPI processes
// under `mpirun ... gmmav_tests --backend=mpi` (ctest mpi.backends.W4).
#include <gtest/gtest.h>

#include <chrono>
#include <latch>
#include <string>
#include <vector>

#include "gmmav/gmmav.hpp"
#include "reference/synthetic_case.hpp"
#include "support/spawn.hpp"

namespace {

using namespace gmmav::reference;
using namespace std::chrono_literals;
using gmmav::testing::Backend;
using gmmav::testing::Rank;

class GroupFailures : public ::testing::TestWithParam<Backend> {};

std::size_t at(int r) { return static_cast<std::size_t>(r); }

// Runs rank `me` of `c` on its group: the error's message and code (empty: none).
struct Outcome {
  std::string what;
  gmmav::Errc code{};
};
// With the workspace the backend asks for (MPI stages remote tiles in it).
void run_with_workspace(const gmmav::Plan& plan, const gmmav::Comm& comm, const gmmav::OpTensors& t) {
  std::vector<std::byte> workspace(gmmav::workspace_size(plan, comm));
  gmmav::run(plan, comm, t, workspace);
}

Outcome run_rank(Case& c, const Rank& me) {
  try {
    run_with_workspace(gmmav::Plan::create(c.desc(me.rank)), me.comm, c.tensors(me.rank));
    return {};
  } catch (const gmmav::Error& e) {
    return {e.what(), e.code()};
  }
}

CaseSpec small_case(int W) {
  CaseSpec s;
  s.world_size = W;
  s.local_experts = 2;
  s.rows_per_rank = 40;
  s.shared_expert = true;
  s.counts = CountPattern::balanced;
  return s;
}

bool all_sentinel(const std::vector<std::uint16_t>& v) {
  for (auto x : v)
    if (x != 0xA5A5) return false;
  return true;
}

TEST_P(GroupFailures, MismatchedCountsFailEveryRankNothingWritten) {
  Case c = make_case(small_case(4));
  // Rank 2 claims one row less from (source 1, expert 1) and one more from (source 3, expert 0):
  // its total is unchanged, so only the cross-rank check can catch it.
  auto& rc = c.ranks[2].recv_counts;
  rc[1 * 2 + 1] -= 1;
  rc[3 * 2 + 0] += 1;
  std::vector<std::string> errors(4);
  GMMAV_SPAWN(GetParam(), 4, [&](const Rank& me) {
    const Outcome o = run_rank(c, me);
    errors[at(me.rank)] = o.what;
    EXPECT_EQ(o.code, gmmav::Errc::count_mismatch) << "rank " << me.rank << ": " << o.what;
    EXPECT_NE(o.what.find("(source 1, destination 2, expert 1)"), std::string::npos) << "rank " << me.rank << ": " << o.what;
    EXPECT_TRUE(all_sentinel(c.ranks[at(me.rank)].y)) << "rank " << me.rank;
    EXPECT_TRUE(all_sentinel(c.ranks[at(me.rank)].mm_y)) << "rank " << me.rank;
  });
  if (GetParam() == Backend::in_process) {
    for (int r = 1; r < 4; ++r) EXPECT_EQ(errors[at(r)], errors[0]) << "every rank reports the same first mismatch";
  }
}

TEST_P(GroupFailures, GroupStillUsableAfterCountMismatch) {
  Case bad = make_case(small_case(2));
  bad.ranks[0].recv_counts[0] += 1;
  bad.ranks[0].recv_counts[1] -= 1;
  Case good = make_case(small_case(2));
  GMMAV_SPAWN(GetParam(), 2, [&](const Rank& me) {
    for (int round = 0; round < 2; ++round) {
      const Outcome o = run_rank(bad, me);
      EXPECT_EQ(o.code, gmmav::Errc::count_mismatch) << "rank " << me.rank << " round " << round << ": " << o.what;
      EXPECT_NE(o.what.find("(source 0, destination 0, expert 0)"), std::string::npos) << o.what;
    }
    // The same group then runs a good case.
    EXPECT_EQ(run_rank(good, me).what, "") << "rank " << me.rank;
    const CaseCheck check = check_case(good, true, me.rank);
    EXPECT_TRUE(check.ok) << "rank " << me.rank << ": " << check.first_failure;
  });
}

TEST_P(GroupFailures, MismatchedN1AcrossRanks) {
  Case c = make_case(small_case(2));
  // Rank 1 runs with N1 = 8 (a separate case of another width), rank 0 with N1 = 24.
  CaseSpec other = small_case(2);
  other.n1 = 8;
  Case c2 = make_case(other);
  std::vector<std::string> errors(2);
  GMMAV_SPAWN(GetParam(), 2, [&](const Rank& me) {
    Case& mine = me.rank == 0 ? c : c2;
    const Outcome o = run_rank(mine, me);
    errors[at(me.rank)] = o.what;
    EXPECT_NE(o.what.find("N1"), std::string::npos) << "rank " << me.rank << ": " << o.what;
    EXPECT_TRUE(all_sentinel(mine.ranks[at(me.rank)].y)) << "rank " << me.rank;
  });
  if (GetParam() == Backend::in_process) {
    EXPECT_EQ(errors[0], errors[1]);
  }
}

TEST_P(GroupFailures, RankThatNeverCallsTimesOut) {
  Case c = make_case(small_case(3));
  gmmav::GroupOptions opt;
  opt.timeout = 300ms;
  std::latch peers_returned(2);
  GMMAV_SPAWN(
      GetParam(), 3,
      [&](const Rank& me) {
        if (me.rank == 2) {  // never calls while the others wait for it
          if (me.backend != Backend::in_process) return;
          // In-process the late rank then learns that the group is broken instead of hanging.
          peers_returned.wait();
          const Outcome late = run_rank(c, me);
          EXPECT_EQ(late.code, gmmav::Errc::group_broken) << late.what;
          EXPECT_NE(late.what.find("recreate"), std::string::npos) << late.what;
          return;
        }
        const auto start = std::chrono::steady_clock::now();
        const Outcome o = run_rank(c, me);
        const auto elapsed = std::chrono::steady_clock::now() - start;
        peers_returned.count_down();
        EXPECT_LT(elapsed, 5s);
        EXPECT_GE(elapsed, 290ms);
        EXPECT_TRUE(o.code == gmmav::Errc::timeout || o.code == gmmav::Errc::group_broken) << o.what;
        if (me.backend == Backend::in_process) {
          EXPECT_NE(o.what.find("rank(s) 2"), std::string::npos) << o.what;
        }
        EXPECT_TRUE(all_sentinel(c.ranks[at(me.rank)].y));
      },
      opt);
}

TEST_P(GroupFailures, ManyCallsOnOneGroupAndPlan) {
  Case c = make_case(small_case(3));
  GMMAV_SPAWN(GetParam(), 3, [&](const Rank& me) {
    const auto plan = gmmav::Plan::create(c.desc(me.rank));
    for (int i = 0; i < 50; ++i) run_with_workspace(plan, me.comm, c.tensors(me.rank));
    const CaseCheck check = check_case(c, true, me.rank);
    EXPECT_TRUE(check.ok) << "rank " << me.rank << ": " << check.first_failure;
  });
}

INSTANTIATE_TEST_SUITE_P(Backends, GroupFailures, gmmav::testing::backends(), gmmav::testing::backend_name);

}  // namespace
