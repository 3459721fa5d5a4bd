// Determinism: the same case run 5 times, and with 1 vs 2 compute threads,
// gives bit-identical y and mmY (random data, where accumulation order matters).
#include <gtest/gtest.h>

#include "engine/compute_pool.hpp"
#include "gmmav/gmmav.hpp"
#include "reference/synthetic_case.hpp"

namespace {

using namespace gmmav::reference;

struct Outputs {
  std::vector<std::vector<std::uint16_t>> y, mm_y;
  bool operator==(const Outputs&) const = default;
};

Outputs run_once(const CaseSpec& spec) {
  Case c = make_case(spec);
  const auto errors = run_in_process(c);
  for (const auto& e : errors) EXPECT_EQ(e, "");
  Outputs o;
  for (auto& r : c.ranks) {
    o.y.push_back(r.y);
    o.mm_y.push_back(r.mm_y);
  }
  return o;
}

CaseSpec big_case(gmmav::DType t) {
  CaseSpec s;
  s.world_size = 4;
  s.local_experts = 3;
  s.rows_per_rank = 900;  // several tiles per block
  s.h1 = 300;             // long dot products: order-sensitive
  s.n1 = 70;
  s.dtype = t;
  s.shared_expert = true;
  s.bs = 333;
  s.h2 = 257;
  s.n2 = 45;
  s.counts = CountPattern::random;
  s.values = ValueKind::random;
  s.seed = 77;
  return s;
}

class Determinism : public ::testing::TestWithParam<gmmav::DType> {};

TEST_P(Determinism, FiveRunsBitIdentical) {
  const CaseSpec spec = big_case(GetParam());
  const Outputs first = run_once(spec);
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(run_once(spec) == first) << "run " << i + 2 << " differs";
}

TEST_P(Determinism, OneVersusTwoComputeThreads) {
  const CaseSpec spec = big_case(GetParam());
  const int before = gmmav::compute_threads();
  gmmav::set_compute_threads(1);
  ASSERT_EQ(gmmav::compute_threads(), 1);
  const Outputs one = run_once(spec);
  gmmav::set_compute_threads(2);
  ASSERT_EQ(gmmav::compute_threads(), 2);
  const Outputs two = run_once(spec);
  gmmav::set_compute_threads(3);
  const Outputs three = run_once(spec);
  gmmav::set_compute_threads(before);
  EXPECT_TRUE(one == two);
  EXPECT_TRUE(one == three);
  // And the result is right, not merely repeatable.
  Case c = make_case(spec);
  for (std::size_t r = 0; r < c.ranks.size(); ++r) {
    c.ranks[r].y = one.y[r];
    c.ranks[r].mm_y = one.mm_y[r];
  }
  const CaseCheck check = check_case(c, false);
  EXPECT_TRUE(check.ok) << check.first_failure;
}

// The MPI backend makes rank threads compute beside the pool's workers
// ("caller computes"); in-process ranks then compute too. Same bits.
TEST_P(Determinism, CallerComputesOrWaits) {
  const CaseSpec spec = big_case(GetParam());
  auto& pool = gmmav::engine::ComputePool::instance();
  const bool before = pool.caller_computes();
  pool.set_caller_computes(false);
  const Outputs waits = run_once(spec);
  pool.set_caller_computes(true);
  const Outputs computes = run_once(spec);
  pool.set_caller_computes(before);
  EXPECT_TRUE(waits == computes);
}

INSTANTIATE_TEST_SUITE_P(Dtypes, Determinism, ::testing::Values(gmmav::DType::f16, gmmav::DType::bf16),
                         [](const auto& i) { return std::string(gmmav::to_string(i.param)); });

}  // namespace
