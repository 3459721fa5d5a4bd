// Failures across ranks: mismatched counts fail on every rank before any byte
// is written; a rank that never calls makes the others time out (no hang);
// a broken group says so.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "gmmav/gmmav.hpp"
#include "reference/synthetic_case.hpp"

namespace {

using namespace gmmav::reference;
using namespace std::chrono_literals;

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

TEST(GroupFailures, MismatchedCountsFailEveryRankNothingWritten) {
  Case c = make_case(small_case(4));
  // Rank 2 claims one row less from (source 1, expert 1) and one more from (source 3, expert 0):
  // its total is unchanged, so only the cross-rank check can catch it.
  auto& rc = c.ranks[2].recv_counts;
  rc[1 * 2 + 1] -= 1;
  rc[3 * 2 + 0] += 1;
  const auto errors = run_in_process(c);
  for (int r = 0; r < 4; ++r) {
    SCOPED_TRACE("rank " + std::to_string(r));
    EXPECT_NE(errors[static_cast<std::size_t>(r)].find("(source 1, destination 2, expert 1)"), std::string::npos)
        << errors[static_cast<std::size_t>(r)];
    EXPECT_EQ(errors[static_cast<std::size_t>(r)], errors[0]) << "every rank reports the same first mismatch";
    EXPECT_TRUE(all_sentinel(c.ranks[static_cast<std::size_t>(r)].y));
    EXPECT_TRUE(all_sentinel(c.ranks[static_cast<std::size_t>(r)].mm_y));
  }
}

TEST(GroupFailures, GroupStillUsableAfterCountMismatch) {
  Case bad = make_case(small_case(2));
  bad.ranks[0].recv_counts[0] += 1;
  bad.ranks[0].recv_counts[1] -= 1;
  auto comms = gmmav::create_in_process_group(2);
  for (int round = 0; round < 2; ++round) {
    Case& c = bad;
    std::string err[2];
    std::thread t[2];
    for (int r = 0; r < 2; ++r)
      t[r] = std::thread([&, r] {
        try {
          gmmav::run(gmmav::Plan::create(c.desc(r)), comms[static_cast<std::size_t>(r)], c.tensors(r));
        } catch (const gmmav::Error& e) {
          err[r] = e.what();
          EXPECT_EQ(e.code(), gmmav::Errc::count_mismatch);
        }
      });
    t[0].join();
    t[1].join();
    EXPECT_NE(err[0], "");
    EXPECT_EQ(err[0], err[1]);
  }
  // The same group then runs a good case.
  Case good = make_case(small_case(2));
  std::thread t[2];
  std::string err[2];
  for (int r = 0; r < 2; ++r)
    t[r] = std::thread([&, r] {
      try {
        gmmav::run(gmmav::Plan::create(good.desc(r)), comms[static_cast<std::size_t>(r)], good.tensors(r));
      } catch (const std::exception& e) {
        err[r] = e.what();
      }
    });
  t[0].join();
  t[1].join();
  EXPECT_EQ(err[0], "");
  EXPECT_EQ(err[1], "");
  EXPECT_TRUE(check_case(good, true).ok);
}

TEST(GroupFailures, MismatchedN1AcrossRanks) {
  Case c = make_case(small_case(2));
  auto comms = gmmav::create_in_process_group(2);
  // Rank 1 runs with N1 = 24 but a y of another width: a separate case with a different n1.
  CaseSpec other = small_case(2);
  other.n1 = 8;
  Case c2 = make_case(other);
  std::string err[2];
  std::thread t0([&] {
    try {
      gmmav::run(gmmav::Plan::create(c.desc(0)), comms[0], c.tensors(0));
    } catch (const gmmav::Error& e) {
      err[0] = e.what();
    }
  });
  std::thread t1([&] {
    try {
      gmmav::run(gmmav::Plan::create(c2.desc(1)), comms[1], c2.tensors(1));
    } catch (const gmmav::Error& e) {
      err[1] = e.what();
    }
  });
  t0.join();
  t1.join();
  EXPECT_NE(err[0].find("N1"), std::string::npos) << err[0];
  EXPECT_EQ(err[0], err[1]);
  EXPECT_TRUE(all_sentinel(c.ranks[0].y));
  EXPECT_TRUE(all_sentinel(c2.ranks[1].y));
}

TEST(GroupFailures, RankThatNeverCallsTimesOut) {
  Case c = make_case(small_case(3));
  gmmav::GroupOptions opt;
  opt.timeout = 300ms;
  auto comms = gmmav::create_in_process_group(3, opt);
  std::string err[2];
  gmmav::Errc code[2] = {};
  std::thread t[2];
  const auto start = std::chrono::steady_clock::now();
  for (int r = 0; r < 2; ++r)  // rank 2 never calls
    t[r] = std::thread([&, r] {
      try {
        gmmav::run(gmmav::Plan::create(c.desc(r)), comms[static_cast<std::size_t>(r)], c.tensors(r));
      } catch (const gmmav::Error& e) {
        err[r] = e.what();
        code[r] = e.code();
      }
    });
  t[0].join();
  t[1].join();
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_LT(elapsed, 5s);
  EXPECT_GE(elapsed, 290ms);
  for (int r = 0; r < 2; ++r) {
    EXPECT_TRUE(code[r] == gmmav::Errc::timeout || code[r] == gmmav::Errc::group_broken) << err[r];
    EXPECT_NE(err[r].find("rank(s) 2"), std::string::npos) << err[r];
    EXPECT_TRUE(all_sentinel(c.ranks[static_cast<std::size_t>(r)].y));
  }
  // The late rank learns that the group is broken instead of hanging.
  try {
    gmmav::run(gmmav::Plan::create(c.desc(2)), comms[2], c.tensors(2));
    ADD_FAILURE() << "expected group_broken";
  } catch (const gmmav::Error& e) {
    EXPECT_EQ(e.code(), gmmav::Errc::group_broken) << e.what();
    EXPECT_NE(std::string(e.what()).find("recreate"), std::string::npos);
  }
}

TEST(GroupFailures, ManyCallsOnOneGroupAndPlan) {
  Case c = make_case(small_case(3));
  auto comms = gmmav::create_in_process_group(3);
  std::vector<std::thread> t;
  std::vector<std::string> err(3);
  for (int r = 0; r < 3; ++r)
    t.emplace_back([&, r] {
      try {
        const auto plan = gmmav::Plan::create(c.desc(r));
        for (int i = 0; i < 50; ++i) gmmav::run(plan, comms[static_cast<std::size_t>(r)], c.tensors(r));
      } catch (const std::exception& e) {
        err[static_cast<std::size_t>(r)] = e.what();
      }
    });
  for (auto& th : t) th.join();
  for (auto& e : err) EXPECT_EQ(e, "");
  EXPECT_TRUE(check_case(c, true).ok);
}

}  // namespace
