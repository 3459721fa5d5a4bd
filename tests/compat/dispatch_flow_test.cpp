// The dispatch op through the C API on two in-process ranks (one thread,
// device and stream each): gmmY, mmY and permuteOut against the FP64
// reference on random cases (both dtypes, with and without the shared expert
// and permuteOut, both trans flags, V1 and V2), and the round trip
// combine(dispatch(x)) = x with identity weights, bit for bit.
#include <gtest/gtest.h>

#include <random>
#include <thread>

#include "aclnnop/aclnn_allto_allv_grouped_mat_mul_v2.h"
#include "aclnnop/aclnn_grouped_mat_mul_allto_allv_v2.h"
#include "compat_helpers.hpp"
#include "numeric/half.hpp"
#include "reference/synthetic_case.hpp"
#include "two_ranks.hpp"

namespace {

using namespace compat_test;
using gmmav::DType;
using gmmav::Op;
namespace ref = gmmav::reference;

aclDataType acl_dtype(DType t) { return t == DType::f16 ? ACL_FLOAT16 : ACL_BF16; }

// One rank's call of either operator on the case's data, through V1 or V2 (commMode "ccu").
struct RankRun {
  const ref::CaseSpec& spec;
  ref::RankData& d;
  bool v2;

  // Returns "" or what failed; on success the outputs are copied back into `d`.
  std::string run(const std::string& group, aclrtStream stream) {
    const aclDataType dt = acl_dtype(spec.dtype);
    const bool dispatch = spec.op == Op::dispatch;
    const std::int64_t rows_in = static_cast<std::int64_t>(d.gmm_x.size()) / spec.h1;
    const std::int64_t rows_out = static_cast<std::int64_t>(d.y.size()) / spec.n1;
    DeviceBuffer x(d.gmm_x), w(d.gmm_weight), y(d.y), p, mx, mw, my;
    Tensor tx({rows_in, spec.h1}, dt, x.get());
    Tensor tw(spec.trans_gmm_weight ? std::vector<std::int64_t>{spec.local_experts, spec.n1, spec.h1}
                                    : std::vector<std::int64_t>{spec.local_experts, spec.h1, spec.n1},
              dt, w.get());
    Tensor ty({rows_out, spec.n1}, dt, y.get());
    Tensor tp, tmx, tmw, tmy;
    const bool permute = dispatch && spec.permute_out;
    if (permute) {
      p = DeviceBuffer(d.permute_out);
      tp = Tensor({rows_out, spec.h1}, dt, p.get());
    }
    if (spec.shared_expert) {
      mx = DeviceBuffer(d.mm_x);
      mw = DeviceBuffer(d.mm_weight);
      my = DeviceBuffer(d.mm_y);
      tmx = Tensor({spec.bs, spec.h2}, dt, mx.get());
      tmw =
          Tensor(spec.trans_mm_weight ? std::vector<std::int64_t>{spec.n2, spec.h2} : std::vector<std::int64_t>{spec.h2, spec.n2},
                 dt, mw.get());
      tmy = Tensor({spec.bs, spec.n2}, dt, my.get());
    }
    IntArray send(d.send_counts), recv(d.recv_counts);
    std::uint64_t ws_size = 0;
    aclOpExecutor* executor = nullptr;
    const std::int64_t W = spec.world_size;
    int ret = 0;
    if (dispatch && v2)
      ret = aclnnAlltoAllvGroupedMatMulV2GetWorkspaceSize(
          tx.get(), tw.get(), nullptr, nullptr, tmx.get(), tmw.get(), group.c_str(), "ccu", W, send.get(), recv.get(),
          spec.trans_gmm_weight, spec.trans_mm_weight, permute, ty.get(), tmy.get(), tp.get(), &ws_size, &executor);
    else if (dispatch)
      ret = aclnnAlltoAllvGroupedMatMulGetWorkspaceSize(tx.get(), tw.get(), nullptr, nullptr, tmx.get(), tmw.get(), group.c_str(),
                                                        W, send.get(), recv.get(), spec.trans_gmm_weight, spec.trans_mm_weight,
                                                        permute, ty.get(), tmy.get(), tp.get(), &ws_size, &executor);
    else if (v2)
      ret = aclnnGroupedMatMulAlltoAllvV2GetWorkspaceSize(
          tx.get(), tw.get(), nullptr, nullptr, tmx.get(), tmw.get(), group.c_str(), "ai_cpu", W, send.get(), recv.get(),
          spec.trans_gmm_weight, spec.trans_mm_weight, ty.get(), tmy.get(), &ws_size, &executor);
    else
      ret = aclnnGroupedMatMulAlltoAllvGetWorkspaceSize(tx.get(), tw.get(), nullptr, nullptr, tmx.get(), tmw.get(), group.c_str(),
                                                        W, send.get(), recv.get(), spec.trans_gmm_weight, spec.trans_mm_weight,
                                                        ty.get(), tmy.get(), &ws_size, &executor);
    if (ret != ACLNN_SUCCESS) return "GetWorkspaceSize " + std::to_string(ret) + ": " + recent_error();
    DeviceBuffer ws;
    if (ws_size > 0) ws = DeviceBuffer((ws_size + 1) / 2);
    const auto phase2 = dispatch ? (v2 ? aclnnAlltoAllvGroupedMatMulV2 : aclnnAlltoAllvGroupedMatMul)
                                 : (v2 ? aclnnGroupedMatMulAlltoAllvV2 : aclnnGroupedMatMulAlltoAllv);
    ret = phase2(ws_size > 0 ? ws.get() : nullptr, ws_size, executor, stream);
    if (ret != ACLNN_SUCCESS) return "execute " + std::to_string(ret) + ": " + recent_error();
    ret = aclrtSynchronizeStreamWithTimeout(stream, 60000);
    if (ret != ACL_SUCCESS) return "synchronize " + std::to_string(ret) + ": " + recent_error();
    d.y = y.download();
    if (permute) d.permute_out = p.download();
    if (spec.shared_expert) d.mm_y = my.download();
    return "";
  }
};

// Runs both ranks of `c` (W = 2) through the C API, rank r on device r.
void run_two_ranks(TwoRanks& g, ref::Case& c, bool v2) {
  ASSERT_EQ(c.spec.world_size, 2);
  std::string errors[2];
  std::thread t[2];
  for (int r = 0; r < 2; ++r)
    t[r] = std::thread([&, r] {
      if (aclrtSetDevice(r) != ACL_SUCCESS) {
        errors[r] = "aclrtSetDevice";
        return;
      }
      RankRun run{c.spec, c.ranks[static_cast<std::size_t>(r)], v2};
      errors[r] = run.run(g.name, g.streams[r]);
    });
  t[0].join();
  t[1].join();
  EXPECT_EQ(errors[0], "") << "rank 0";
  EXPECT_EQ(errors[1], "") << "rank 1";
}

// A dispatch case whose ranks each send exactly rows_per_rank rows (so K = BSK / BS is one
// value on every rank, as the aclnn envelope wants), spread at random over the (rank,
// expert) cells, zeros included; the received counts follow.
ref::Case dispatch_case(ref::CaseSpec spec) {
  spec.op = Op::dispatch;
  spec.counts = ref::CountPattern::balanced;
  ref::Case c = ref::make_case(spec);
  std::mt19937_64 rng(spec.seed * 7919);
  const int W = spec.world_size, cells = W * spec.local_experts;
  std::uniform_int_distribution<int> cell(0, cells - 1);
  for (int s = 0; s < W; ++s) {
    auto& sc = c.ranks[static_cast<std::size_t>(s)].send_counts;
    std::fill(sc.begin(), sc.end(), 0);
    const int empty = cells - 1 - s;  // one cell per rank stays empty
    for (std::int64_t row = 0; row < spec.rows_per_rank; ++row) {
      int k = cell(rng);
      if (row % 3 == 0) k /= 2;  // the lower cells get more rows
      ++sc[static_cast<std::size_t>(k == empty ? 0 : k)];
    }
  }
  for (int d = 0; d < W; ++d) {
    auto& rc = c.ranks[static_cast<std::size_t>(d)].recv_counts;
    for (int s = 0; s < W; ++s)
      for (int j = 0; j < spec.local_experts; ++j)
        rc[static_cast<std::size_t>(s * spec.local_experts + j)] =
            c.ranks[static_cast<std::size_t>(s)].send_counts[static_cast<std::size_t>(d * spec.local_experts + j)];
  }
  for (auto& r : c.ranks) {
    std::int64_t a = 0;
    for (auto n : r.recv_counts) a += n;
    r.y.assign(static_cast<std::size_t>(a * spec.n1), 0xA5A5);
    if (spec.permute_out) r.permute_out.assign(static_cast<std::size_t>(a * spec.h1), 0xA5A5);
  }
  return c;
}

struct FlowParam {
  DType dtype;
  bool shared, permute_out, trans, v2;
};

class DispatchFlow : public ::testing::TestWithParam<FlowParam> {};

TEST_P(DispatchFlow, MatchesTheReferenceOnEveryRank) {
  const FlowParam& fp = GetParam();
  TwoRanks g;
  for (std::uint64_t seed : {1, 2, 3}) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    ref::CaseSpec spec;
    spec.world_size = 2;
    spec.local_experts = seed == 2 ? 3 : 2;
    spec.rows_per_rank = 48;
    spec.h1 = 40;
    spec.n1 = 24;
    spec.h2 = 24;
    spec.n2 = 16;
    spec.dtype = fp.dtype;
    spec.shared_expert = fp.shared;
    spec.bs = 16;  // K = 3
    spec.permute_out = fp.permute_out;
    spec.trans_gmm_weight = fp.trans;
    spec.trans_mm_weight = fp.trans && fp.shared;
    spec.values = seed == 3 ? ref::ValueKind::random : ref::ValueKind::exact;
    spec.seed = seed + (fp.dtype == DType::bf16 ? 100 : 0);
    ref::Case c = dispatch_case(spec);
    run_two_ranks(g, c, fp.v2);
    const ref::CaseCheck check = ref::check_case(c, spec.values == ref::ValueKind::exact);
    EXPECT_TRUE(check.ok) << check.first_failure;
    // The sentinel is gone from every output (all rows written).
    for (const auto& r : c.ranks) {
      EXPECT_EQ(std::count(r.y.begin(), r.y.end(), std::uint16_t{0xA5A5}), 0);
      if (fp.permute_out) {
        EXPECT_FALSE(r.permute_out.empty());
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Compat, DispatchFlow,
    ::testing::Values(FlowParam{DType::f16, false, false, false, false}, FlowParam{DType::f16, true, true, false, false},
                      FlowParam{DType::f16, true, false, true, true}, FlowParam{DType::f16, false, true, true, false},
                      FlowParam{DType::bf16, false, true, false, true}, FlowParam{DType::bf16, true, false, false, false},
                      FlowParam{DType::bf16, true, true, true, false}, FlowParam{DType::bf16, false, false, true, true}),
    [](const auto& info) {
      const FlowParam& p = info.param;
      return std::string(p.dtype == DType::f16 ? "fp16" : "bf16") + (p.shared ? "_shared" : "_routed") +
             (p.permute_out ? "_permuteOut" : "") + (p.trans ? "_trans" : "") + (p.v2 ? "_V2" : "");
    });

// combine(dispatch(x)) = x through the C API: dispatch with identity weights (H1 = N1), then
// the combine op on gmmY with the counts exchanged returns every rank's gmmX bit for bit.
TEST(DispatchFlow, CombineOfDispatchIsTheIdentity) {
  TwoRanks g;
  for (const DType t : {DType::f16, DType::bf16})
    for (const bool v2 : {false, true}) {
      SCOPED_TRACE(std::string(gmmav::to_string(t)) + (v2 ? " V2" : " V1"));
      ref::CaseSpec spec;
      spec.world_size = 2;
      spec.local_experts = 3;
      spec.rows_per_rank = 60;
      spec.h1 = spec.n1 = 24;
      spec.dtype = t;
      spec.permute_out = v2;
      spec.seed = v2 ? 5 : 6;
      ref::Case d = dispatch_case(spec);
      const std::uint16_t one = gmmav::numeric::from_double(t, 1.0);
      for (ref::RankData& rd : d.ranks) {
        std::fill(rd.gmm_weight.begin(), rd.gmm_weight.end(), std::uint16_t{0});
        for (int j = 0; j < spec.local_experts; ++j)
          for (std::int64_t i = 0; i < spec.h1; ++i)
            rd.gmm_weight[static_cast<std::size_t>((j * spec.h1 + i) * spec.n1 + i)] = one;
        for (std::uint16_t& v : rd.gmm_x)
          if (v == 0x8000) v = 0;  // x*1 + 0*y sums -0 to +0: keep the identity exact
      }
      run_two_ranks(g, d, v2);
      ref::CaseSpec back_spec = spec;
      back_spec.op = Op::combine;
      back_spec.permute_out = false;
      ref::Case back = ref::make_case(back_spec);  // counts, inputs and weights set below
      for (std::size_t r = 0; r < 2; ++r) {
        ref::RankData& b = back.ranks[r];
        b.send_counts = d.ranks[r].recv_counts;
        b.recv_counts = d.ranks[r].send_counts;
        b.gmm_x = d.ranks[r].y;
        b.gmm_weight = d.ranks[r].gmm_weight;
        b.y.assign(d.ranks[r].gmm_x.size(), 0xA5A5);
      }
      run_two_ranks(g, back, v2);
      for (std::size_t r = 0; r < 2; ++r) {
        EXPECT_EQ(back.ranks[r].y, d.ranks[r].gmm_x) << "rank " << r << ": combine(dispatch(x)) differs from x";
        if (v2) {
          EXPECT_EQ(d.ranks[r].permute_out, d.ranks[r].y) << "rank " << r << ": with identity weights gmmY = permuteOut";
        }
      }
    }
}

// A call refused on one rank writes nothing on either: rank 1's counts break the
// cross-rank contract, so both ranks' streams report the error and every output keeps its
// sentinel.
TEST(DispatchFlow, CountMismatchWritesNothingOnAnyRank) {
  TwoRanks g;
  ref::CaseSpec spec;
  spec.world_size = 2;
  spec.shared_expert = true;
  spec.bs = 16;
  spec.rows_per_rank = 48;
  spec.permute_out = true;
  ref::Case c = dispatch_case(spec);
  // Move a row between two of rank 1's receive cells: its totals hold, the contract does not.
  auto& rc = c.ranks[1].recv_counts;
  const auto from =
      static_cast<std::size_t>(std::find_if(rc.begin(), rc.end(), [](std::int64_t n) { return n > 0; }) - rc.begin());
  --rc[from];
  ++rc[(from + 1) % rc.size()];
  int sync[2] = {-1, -1};
  std::thread t[2];
  for (int r = 0; r < 2; ++r)
    t[r] = std::thread([&, r] {
      ASSERT_EQ(aclrtSetDevice(r), ACL_SUCCESS);
      ref::RankData& d = c.ranks[static_cast<std::size_t>(r)];
      const aclDataType dt = acl_dtype(spec.dtype);
      const std::int64_t bsk = static_cast<std::int64_t>(d.gmm_x.size()) / spec.h1,
                         a = static_cast<std::int64_t>(d.y.size()) / spec.n1;
      DeviceBuffer x(d.gmm_x), w(d.gmm_weight), y(d.y), p(d.permute_out), mx(d.mm_x), mw(d.mm_weight), my(d.mm_y);
      Tensor tx({bsk, spec.h1}, dt, x.get()), tw({spec.local_experts, spec.h1, spec.n1}, dt, w.get()),
          ty({a, spec.n1}, dt, y.get());
      Tensor tp({a, spec.h1}, dt, p.get()), tmx({spec.bs, spec.h2}, dt, mx.get()), tmw({spec.h2, spec.n2}, dt, mw.get());
      Tensor tmy({spec.bs, spec.n2}, dt, my.get());
      IntArray send(d.send_counts), recv(d.recv_counts);
      std::uint64_t ws = 0;
      aclOpExecutor* e = nullptr;
      ASSERT_EQ(aclnnAlltoAllvGroupedMatMulGetWorkspaceSize(tx.get(), tw.get(), nullptr, nullptr, tmx.get(), tmw.get(),
                                                            g.name.c_str(), 2, send.get(), recv.get(), false, false, true,
                                                            ty.get(), tmy.get(), tp.get(), &ws, &e),
                ACLNN_SUCCESS)
          << recent_error();
      ASSERT_EQ(ws, 0u);
      ASSERT_EQ(aclnnAlltoAllvGroupedMatMul(nullptr, 0, e, g.streams[r]), ACLNN_SUCCESS) << recent_error();
      sync[r] = aclrtSynchronizeStreamWithTimeout(g.streams[r], 60000);
      const std::string msg = recent_error();
      EXPECT_NE(msg.find("aclnnAlltoAllvGroupedMatMul"), std::string::npos) << msg;
      EXPECT_NE(msg.find("cross-rank count mismatch"), std::string::npos) << msg;
      EXPECT_TRUE(y.all_equal(0xA5A5)) << "rank " << r << " gmmY";
      EXPECT_TRUE(p.all_equal(0xA5A5)) << "rank " << r << " permuteOut";
      EXPECT_TRUE(my.all_equal(0xA5A5)) << "rank " << r << " mmY";
    });
  t[0].join();
  t[1].join();
  EXPECT_EQ(sync[0], ACL_ERROR_RT_PARAM_INVALID);
  EXPECT_EQ(sync[1], ACL_ERROR_RT_PARAM_INVALID);
}

}  // namespace
