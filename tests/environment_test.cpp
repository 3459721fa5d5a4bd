// Numeric settings from the environment follow one rule (src/common/env_int.hpp):
// unset or empty → the default; a whole integer in range → used; anything
// else → gmmav::Error naming the variable, the range and the text given.
#include <gtest/gtest.h>

#include <string>

#include "common/env_int.hpp"
#include "engine/compute_pool.hpp"
#include "gmmav/gmmav.hpp"
#include "support/expect_error.hpp"
#include "support/scoped_env.hpp"

namespace {

using gmmav::Errc;
using gmmav::testing::expect_error;
using gmmav::testing::ScopedEnv;

constexpr const char* kBadIntegers[] = {"abc", "0", "-1", "12x", " 5", "+5", "1e3", "99999999999999999999"};

TEST(Environment, IntegerRule) {
  {
    ScopedEnv v("GMMAV_TEST_INT", std::nullopt);
    EXPECT_FALSE(gmmav::env_int("GMMAV_TEST_INT", 1, 10, "things"));
  }
  {
    ScopedEnv v("GMMAV_TEST_INT", "");
    EXPECT_FALSE(gmmav::env_int("GMMAV_TEST_INT", 1, 10, "things"));
  }
  {
    ScopedEnv v("GMMAV_TEST_INT", "7");
    EXPECT_EQ(gmmav::env_int("GMMAV_TEST_INT", 1, 10, "things"), 7);
  }
  for (const char* bad : {"abc", "0", "-1", "11", "7 ", "0x7"}) {
    ScopedEnv v("GMMAV_TEST_INT", bad);
    expect_error([] { (void)gmmav::env_int("GMMAV_TEST_INT", 1, 10, "things"); }, Errc::invalid_argument, "GMMAV_TEST_INT");
    try {
      (void)gmmav::env_int("GMMAV_TEST_INT", 1, 10, "things");
    } catch (const gmmav::Error& e) {
      EXPECT_NE(std::string(e.what()).find("[1, 10]"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(std::string("got '") + bad + "'"), std::string::npos) << e.what();
    }
  }
}

// GMMAV_NUM_THREADS=abc/0/-1 used to be ignored silently (while a bad
// GMMAV_TIMEOUT_MS was refused); it is refused the same way now.
TEST(Environment, NumThreadsRefusedWhenNotAThreadCount) {
  for (const char* bad : {"abc", "0", "-1", "12x", "1025", "99999999999999999999"}) {
    ScopedEnv v("GMMAV_NUM_THREADS", bad);
    expect_error([] { (void)gmmav::engine::default_threads(); }, Errc::invalid_argument, "GMMAV_NUM_THREADS");
  }
  ScopedEnv v("GMMAV_NUM_THREADS", "3");
  EXPECT_EQ(gmmav::engine::default_threads(), 3);
}

TEST(Environment, LauncherRankCountRefusedWhenNotACount) {
  ScopedEnv n("GMMAV_NUM_THREADS", std::nullopt);
  ScopedEnv v("OMPI_COMM_WORLD_LOCAL_SIZE", "zero");
  expect_error([] { (void)gmmav::engine::default_threads(); }, Errc::invalid_argument, "OMPI_COMM_WORLD_LOCAL_SIZE");
}

TEST(Environment, TimeoutRefusedWhenNotMilliseconds) {
  for (const char* bad : kBadIntegers) {
    ScopedEnv v("GMMAV_TIMEOUT_MS", bad);
    expect_error([] { (void)gmmav::default_timeout(); }, Errc::invalid_argument, "GMMAV_TIMEOUT_MS");
  }
  {
    ScopedEnv v("GMMAV_TIMEOUT_MS", "5000000000000000000");  // above the documented 2^62 ms
    expect_error([] { (void)gmmav::default_timeout(); }, Errc::invalid_argument, "GMMAV_TIMEOUT_MS");
  }
  ScopedEnv v("GMMAV_TIMEOUT_MS", "1500");
  EXPECT_EQ(gmmav::default_timeout().count(), 1500);
}

}  // namespace
