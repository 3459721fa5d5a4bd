// Settings from the environment follow one rule (src/common/config.hpp, the one
// place they are read): unset or empty → the default; a valid value → used;
// anything else → gmmav::Error naming the variable, what was expected and the text given.
#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <string>
#include <utility>

#include "common/config.hpp"
#include "common/cpu_isa.hpp"
#include "engine/compute_pool.hpp"
#include "gemm/chain_kernel.hpp"
#include "gmmav/gmmav.hpp"
#include "numeric/convert.hpp"
#include "reference/synthetic_case.hpp"
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

// GMMAV_LOG=plan: one line per call saying what the engine chose (tile groups and GEMM route per
// weight, packing, workspace), on stderr.
TEST(Environment, LogPlanPrintsTheChoicesOfEachCall) {
  ScopedEnv v("GMMAV_LOG", "plan");
  gmmav::reference::CaseSpec s;
  s.world_size = 2;
  s.local_experts = 2;
  s.rows_per_rank = 40;
  s.shared_expert = true;
  gmmav::reference::Case c = gmmav::reference::make_case(s);
  ::testing::internal::CaptureStderr();
  const auto errors = gmmav::reference::run_in_process(c);
  const std::string err = ::testing::internal::GetCapturedStderr();
  for (const auto& e : errors) ASSERT_EQ(e, "");
  for (const char* want :
       {"[gmmav] plan: rank 0/2 float16 e=2", "[gmmav] plan: rank 1/2 float16 e=2", "| expert 0: ", "| expert 1: ", " GEMMs (",
        " chain", "| shared expert: ", "| weights: ", "| workspace 0 B (backend minimum 0 B)"})
    EXPECT_NE(err.find(want), std::string::npos) << "missing '" << want << "' in:\n" << err;
  // Which kernel each route takes, and at which ISA level (the host's, capped by GMMAV_MAX_CPU_ISA).
  for (const std::string want : {std::string("chain ") + gmmav::gemm::chain_kernel_path(),
                                 std::string("| isa ") + gmmav::to_string(gmmav::cpu_isa()) + " (host "})
    EXPECT_NE(err.find(want), std::string::npos) << "missing '" << want << "' in:\n" << err;
  EXPECT_TRUE(gmmav::reference::check_case(c, true).ok);
}

// GMMAV_MAX_CPU_ISA names one of four levels, lowest first as in CpuIsa; anything else is refused.
// (It is read once per process, at the first use: the levels themselves are run by
// scripts/isa-levels.sh, one process each.)
TEST(Environment, MaxCpuIsaTakesTheFourLevelNames) {
  for (const auto unset : {std::optional<std::string>(), std::optional<std::string>("")}) {
    ScopedEnv v("GMMAV_MAX_CPU_ISA", unset);
    EXPECT_FALSE(gmmav::config::max_cpu_isa());
  }
  const std::pair<const char*, gmmav::CpuIsa> names[] = {{"portable", gmmav::CpuIsa::portable},
                                                         {"avx2", gmmav::CpuIsa::avx2},
                                                         {"avx512", gmmav::CpuIsa::avx512},
                                                         {"avx512_bf16", gmmav::CpuIsa::avx512_bf16}};
  for (const auto& [name, isa] : names) {
    ScopedEnv v("GMMAV_MAX_CPU_ISA", name);
    EXPECT_EQ(gmmav::config::max_cpu_isa(), static_cast<int>(isa)) << name;
    EXPECT_STREQ(gmmav::to_string(isa), name);
  }
  for (const char* bad : {"AVX2", "avx512f", "avx512_core", "sse41", " avx2", "avx2 ", "avx2,avx512", "1"}) {
    ScopedEnv v("GMMAV_MAX_CPU_ISA", bad);
    expect_error([] { (void)gmmav::config::max_cpu_isa(); }, Errc::invalid_argument, "GMMAV_MAX_CPU_ISA");
  }
}

// The process's level is the host's, lowered (never raised) by the cap it was started with.
TEST(Environment, CpuIsaIsTheHostsCappedByTheVariable) {
  const gmmav::CpuIsa host = gmmav::host_cpu_isa(), level = gmmav::cpu_isa();
  if (const auto cap = gmmav::cpu_isa_cap())
    EXPECT_EQ(level, std::min(host, *cap));
  else
    EXPECT_EQ(level, host);
  EXPECT_EQ(gmmav::numeric::has_f16c(), level >= gmmav::CpuIsa::avx2) << "the conversions follow the level";
}

// A bad GMMAV_LOG is refused by the call (nothing written), like every other variable.
TEST(Environment, LogRefusedWhenNotAKnownWord) {
  for (const char* bad : {"plans", "2", "1;plan", "yes"}) {
    ScopedEnv v("GMMAV_LOG", bad);
    expect_error([] { (void)gmmav::config::log(); }, Errc::invalid_argument, "GMMAV_LOG");
    gmmav::reference::CaseSpec s;
    s.world_size = 1;
    gmmav::reference::Case c = gmmav::reference::make_case(s);
    const auto errors = gmmav::reference::run_in_process(c);
    EXPECT_NE(errors[0].find("GMMAV_LOG"), std::string::npos) << bad << ": " << errors[0];
    for (auto y : c.ranks[0].y) ASSERT_EQ(y, 0xA5A5) << "nothing may be written when GMMAV_LOG is refused";
  }
  for (const char* good : {"", "0", "1", "plan", "1,plan", "plan,1"}) {
    ScopedEnv v("GMMAV_LOG", good);
    EXPECT_NO_THROW((void)gmmav::config::log()) << good;
  }
  ScopedEnv v("GMMAV_LOG", "1,plan");
  EXPECT_TRUE(gmmav::config::log().errors);
  EXPECT_TRUE(gmmav::config::log().plan);
}

}  // namespace
