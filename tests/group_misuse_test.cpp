// Misuse of an in-process group found by outside testing (issue 16): a rank's
// communicator used by two threads at once, tensors shared across ranks,
// timeouts too large for the clock or negative. Each must end in a clear
// error on every rank with nothing written, never in silent corruption.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <thread>

#include "comm/group_barrier.hpp"
#include "gmmav/gmmav.hpp"
#include "reference/synthetic_case.hpp"

namespace {

using namespace gmmav::reference;
using namespace std::chrono_literals;

constexpr std::uint16_t kSentinel = 0xA5A5;

CaseSpec small_case(int W) {
  CaseSpec s;
  s.world_size = W;
  s.local_experts = 2;
  s.rows_per_rank = 40;
  s.counts = CountPattern::balanced;
  return s;
}

bool all_equal(const std::uint16_t* p, std::size_t n, std::uint16_t v) {
  return std::all_of(p, p + n, [&](std::uint16_t x) { return x == v; });
}

// Runs one thread per entry of `calls` and returns each one's error ("" = success).
std::vector<std::string> run_threads(const std::vector<std::function<void()>>& calls) {
  std::vector<std::string> err(calls.size());
  std::vector<std::thread> t;
  for (std::size_t i = 0; i < calls.size(); ++i)
    t.emplace_back([&, i] {
      try {
        calls[i]();
      } catch (const std::exception& e) {
        err[i] = e.what();
        if (err[i].empty()) err[i] = "(empty message)";
      }
    });
  for (auto& th : t) th.join();
  return err;
}

TEST(GroupMisuse, SameRankArrivingTwiceIsRefusedAndRankOneIsNotWritten) {
  // A good call first: rank 1's call information of that call stays in the group.
  Case c = make_case(small_case(2));
  gmmav::GroupOptions opt;
  opt.timeout = 500ms;
  auto comms = gmmav::create_in_process_group(2, opt);
  const auto plan0 = gmmav::Plan::create(c.desc(0));
  const auto plan1 = gmmav::Plan::create(c.desc(1));
  auto first =
      run_threads({[&] { gmmav::run(plan0, comms[0], c.tensors(0)); }, [&] { gmmav::run(plan1, comms[1], c.tensors(1)); }});
  ASSERT_EQ(first[0], "");
  ASSERT_EQ(first[1], "");
  std::fill(c.ranks[1].y.begin(), c.ranks[1].y.end(), kSentinel);
  // Two threads act as rank 0 at once; rank 1 never calls. One of them is
  // refused at once (not counted as rank 1); the other waits for rank 1 and
  // times out. Nothing pairs with rank 1's call information of the first call.
  Case twin = make_case(small_case(2));
  auto err =
      run_threads({[&] { gmmav::run(plan0, comms[0], c.tensors(0)); }, [&] { gmmav::run(plan0, comms[0], twin.tensors(0)); }});
  const int refused = err[0].find("rank 0 arrived twice") != std::string::npos ? 0 : 1;
  EXPECT_NE(err[static_cast<std::size_t>(refused)].find("rank 0 arrived twice"), std::string::npos) << err[0] << " / " << err[1];
  EXPECT_NE(err[static_cast<std::size_t>(1 - refused)].find("waiting for rank(s) 1"), std::string::npos) << err[1 - refused];
  EXPECT_TRUE(all_equal(c.ranks[1].y.data(), c.ranks[1].y.size(), kSentinel)) << "rank 1 never ran: its y must not be written";
  EXPECT_TRUE(all_equal(twin.ranks[0].y.data(), twin.ranks[0].y.size(), kSentinel));
}

TEST(GroupMisuse, BarrierCountsARankOncePerRound) {
  gmmav::comm::GroupBarrier barrier(2, 5s);
  std::thread first([&] { EXPECT_EQ(barrier.arrive_and_wait(0, "the test", false), 0u); });
  std::this_thread::sleep_for(50ms);  // rank 0 waits in round 0
  try {
    barrier.arrive_and_wait(0, "the test", false);
    ADD_FAILURE() << "a second arrival of rank 0 must be refused, not taken for rank 1";
  } catch (const gmmav::Error& e) {
    EXPECT_EQ(e.code(), gmmav::Errc::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("rank 0 arrived twice"), std::string::npos) << e.what();
  }
  EXPECT_EQ(barrier.arrive_and_wait(1, "the test", false), 0u) << "the round still waits for rank 1";
  first.join();
}

// Rank 1's `y` placed on rank 0's memory `victim` (of `victim_elems` elements):
// every rank must fail with an overlap error and write nothing.
void expect_cross_rank_overlap_refused(bool onto_gmm_x) {
  Case c = make_case(small_case(2));
  gmmav::OpTensors t0 = c.tensors(0), t1 = c.tensors(1);
  // One buffer big enough for both views, so that a run that is not refused stays in bounds.
  const std::size_t x0 = c.ranks[0].gmm_x.size(), y0 = c.ranks[0].y.size(), y1 = c.ranks[1].y.size();
  std::vector<std::uint16_t> shared(std::max({x0, y0, y1}), kSentinel);
  if (onto_gmm_x) {
    std::copy(c.ranks[0].gmm_x.begin(), c.ranks[0].gmm_x.end(), shared.begin());
    t0.gmm_x.data = shared.data();
  } else {
    t0.y.data = shared.data();
  }
  t1.y.data = shared.data();
  const std::vector<std::uint16_t> before = shared;
  auto comms = gmmav::create_in_process_group(2);
  auto err = run_threads({[&] { gmmav::run(gmmav::Plan::create(c.desc(0)), comms[0], t0); },
                          [&] { gmmav::run(gmmav::Plan::create(c.desc(1)), comms[1], t1); }});
  const std::string victim = onto_gmm_x ? "rank 0's gmmX" : "rank 0's y";
  for (const auto& e : err) {
    EXPECT_NE(e.find("rank 1's y"), std::string::npos) << e;
    EXPECT_NE(e.find(victim), std::string::npos) << e;
  }
  EXPECT_EQ(err[0], err[1]) << "every rank reports the same overlap";
  EXPECT_EQ(shared, before) << "nothing written";
  EXPECT_TRUE(all_equal(c.ranks[0].y.data(), y0, kSentinel));
  // The group stays usable, as after a count mismatch.
  Case good = make_case(small_case(2));
  auto again = run_threads({[&] { gmmav::run(gmmav::Plan::create(good.desc(0)), comms[0], good.tensors(0)); },
                            [&] { gmmav::run(gmmav::Plan::create(good.desc(1)), comms[1], good.tensors(1)); }});
  EXPECT_EQ(again[0], "");
  EXPECT_EQ(again[1], "");
  EXPECT_TRUE(check_case(good, true).ok);
}

TEST(GroupMisuse, YOfOneRankOnAnotherRanksGmmXIsRefused) { expect_cross_rank_overlap_refused(true); }
TEST(GroupMisuse, YOfOneRankOnAnotherRanksYIsRefused) { expect_cross_rank_overlap_refused(false); }

// Rank 1 arrives 100 ms after rank 0, which waits with the given group timeout.
std::vector<std::string> run_late_peer(const gmmav::GroupOptions& opt) {
  Case c = make_case(small_case(2));
  auto comms = gmmav::create_in_process_group(2, opt);
  auto err = run_threads({[&] { gmmav::run(gmmav::Plan::create(c.desc(0)), comms[0], c.tensors(0)); },
                          [&] {
                            std::this_thread::sleep_for(100ms);
                            gmmav::run(gmmav::Plan::create(c.desc(1)), comms[1], c.tensors(1));
                          }});
  if (err[0].empty() && err[1].empty()) {
    EXPECT_TRUE(check_case(c, true).ok);
  }
  return err;
}

TEST(GroupMisuse, ThousandYearTimeoutDoesNotExpireAtOnce) {
  gmmav::GroupOptions opt;
  opt.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::years(1000));
  const auto err = run_late_peer(opt);
  EXPECT_EQ(err[0], "");
  EXPECT_EQ(err[1], "");
}

TEST(GroupMisuse, HugeTimeoutFromTheEnvironmentDoesNotExpireAtOnce) {
  ::setenv("GMMAV_TIMEOUT_MS", "10000000000000", 1);
  const auto err = run_late_peer({});
  ::unsetenv("GMMAV_TIMEOUT_MS");
  EXPECT_EQ(err[0], "");
  EXPECT_EQ(err[1], "");
}

TEST(GroupMisuse, NegativeTimeoutIsRefused) {
  gmmav::GroupOptions opt;
  opt.timeout = -5ms;
  try {
    gmmav::create_in_process_group(2, opt);
    ADD_FAILURE() << "expected an error";
  } catch (const gmmav::Error& e) {
    EXPECT_EQ(e.code(), gmmav::Errc::invalid_argument);
    EXPECT_EQ(e.param(), "timeout");
    EXPECT_NE(std::string(e.what()).find("got -5"), std::string::npos) << e.what();
  }
}

}  // namespace
