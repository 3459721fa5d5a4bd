// The dispatch op's reference (docs/dispatch-op.md) against the layout the
// vendor documents and against the combine op's reference: dispatch with
// identity weights, then combine with the counts swapped, returns every
// rank's gmmX bit for bit (the two layouts are exact inverses).
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "numeric/half.hpp"
#include "reference/dispatch_reference.hpp"
#include "reference/reference.hpp"

namespace {

using gmmav::DType;
using gmmav::reference::RankInputs;
using gmmav::reference::Shapes;

// The worked example of docs/dispatch-op.md (e = 2, W = 2): H1 = 1 and row i of rank r holds
// the value 10 r + i, so permuteOut reads as the list of (rank, row) labels.
TEST(DispatchReference, WorkedExampleLayout) {
  Shapes sh;
  sh.world_size = 2;
  sh.local_experts = 2;
  sh.h1 = sh.n1 = 1;
  const std::vector<std::vector<std::int64_t>> send = {{2, 1, 1, 2}, {3, 1, 0, 2}}, recv = {{2, 1, 3, 1}, {1, 2, 0, 2}};
  std::vector<std::vector<std::uint16_t>> x(2), w(2, std::vector<std::uint16_t>(2, 0x3C00));  // weights 1.0
  std::vector<RankInputs> in(2);
  for (int r = 0; r < 2; ++r) {
    for (int i = 0; i < 6; ++i) x[static_cast<std::size_t>(r)].push_back(gmmav::numeric::double_to_half(10.0 * r + i));
    in[static_cast<std::size_t>(r)] = {send[static_cast<std::size_t>(r)], recv[static_cast<std::size_t>(r)],
                                       x[static_cast<std::size_t>(r)].data(), w[static_cast<std::size_t>(r)].data()};
  }
  const auto out = gmmav::reference::compute_dispatch(sh, in);
  const auto labels = [](const std::vector<std::uint16_t>& rows) {
    std::vector<int> v;
    for (auto b : rows) v.push_back(static_cast<int>(gmmav::numeric::half_to_float(b)));
    return v;
  };
  // rank 0: [r0.x0, r0.x1, r1.x0, r1.x1, r1.x2 | r0.x2, r1.x3]; rank 1: [r0.x3 | r0.x4, r0.x5, r1.x4, r1.x5]
  EXPECT_EQ(labels(out[0].permute_out), (std::vector<int>{0, 1, 10, 11, 12, 2, 13}));
  EXPECT_EQ(labels(out[1].permute_out), (std::vector<int>{3, 4, 5, 14, 15}));
  EXPECT_EQ(out[0].gmm_y.bits, out[0].permute_out) << "weights of 1.0 copy the rows";
  EXPECT_TRUE(out[0].mm_y.bits.empty()) << "no shared expert";
}

// Random counts (zeros and one hot expert included) on W = 2, 3, 4 ranks: combine(dispatch(x))
// with identity weights and swapped counts is x, on every rank, bit for bit; the shared expert
// is the same product in both references.
TEST(DispatchReference, CombineOfDispatchIsTheIdentity) {
  std::mt19937_64 rng(17);
  for (const DType t : {DType::f16, DType::bf16})
    for (int W = 2; W <= 4; ++W)
      for (int e = 1; e <= 3; ++e) {
        SCOPED_TRACE(testing::Message() << (t == DType::f16 ? "fp16" : "bf16") << " W " << W << " e " << e);
        Shapes sh;
        sh.dtype = t;
        sh.world_size = W;
        sh.local_experts = e;
        sh.h1 = sh.n1 = 6;
        sh.h2 = 5;
        sh.n2 = 3;
        // counts[s][g]: rows rank s sends to global expert g; one hot expert, some empty blocks.
        std::vector<std::vector<std::int64_t>> send(static_cast<std::size_t>(W)), recv(static_cast<std::size_t>(W));
        for (int s = 0; s < W; ++s)
          for (int g = 0; g < W * e; ++g)
            send[static_cast<std::size_t>(s)].push_back(g == 0 ? 9 : static_cast<std::int64_t>(rng() % 4));
        for (int r = 0; r < W; ++r)
          for (int s = 0; s < W; ++s)
            for (int j = 0; j < e; ++j)
              recv[static_cast<std::size_t>(r)].push_back(send[static_cast<std::size_t>(s)][static_cast<std::size_t>(r * e + j)]);
        const auto one = t == DType::f16 ? gmmav::numeric::double_to_half(1.0) : gmmav::numeric::double_to_bf16(1.0);
        std::vector<std::uint16_t> identity(static_cast<std::size_t>(e * sh.h1 * sh.n1), 0);
        for (int j = 0; j < e; ++j)
          for (std::int64_t i = 0; i < sh.h1; ++i) identity[static_cast<std::size_t>((j * sh.h1 + i) * sh.n1 + i)] = one;
        std::vector<std::vector<std::uint16_t>> x(static_cast<std::size_t>(W)), mx(static_cast<std::size_t>(W)),
            mw(static_cast<std::size_t>(W));
        std::vector<RankInputs> in(static_cast<std::size_t>(W));
        const auto value = [&] {  // finite, never -0 (x*1 + 0*y sums -0 to +0)
          const double v = std::ldexp(static_cast<double>(rng() % 2001) - 1000.0, -static_cast<int>(rng() % 12));
          return t == DType::f16 ? gmmav::numeric::double_to_half(v) : gmmav::numeric::double_to_bf16(v);
        };
        for (int r = 0; r < W; ++r) {
          std::int64_t bsk = 0;
          for (auto c : send[static_cast<std::size_t>(r)]) bsk += c;
          for (std::int64_t i = 0; i < bsk * sh.h1; ++i) x[static_cast<std::size_t>(r)].push_back(value());
          for (std::int64_t i = 0; i < 2 * sh.h2; ++i) mx[static_cast<std::size_t>(r)].push_back(value());
          for (std::int64_t i = 0; i < sh.h2 * sh.n2; ++i) mw[static_cast<std::size_t>(r)].push_back(value());
          in[static_cast<std::size_t>(r)] = {send[static_cast<std::size_t>(r)],
                                             recv[static_cast<std::size_t>(r)],
                                             x[static_cast<std::size_t>(r)].data(),
                                             identity.data(),
                                             mx[static_cast<std::size_t>(r)].data(),
                                             mw[static_cast<std::size_t>(r)].data(),
                                             2};
        }
        const auto dispatched = gmmav::reference::compute_dispatch(sh, in);
        std::vector<RankInputs> back(static_cast<std::size_t>(W));
        for (int r = 0; r < W; ++r) {
          const auto& d = dispatched[static_cast<std::size_t>(r)];
          EXPECT_EQ(d.gmm_y.bits, d.permute_out) << "rank " << r << ": identity weights";
          back[static_cast<std::size_t>(r)] = {recv[static_cast<std::size_t>(r)],
                                               send[static_cast<std::size_t>(r)],
                                               d.gmm_y.bits.data(),
                                               identity.data(),
                                               mx[static_cast<std::size_t>(r)].data(),
                                               mw[static_cast<std::size_t>(r)].data(),
                                               2};
        }
        const auto combined = gmmav::reference::compute(sh, back);
        for (int r = 0; r < W; ++r) {
          EXPECT_EQ(combined[static_cast<std::size_t>(r)].y.bits, x[static_cast<std::size_t>(r)]) << "rank " << r;
          EXPECT_EQ(combined[static_cast<std::size_t>(r)].mm_y.bits, dispatched[static_cast<std::size_t>(r)].mm_y.bits)
              << "rank " << r;
          EXPECT_FALSE(dispatched[static_cast<std::size_t>(r)].mm_y.bits.empty());
        }
      }
}

TEST(DispatchReference, CountsThatBreakTheContractAreRefused) {
  Shapes sh;
  sh.world_size = 2;
  sh.local_experts = 1;
  sh.h1 = sh.n1 = 1;
  std::vector<std::uint16_t> x(4, 0x3C00), w(1, 0x3C00);
  std::vector<RankInputs> in = {{{1, 1}, {1, 2}, x.data(), w.data()}, {{1, 1}, {1, 1}, x.data(), w.data()}};
  EXPECT_THROW(gmmav::reference::compute_dispatch(sh, in), std::invalid_argument);  // rank 0 expects 2 from rank 1, which sends 1
}

}  // namespace
