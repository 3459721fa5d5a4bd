// The cross-backend series (tests/support/case_generator.hpp) through the spawn
// harness: every rank computes its rank of each case on the backend under test;
// its y and mmY must be bit-identical to an in-process run of the same case and
// match the FP64 reference (bit for bit for exact data). The same body runs on
// in-process threads (gmmav_tests) and on MPI processes (ctest mpi.backends.W4).
#include <gtest/gtest.h>

#include <string>
#include <tuple>
#include <vector>

#include "gmmav/gmmav.hpp"
#include "reference/synthetic_case.hpp"
#include "support/case_generator.hpp"
#include "support/spawn.hpp"

namespace {

using namespace gmmav::reference;
using gmmav::testing::Backend;
using gmmav::testing::Rank;

// (backend, W, the first case index); each test runs kCasesPerTest cases.
constexpr int kCasesPerTest = 6;
class CrossBackendCases : public ::testing::TestWithParam<std::tuple<Backend, int, int>> {};

TEST_P(CrossBackendCases, BitIdenticalToInProcessAndMatchReference) {
  const auto [backend, W, first] = GetParam();
  for (int i = first; i < first + kCasesPerTest; ++i) {
    SCOPED_TRACE("case " + std::to_string(i) + " W=" + std::to_string(W));
    const CaseSpec spec = gmmav::testing::cross_backend_spec(i, W);
    Case expected = make_case(spec);
    const auto errors = run_in_process(expected);
    for (const auto& e : errors) ASSERT_EQ(e, "") << "in-process run of the expected result";
    Case c = make_case(spec);
    GMMAV_SPAWN(backend, W, [&](const Rank& me) {
      const auto plan = gmmav::Plan::create(c.desc(me.rank));
      std::vector<std::byte> workspace(gmmav::workspace_size(plan, me.comm));
      gmmav::run(plan, me.comm, c.tensors(me.rank), workspace);
      const auto r = static_cast<std::size_t>(me.rank);
      EXPECT_EQ(c.ranks[r].y, expected.ranks[r].y)
          << "case " << i << " rank " << me.rank << ": y differs from the in-process run";
      EXPECT_EQ(c.ranks[r].mm_y, expected.ranks[r].mm_y)
          << "case " << i << " rank " << me.rank << ": mmY differs from the in-process run";
      const CaseCheck check = check_case(c, spec.values == ValueKind::exact, me.rank);
      EXPECT_TRUE(check.ok) << "case " << i << " rank " << me.rank << ": " << check.first_failure;
    });
  }
}

std::vector<std::tuple<Backend, int, int>> params() {
  std::vector<std::tuple<Backend, int, int>> out;
  for (int W : {2, 3, 4})
    for (int first : {0, kCasesPerTest}) out.emplace_back(gmmav::testing::selected_backend(), W, first);
  return out;
}

INSTANTIATE_TEST_SUITE_P(Backends, CrossBackendCases, ::testing::ValuesIn(params()),
                         [](const ::testing::TestParamInfo<std::tuple<Backend, int, int>>& info) {
                           return std::string(gmmav::testing::to_string(std::get<0>(info.param))) + "_W" +
                                  std::to_string(std::get<1>(info.param)) + "_cases" + std::to_string(std::get<2>(info.param));
                         });

}  // namespace
