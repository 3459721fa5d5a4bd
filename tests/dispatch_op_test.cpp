// The dispatch op (docs/dispatch-op.md) through the native API, on every
// backend of the spawn harness (Backends/*: in-process threads in gmmav_tests,
// MPI processes under ctest mpi.backends.W4):
// - the worked example's permuteOut row for row;
// - the cross-backend series run as dispatch cases: bit-identical to an
//   in-process run and within docs/spec.md §4 of the FP64 reference (bit for bit for
//   exact data), permuteOut a bit-exact copy;
// - combine(dispatch(x)) with identity weights and the counts exchanged is x,
//   bit for bit, with skewed and empty counts;
// - a group whose ranks run different ops fails on every rank, nothing written.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "engine/tile_schedule.hpp"
#include "gmmav/gmmav.hpp"
#include "numeric/half.hpp"
#include "reference/synthetic_case.hpp"
#include "support/case_generator.hpp"
#include "support/forwarding_communicator.hpp"
#include "support/spawn.hpp"

namespace {

using namespace gmmav::reference;
using gmmav::DType;
using gmmav::Op;
using gmmav::testing::Backend;
using gmmav::testing::Rank;

std::size_t at(int i) { return static_cast<std::size_t>(i); }

// Runs this rank's part of case `c` on `comm` with a workspace of the size the API asks for.
void run_rank(Case& c, const Rank& me) {
  const auto plan = gmmav::Plan::create(c.desc(me.rank));
  std::vector<std::byte> workspace(gmmav::workspace_size(plan, me.comm));
  gmmav::run(plan, me.comm, c.tensors(me.rank), workspace);
}

class DispatchOp : public ::testing::TestWithParam<Backend> {};

// docs/dispatch-op.md §3 (e = 2, W = 2): H1 = N1 = 1, row i of rank r holds 10 r + i, weights 1.
TEST_P(DispatchOp, WorkedExample) {
  CaseSpec spec;
  spec.op = Op::dispatch;
  spec.permute_out = true;
  spec.world_size = 2;
  spec.local_experts = 2;
  spec.h1 = spec.n1 = 1;
  Case c = make_case(spec);
  const std::vector<std::vector<std::int64_t>> send = {{2, 1, 1, 2}, {3, 1, 0, 2}}, recv = {{2, 1, 3, 1}, {1, 2, 0, 2}};
  for (int r = 0; r < 2; ++r) {
    RankData& rd = c.ranks[at(r)];
    rd.send_counts = send[at(r)];
    rd.recv_counts = recv[at(r)];
    rd.gmm_x.clear();
    for (int i = 0; i < 6; ++i) rd.gmm_x.push_back(gmmav::numeric::double_to_half(10.0 * r + i));
    rd.gmm_weight.assign(2, gmmav::numeric::double_to_half(1.0));
    rd.y.assign(static_cast<std::size_t>(r == 0 ? 7 : 5), 0xA5A5);
    rd.permute_out = rd.y;
  }
  const auto labels = [](const std::vector<std::uint16_t>& rows) {
    std::vector<int> v;
    for (auto b : rows) v.push_back(static_cast<int>(gmmav::numeric::half_to_float(b)));
    return v;
  };
  // rank 0: [r0.x0, r0.x1, r1.x0, r1.x1, r1.x2 | r0.x2, r1.x3]; rank 1: [r0.x3 | r0.x4, r0.x5, r1.x4, r1.x5]
  const std::vector<std::vector<int>> expected = {{0, 1, 10, 11, 12, 2, 13}, {3, 4, 5, 14, 15}};
  GMMAV_SPAWN(GetParam(), 2, [&](const Rank& me) {
    run_rank(c, me);
    const RankData& rd = c.ranks[at(me.rank)];
    EXPECT_EQ(labels(rd.permute_out), expected[at(me.rank)]) << "rank " << me.rank;
    EXPECT_EQ(rd.y, rd.permute_out) << "rank " << me.rank << ": weights of 1.0 copy the rows";
  });
}

// The cross-backend series as dispatch cases: W = 2, 3, 4; every other case writes permuteOut.
TEST_P(DispatchOp, CrossBackendCasesMatchReference) {
  for (int W = 2; W <= 4; ++W)
    for (int i = 0; i < 8; ++i) {
      SCOPED_TRACE("case " + std::to_string(i) + " W=" + std::to_string(W));
      CaseSpec spec = gmmav::testing::cross_backend_spec(i, W);
      spec.op = Op::dispatch;
      spec.permute_out = i % 2 == 0;
      Case expected = make_case(spec);
      for (const auto& e : run_in_process(expected)) ASSERT_EQ(e, "") << "in-process run of the expected result";
      Case c = make_case(spec);
      GMMAV_SPAWN(GetParam(), W, [&](const Rank& me) {
        run_rank(c, me);
        const auto r = at(me.rank);
        EXPECT_EQ(c.ranks[r].y, expected.ranks[r].y) << "rank " << me.rank << ": gmmY differs from the in-process run";
        EXPECT_EQ(c.ranks[r].mm_y, expected.ranks[r].mm_y) << "rank " << me.rank << ": mmY differs from the in-process run";
        const CaseCheck check = check_case(c, spec.values == ValueKind::exact, me.rank);
        EXPECT_TRUE(check.ok) << "rank " << me.rank << ": " << check.first_failure;
      });
    }
}

// combine(dispatch(x)) = x: dispatch with identity weights (H1 = N1), then the combine op on
// its gmmY with the counts exchanged, returns every rank's gmmX bit for bit.
TEST_P(DispatchOp, CombineOfDispatchIsTheIdentity) {
  for (const DType t : {DType::f16, DType::bf16})
    for (int W = 2; W <= 4; ++W)
      for (const CountPattern counts : {CountPattern::skewed, CountPattern::random}) {
        SCOPED_TRACE(std::string(gmmav::to_string(t)) + " W=" + std::to_string(W) + " " + to_string(counts));
        CaseSpec spec;
        spec.op = Op::dispatch;
        spec.world_size = W;
        spec.local_experts = 3;
        spec.dtype = t;
        spec.counts = counts;
        spec.rows_per_rank = 150;
        spec.h1 = spec.n1 = 20;
        spec.seed = static_cast<std::uint64_t>(W * 10 + (t == DType::bf16));
        Case d = make_case(spec);
        const std::uint16_t one = gmmav::numeric::from_double(t, 1.0);
        for (RankData& rd : d.ranks) {
          std::fill(rd.gmm_weight.begin(), rd.gmm_weight.end(), std::uint16_t{0});
          for (int j = 0; j < spec.local_experts; ++j)
            for (std::int64_t i = 0; i < spec.h1; ++i)
              rd.gmm_weight[static_cast<std::size_t>((j * spec.h1 + i) * spec.n1 + i)] = one;
          for (std::uint16_t& v : rd.gmm_x)
            if (v == 0x8000) v = 0;  // x*1 + 0*y sums -0 to +0: keep the identity exact
        }
        CaseSpec back_spec = spec;
        back_spec.op = Op::combine;
        Case back = make_case(back_spec);  // same shapes; counts, inputs and weights set below
        GMMAV_SPAWN(GetParam(), W, [&](const Rank& me) {
          run_rank(d, me);
          const auto r = at(me.rank);
          RankData& b = back.ranks[r];
          b.send_counts = d.ranks[r].recv_counts;
          b.recv_counts = d.ranks[r].send_counts;
          b.gmm_x = d.ranks[r].y;
          b.gmm_weight = d.ranks[r].gmm_weight;
          b.y.assign(d.ranks[r].gmm_x.size(), 0xA5A5);
          run_rank(back, me);
          EXPECT_EQ(b.y, d.ranks[r].gmm_x) << "rank " << me.rank << ": combine(dispatch(x)) differs from x";
        });
      }
}

// Rank 0 runs the dispatch op, rank 1 the combine op on the same counts: both fail naming
// the disagreement, and neither writes an output.
TEST_P(DispatchOp, RanksRunningDifferentOpsFailOnEveryRank) {
  CaseSpec spec;
  spec.op = Op::dispatch;
  spec.permute_out = false;
  spec.world_size = 2;
  Case d = make_case(spec);
  CaseSpec other = spec;
  other.op = Op::combine;
  Case c = make_case(other);
  GMMAV_SPAWN(GetParam(), 2, [&](const Rank& me) {
    Case& mine = me.rank == 0 ? d : c;
    const auto r = at(me.rank);
    const std::vector<std::uint16_t> before = mine.ranks[r].y;
    try {
      run_rank(mine, me);
      ADD_FAILURE() << "rank " << me.rank << ": expected an error";
    } catch (const gmmav::Error& e) {
      EXPECT_EQ(e.code(), gmmav::Errc::count_mismatch) << e.what();
      EXPECT_NE(std::string(e.what()).find("operator"), std::string::npos) << e.what();
    }
    EXPECT_EQ(mine.ranks[r].y, before) << "rank " << me.rank << ": y written after a refused call";
  });
}

// Rank 1 fails while it sends its rows to rank 0 (at its second tile): rank 0, waiting for
// them, gets an error instead of hanging — in-process at once (the failure breaks the group),
// under MPI at its timeout (D-level: no MPI message can say "I failed" to a peer blocked in a
// receive; docs/reliability.md).
TEST_P(DispatchOp, RankFailingMidSendFailsItsPeers) {
  struct FailingExchange final : gmmav::testing::ForwardingExchange {
    using ForwardingExchange::ForwardingExchange;
    int tiles = 0;
    void* rows_for(int d, int j, std::int64_t f, std::int64_t r) override {
      if (++tiles == 2) throw gmmav::Error(gmmav::Errc::internal, "", "injected failure");
      return ForwardingExchange::rows_for(d, j, f, r);
    }
  };
  CaseSpec spec;
  spec.op = Op::dispatch;
  spec.world_size = 2;
  spec.local_experts = 2;
  spec.counts = CountPattern::balanced;
  spec.rows_per_rank = 4 * gmmav::engine::kTileRows;
  Case c = make_case(spec);
  gmmav::GroupOptions options;
  options.timeout = std::chrono::milliseconds(2000);
  const bool in_process = GetParam() == Backend::in_process;
  GMMAV_SPAWN(
      GetParam(), 2,
      [&](const Rank& me) {
        const gmmav::Comm comm = me.rank == 1 ? gmmav::testing::wrapped(me.comm,
                                                                        [](std::unique_ptr<gmmav::comm::Exchange> ex) {
                                                                          return std::make_unique<FailingExchange>(std::move(ex));
                                                                        })
                                              : me.comm;
        const auto plan = gmmav::Plan::create(c.desc(me.rank));
        std::vector<std::byte> workspace(gmmav::workspace_size(plan, comm));
        const auto start = std::chrono::steady_clock::now();
        try {
          gmmav::run(plan, comm, c.tensors(me.rank), workspace);
          ADD_FAILURE() << "rank " << me.rank << ": expected an error";
        } catch (const gmmav::Error& e) {
          if (me.rank == 1 || in_process)
            EXPECT_NE(std::string(e.what()).find(me.rank == 1 ? "injected" : "rank 1 failed"), std::string::npos) << e.what();
          else
            EXPECT_EQ(e.code(), gmmav::Errc::timeout) << e.what();
        }
        EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(in_process ? 1000 : 4000))
            << "rank " << me.rank;
      },
      options);
}

INSTANTIATE_TEST_SUITE_P(Backends, DispatchOp, gmmav::testing::backends(), gmmav::testing::backend_name);

// In-process, peers write straight into a rank's receive area (its workspace here) and outputs:
// a rank whose call fails must not return — its caller may then free that memory — while a peer
// still writes into it. Rank 1 fails at its first tile; rank 0's first write to rank 1 is held
// for 300 ms: rank 1's error must come after that write ended (ASan saw the workspace freed
// under a peer's memcpy before the in-process abort waited for the peers).
TEST(DispatchOpInProcess, FailingRankReturnsOnlyAfterPeersStopWritingIntoIt) {
  using Clock = std::chrono::steady_clock;
  struct FailFirst final : gmmav::testing::ForwardingExchange {
    using ForwardingExchange::ForwardingExchange;
    void* rows_for(int, int, std::int64_t, std::int64_t) override {
      throw gmmav::Error(gmmav::Errc::internal, "", "injected failure");
    }
  };
  std::atomic<std::int64_t> slow_write_end{0};
  struct SlowWriteToRank1 final : gmmav::testing::ForwardingExchange {
    SlowWriteToRank1(std::unique_ptr<gmmav::comm::Exchange> ex, std::atomic<std::int64_t>& end)
        : ForwardingExchange(std::move(ex)), end_(&end) {}
    void rows_done(int d, int j, std::int64_t f, std::int64_t r, void* at) override {
      if (d == 1 && !held_.exchange(true)) {
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        end_->store(Clock::now().time_since_epoch().count());
      }
      ForwardingExchange::rows_done(d, j, f, r, at);
    }
    std::atomic<std::int64_t>* end_;
    std::atomic<bool> held_{false};
  };
  CaseSpec spec;
  spec.op = Op::dispatch;
  spec.world_size = 2;
  spec.local_experts = 2;
  spec.counts = CountPattern::balanced;
  spec.rows_per_rank = 2 * gmmav::engine::kTileRows;
  Case c = make_case(spec);
  std::int64_t failed_at = 0;
  GMMAV_SPAWN(Backend::in_process, 2, [&](const Rank& me) {
    const gmmav::Comm comm = gmmav::testing::wrapped(
        me.comm, [&, r = me.rank](std::unique_ptr<gmmav::comm::Exchange> ex) -> std::unique_ptr<gmmav::comm::Exchange> {
          if (r == 1) return std::make_unique<FailFirst>(std::move(ex));
          return std::make_unique<SlowWriteToRank1>(std::move(ex), slow_write_end);
        });
    const auto plan = gmmav::Plan::create(c.desc(me.rank));
    std::vector<std::byte> workspace(gmmav::workspace_size(plan, comm));
    EXPECT_THROW(gmmav::run(plan, comm, c.tensors(me.rank), workspace), gmmav::Error) << "rank " << me.rank;
    if (me.rank == 1) failed_at = Clock::now().time_since_epoch().count();
  });
  ASSERT_NE(slow_write_end.load(), 0) << "rank 0 wrote no rows to rank 1";
  EXPECT_GE(failed_at, slow_write_end.load())
      << "rank 1 returned "
      << std::chrono::duration<double, std::milli>(Clock::duration(slow_write_end.load() - failed_at)).count()
      << " ms before rank 0's write into its memory ended";
}

}  // namespace
