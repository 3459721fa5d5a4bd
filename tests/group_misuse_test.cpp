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

// Rank 1 arrives 100 ms after rank 0, which waits with the given group timeout.
std::vector<std::string> run_late_peer(const gmmav::GroupOptions& opt) {
  Case c = make_case(small_case(2));
  auto comms = gmmav::create_in_process_group(2, opt);
  auto err = run_threads({[&] { gmmav::run(gmmav::Plan::create(c.desc(0)), comms[0], c.tensors(0)); },
                          [&] {
                            std::this_thread::sleep_for(100ms);
                            gmmav::run(gmmav::Plan::create(c.desc(1)), comms[1], c.tensors(1));
                          }});
  if (err[0].empty() && err[1].empty()) EXPECT_TRUE(check_case(c, true).ok);
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
