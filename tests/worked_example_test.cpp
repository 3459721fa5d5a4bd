// docs/spec.md §3's worked example (e = 2, W = 2), exactly as written there.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "gmmav/gmmav.hpp"
#include "numeric/half.hpp"
#include "support/spawn.hpp"

namespace {

using gmmav::DType;
using gmmav::numeric::double_to_half;
using gmmav::numeric::half_to_float;

const std::vector<std::int64_t> kSend[2] = {{2, 1, 3, 1}, {1, 2, 0, 2}};
const std::vector<std::int64_t> kRecv[2] = {{2, 1, 1, 2}, {3, 1, 0, 2}};

gmmav::ProblemDesc desc(int r) {
  gmmav::ProblemDesc d;
  d.world_size = 2;
  d.rank = r;
  d.local_experts = 2;
  d.send_counts = kSend[r];
  d.recv_counts = kRecv[r];
  d.h1 = 2;
  d.n1 = 2;
  d.dtype = DType::f16;
  return d;
}

// sendBuf row order implied by the plan: concat_d concat_j block(j, d).
std::vector<std::int64_t> send_buf_order(const gmmav::Plan& p) {
  std::vector<std::int64_t> rows;
  for (int d = 0; d < p.world_size(); ++d)
    for (int j = 0; j < p.local_experts(); ++j)
      for (std::int64_t i = 0; i < p.send_block_rows(j, d); ++i) rows.push_back(p.send_block_offset(j, d) + i);
  return rows;
}

TEST(WorkedExample, LayoutAsWrittenInSpec) {
  const auto p0 = gmmav::Plan::create(desc(0));
  const auto p1 = gmmav::Plan::create(desc(1));
  EXPECT_EQ(p0.rows_in(), 7);
  EXPECT_EQ(p1.rows_in(), 5);
  EXPECT_EQ(p0.rows_out(), 6);
  EXPECT_EQ(p1.rows_out(), 6);
  EXPECT_EQ(p0.group_rows(0), 5);
  EXPECT_EQ(p0.group_rows(1), 2);
  EXPECT_EQ(p1.group_rows(0), 1);
  EXPECT_EQ(p1.group_rows(1), 4);
  EXPECT_EQ(send_buf_order(p0), (std::vector<std::int64_t>{0, 1, 5, 2, 3, 4, 6}));
  EXPECT_EQ(send_buf_order(p1), (std::vector<std::int64_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(p0.rows_to(0), 3);
  EXPECT_EQ(p0.rows_to(1), 4);
  EXPECT_EQ(p1.rows_to(0), 3);
  EXPECT_EQ(p1.rows_to(1), 2);
}

// With identity weights gmmY = gmmX; row i of rank r holds (r + 1, i), so y shows which row landed where.
// Runs through the spawn harness: on in-process threads, and on MPI processes (mpi.backends.W4).
class WorkedExampleOn : public ::testing::TestWithParam<gmmav::testing::Backend> {};

TEST_P(WorkedExampleOn, YAsWrittenInSpec) {
  std::vector<std::uint16_t> x[2], w[2], y[2];
  for (int r = 0; r < 2; ++r) {
    const std::int64_t a = r == 0 ? 7 : 5;
    for (std::int64_t i = 0; i < a; ++i) {
      x[r].push_back(double_to_half(r + 1));
      x[r].push_back(double_to_half(static_cast<double>(i)));
    }
    for (int j = 0; j < 2; ++j)  // identity 2x2 per expert
      for (double v : {1.0, 0.0, 0.0, 1.0}) w[r].push_back(double_to_half(v));
    y[r].assign(12, 0xFFFF);
  }
  // y on rank 0 = [r0.gmmY0, r0.gmmY1, r0.gmmY5, r1.gmmY0, r1.gmmY1, r1.gmmY2]
  // y on rank 1 = [r0.gmmY2, r0.gmmY3, r0.gmmY4, r0.gmmY6, r1.gmmY3, r1.gmmY4]
  const std::pair<int, int> expect[2][6] = {{{0, 0}, {0, 1}, {0, 5}, {1, 0}, {1, 1}, {1, 2}},
                                            {{0, 2}, {0, 3}, {0, 4}, {0, 6}, {1, 3}, {1, 4}}};
  GMMAV_SPAWN(GetParam(), 2, [&](const gmmav::testing::Rank& me) {
    const int r = me.rank;
    gmmav::OpTensors o;
    o.gmm_x = gmmav::ConstTensorView::matrix(x[r].data(), DType::f16, static_cast<std::int64_t>(x[r].size() / 2), 2);
    o.gmm_weight = gmmav::ConstTensorView::cube(w[r].data(), DType::f16, 2, 2, 2);
    o.y = gmmav::TensorView::matrix(y[r].data(), DType::f16, 6, 2);
    const auto plan = gmmav::Plan::create(desc(r));
    std::vector<std::byte> workspace(gmmav::workspace_size(plan, me.comm));
    gmmav::run(plan, me.comm, o, workspace);
    for (int row = 0; row < 6; ++row) {
      SCOPED_TRACE("rank " + std::to_string(r) + " y row " + std::to_string(row));
      EXPECT_EQ(half_to_float(y[r][static_cast<std::size_t>(row * 2)]), expect[r][row].first + 1);
      EXPECT_EQ(half_to_float(y[r][static_cast<std::size_t>(row * 2 + 1)]), expect[r][row].second);
    }
  });
}

INSTANTIATE_TEST_SUITE_P(Backends, WorkedExampleOn, gmmav::testing::backends(), gmmav::testing::backend_name);

}  // namespace
