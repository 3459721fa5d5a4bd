// The chain kernel (src/gemm/chain_kernel.*): every output element is one
// FP32 FMA chain over k in ascending order from +0, rounded once (SPEC §4). The
// test recomputes that chain independently and compares bits, on the
// dispatched path (AVX2 where the host has it) and on the portable path, for
// shapes that exercise every remainder (rows not a multiple of 4, n not a
// multiple of the 24-column panel nor of the 192-column group of panels, k not
// a multiple of the 256 chunk), both
// weight layouts, subnormal and random full-precision values.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "gemm/chain_kernel.hpp"
#include "gemm/tile_matmul.hpp"
#include "numeric/convert.hpp"
#include "numeric/half.hpp"

namespace {

using gmmav::DType;
using namespace gmmav::gemm;

std::vector<std::uint16_t> random_bits(DType t, std::size_t n, std::mt19937_64& rng, bool subnormals) {
  std::normal_distribution<double> g(0.0, 1.0);
  std::vector<std::uint16_t> v(n);
  for (auto& x : v) {
    double d = g(rng);
    if (subnormals) d *= t == DType::f16 ? std::ldexp(1.0, -20) : std::ldexp(1.0, -130);
    x = gmmav::numeric::from_double(t, d);
  }
  return v;
}

float value(DType t, std::uint16_t v) {
  float f = 0;
  gmmav::numeric::to_float(t, &v, &f, 1);
  return f;
}

// The contract, written out: acc = fma(x[r][k], W[k][c], acc) for k = 0, 1, ..., from +0; round once.
std::vector<std::uint16_t> fma_chain(DType t, const std::vector<std::uint16_t>& x, std::int64_t rows, std::int64_t k,
                                     const std::vector<std::uint16_t>& w, std::int64_t n, bool trans) {
  std::vector<std::uint16_t> out(static_cast<std::size_t>(rows * n));
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < n; ++c) {
      float acc = 0.0f;
      for (std::int64_t i = 0; i < k; ++i) {
        const std::uint16_t wb = trans ? w[static_cast<std::size_t>(c * k + i)] : w[static_cast<std::size_t>(i * n + c)];
        acc = std::fma(value(t, x[static_cast<std::size_t>(r * k + i)]), value(t, wb), acc);
      }
      gmmav::numeric::from_float(t, &acc, &out[static_cast<std::size_t>(r * n + c)], 1);
    }
  return out;
}

struct Shape {
  std::int64_t rows, k, n;
};

class ChainKernel : public ::testing::TestWithParam<std::tuple<DType, bool, bool>> {};

TEST_P(ChainKernel, IsOneFmaChainPerElementOnEveryPath) {
  const auto [t, trans, subnormals] = GetParam();
  std::mt19937_64 rng(42);
  for (const Shape s : {Shape{1, 1, 1}, Shape{3, 7, 5}, Shape{4, 256, 24}, Shape{5, 300, 50}, Shape{17, 513, 49},
                        Shape{32, 64, 100}, Shape{kSmallMRows, 260, 23}, Shape{5, 300, 192}, Shape{kSmallMRows, 260, 410},
                        Shape{kSmallMRows + 1, 70, 30}, Shape{127, 300, 200}, Shape{128, 257, 193}}) {
    SCOPED_TRACE(testing::Message() << "rows " << s.rows << " k " << s.k << " n " << s.n);
    const auto x = random_bits(t, static_cast<std::size_t>(s.rows * s.k), rng, false);
    const auto w = random_bits(t, static_cast<std::size_t>(s.k * s.n), rng, subnormals);
    const auto want = fma_chain(t, x, s.rows, s.k, w, s.n, trans);
    std::vector<std::uint16_t> got(want.size(), 0xDEAD), portable(want.size(), 0xBEEF);
    chain_matmul(t, x.data(), s.rows, s.k, w.data(), s.n, trans, got.data());
    chain_matmul_portable(t, x.data(), s.rows, s.k, w.data(), s.n, trans, portable.data());
    EXPECT_EQ(got, want) << "dispatched path (" << chain_kernel_path() << ")";
    EXPECT_EQ(portable, want) << "portable path";
  }
}

INSTANTIATE_TEST_SUITE_P(All, ChainKernel,
                         ::testing::Combine(::testing::Values(DType::f16, DType::bf16), ::testing::Bool(), ::testing::Bool()),
                         [](const auto& info) {
                           return std::string(std::get<0>(info.param) == DType::f16 ? "fp16" : "bf16") +
                                  (std::get<1>(info.param) ? "_trans" : "_plain") +
                                  (std::get<2>(info.param) ? "_subnormal_weights" : "_normal");
                         });

// A tile of at most kSmallMRows rows takes the kernel through PreparedWeight, with or without a
// packed copy (the route never depends on how the weight was prepared).
TEST(ChainKernel, PreparedWeightRoutesSmallTilesToIt) {
  std::mt19937_64 rng(7);
  const std::int64_t k = 96, n = 40;
  for (const DType t : {DType::f16, DType::bf16}) {
    const auto w = random_bits(t, static_cast<std::size_t>(k * n), rng, false);
    const auto x = random_bits(t, static_cast<std::size_t>(kSmallMRows * k), rng, false);
    const auto want = fma_chain(t, x, kSmallMRows, k, w, n, false);
    for (const auto packing : {PreparedWeight::Packing::now, PreparedWeight::Packing::first_need}) {
      PreparedWeight pw;
      pw.prepare(t, w.data(), k, n, false, packing);
      std::vector<std::uint16_t> got(want.size());
      pw.matmul_rows(x.data(), kSmallMRows, got.data());
      EXPECT_EQ(got, want);
      if (packing == PreparedWeight::Packing::first_need) {
        EXPECT_EQ(pw.bytes(), 0u) << "no packed copy for small tiles";
      }
    }
  }
}

// Where oneDNN has no FP32 brgemm kernel (D24), tiles of more rows than kSmallMRows take the
// chain kernel too, FP16 always and BF16 where there is no native BF16 matmul, and nothing is packed.
TEST(ChainKernel, PreparedWeightRoutesLargeF32TilesToItWhereOneDnnHasNoBrgemm) {
  if (f32_route_packs()) GTEST_SKIP() << "oneDNN's FP32 brgemm takes large tiles on this host";
  std::mt19937_64 rng(9);
  const std::int64_t k = 300, n = 72, rows = 128;
  for (const DType t : {DType::f16, DType::bf16}) {
    if (t == DType::bf16 && native_bf16_matmul()) continue;
    for (const bool trans : {false, true}) {
      const auto w = random_bits(t, static_cast<std::size_t>(k * n), rng, false);
      const auto x = random_bits(t, static_cast<std::size_t>(rows * k), rng, false);
      const auto want = fma_chain(t, x, rows, k, w, n, trans);
      PreparedWeight pw;
      pw.prepare(t, w.data(), k, n, trans, PreparedWeight::Packing::now);
      std::vector<std::uint16_t> got(want.size());
      pw.matmul_rows(x.data(), rows, got.data());
      EXPECT_EQ(got, want);
      EXPECT_EQ(pw.bytes(), 0u) << "nothing packed";
    }
  }
}

}  // namespace
