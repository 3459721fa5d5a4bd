// The chain kernel (src/gemm/chain_kernel.*): every output element is one
// FP32 FMA chain over k in ascending order from +0, rounded once (docs/spec.md §4). The
// test recomputes that chain independently and compares bits, on the
// dispatched path and on the path of every ISA level up to this process's
// (portable, AVX2, AVX-512: common/cpu_isa.hpp), for shapes that exercise every
// remainder (rows not a multiple of 8 or 4: AVX-512 blocks of 4, then 3, 2 or 1 rows;
// n not a multiple of the AVX2 24-column panel, its 192-column group, nor the
// AVX-512 96-column strip; k not a multiple of the 128 or 256 chunk, nor of the
// 16 x 16 transposition), several AVX-512 column groups (rows x n beyond its
// 768 KiB of sums), both weight layouts, subnormal and random full-precision
// values; then random shapes, level against level (D67, D83).
#include <gtest/gtest.h>

#include <sys/mman.h>

#include <cmath>
#include <limits>
#include <random>

#include "gemm/chain_kernel.hpp"
#include "gemm/tile_matmul.hpp"
#include "numeric/convert.hpp"
#include "numeric/half.hpp"

namespace {

using gmmav::CpuIsa;
using gmmav::DType;
using namespace gmmav::gemm;
using gmmav::cpu_isa;
using gmmav::to_string;

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

// The ISA levels whose path this process may run (up to its level: the host's, capped by GMMAV_MAX_CPU_ISA).
std::vector<CpuIsa> levels() {
  std::vector<CpuIsa> out;
  for (const CpuIsa isa : {CpuIsa::portable, CpuIsa::avx2, CpuIsa::avx512})
    if (isa <= cpu_isa()) out.push_back(isa);
  return out;
}

class ChainKernel : public ::testing::TestWithParam<std::tuple<DType, bool, bool>> {};

TEST_P(ChainKernel, IsOneFmaChainPerElementOnEveryPath) {
  const auto [t, trans, subnormals] = GetParam();
  std::mt19937_64 rng(42);
  std::vector<Shape> shapes;
  for (const Shape s : {Shape{1, 1, 1}, Shape{3, 7, 5}, Shape{4, 256, 24}, Shape{5, 300, 50}, Shape{17, 513, 49},
                        Shape{32, 64, 100}, Shape{kSmallMRows, 260, 23}, Shape{5, 300, 192}, Shape{kSmallMRows, 260, 410},
                        Shape{kSmallMRows + 1, 70, 30}, Shape{127, 300, 200}, Shape{128, 257, 193}, Shape{8, 128, 48},
                        Shape{15, 129, 97}, Shape{7, 255, 191}, Shape{9, 385, 240}, Shape{2, 1, 383}})
    shapes.push_back(s);
  // AVX-512 remainders (rows 3 and 6, strips of 95-97 columns, k = 17 in the transposition), several column groups;
  // tiles of 8 rows or more (blocks of 8 rows x 48 columns): remainders of 4-7 rows, strips of 47-49 columns.
  for (const Shape s :
       {Shape{3, 129, 96}, Shape{6, 300, 95}, Shape{11, 17, 289}, Shape{1, 1000, 97}, Shape{2, 2, 4100}, Shape{24, 130, 193},
        Shape{130, 40, 1600}, Shape{13, 129, 47}, Shape{12, 300, 49}, Shape{14, 17, 145}, Shape{31, 70, 48},
        // tiles of one block (at most 8 rows) over full-width strips and a last partial one
        Shape{8, 129, 100}, Shape{4, 200, 96}, Shape{2, 77, 200}})
    shapes.push_back(s);
  for (const Shape s : shapes) {
    SCOPED_TRACE(testing::Message() << "rows " << s.rows << " k " << s.k << " n " << s.n);
    const auto x = random_bits(t, static_cast<std::size_t>(s.rows * s.k), rng, false);
    const auto w = random_bits(t, static_cast<std::size_t>(s.k * s.n), rng, subnormals);
    const auto want = fma_chain(t, x, s.rows, s.k, w, s.n, trans);
    std::vector<std::uint16_t> got(want.size(), 0xDEAD);
    chain_matmul(t, x.data(), s.rows, s.k, w.data(), s.n, trans, got.data());
    EXPECT_EQ(got, want) << "dispatched path (" << chain_kernel_path() << ")";
    for (const CpuIsa isa : levels()) {
      std::vector<std::uint16_t> at(want.size(), 0xBEEF);
      chain_matmul_at(isa, t, x.data(), s.rows, s.k, w.data(), s.n, trans, at.data());
      EXPECT_EQ(at, want) << chain_kernel_path(isa) << " path";
    }
  }
}

// Every level's path against the portable one, bit for bit, on random shapes around the
// blockings of every level (rows 1..40 and 120..130, n 1..400, k 1..700), both dtypes and
// layouts, values of every magnitude (normal, subnormal products, zeros of both signs).
TEST(ChainKernelLevels, SameBitsOnEveryLevelForRandomShapes) {
  const auto lv = levels();
  if (lv.size() < 2) GTEST_SKIP() << "only the portable path in this process (" << to_string(cpu_isa()) << ")";
  std::mt19937_64 rng(2024);
  std::uniform_int_distribution<std::int64_t> small_rows(1, 40), large_rows(120, 130), cols(1, 400), depth(1, 700);
  std::uniform_int_distribution<int> coin(0, 3);
  for (int i = 0; i < 64; ++i) {
    const DType t = i % 2 ? DType::bf16 : DType::f16;
    const bool trans = (i / 2) % 2;
    const std::int64_t rows = coin(rng) == 0 ? large_rows(rng) : small_rows(rng), k = depth(rng), n = cols(rng);
    SCOPED_TRACE(testing::Message() << (t == DType::f16 ? "fp16" : "bf16") << (trans ? " trans" : "") << " rows " << rows << " k "
                                    << k << " n " << n);
    auto x = random_bits(t, static_cast<std::size_t>(rows * k), rng, false);
    auto w = random_bits(t, static_cast<std::size_t>(k * n), rng, coin(rng) == 0);
    for (std::size_t z = 0; z < x.size(); z += 17) x[z] = z % 2 ? 0x8000 : 0;  // signed zeros: the chain starts from +0
    std::vector<std::uint16_t> portable(static_cast<std::size_t>(rows * n), 0xBEEF);
    chain_matmul_at(CpuIsa::portable, t, x.data(), rows, k, w.data(), n, trans, portable.data());
    for (const CpuIsa isa : lv) {
      if (isa == CpuIsa::portable) continue;
      std::vector<std::uint16_t> got(portable.size(), 0xDEAD);
      chain_matmul_at(isa, t, x.data(), rows, k, w.data(), n, trans, got.data());
      ASSERT_EQ(got, portable) << chain_kernel_path(isa) << " path vs portable";
    }
  }
}

// Infinities and NaNs go through every level's chains alike (same NaN bits: the result of an FMA
// with a NaN operand must not depend on the path).
TEST(ChainKernelLevels, SameBitsOnEveryLevelWithInfinitiesAndNaNs) {
  const auto lv = levels();
  if (lv.size() < 2) GTEST_SKIP() << "only the portable path in this process";
  std::mt19937_64 rng(5);
  for (const DType t : {DType::f16, DType::bf16}) {
    const std::uint16_t inf = t == DType::f16 ? 0x7C00 : 0x7F80, nan = t == DType::f16 ? 0x7E01 : 0x7FC1;
    const std::int64_t rows = 9, k = 300, n = 100;
    auto x = random_bits(t, static_cast<std::size_t>(rows * k), rng, false);
    auto w = random_bits(t, static_cast<std::size_t>(k * n), rng, false);
    x[5] = inf;                                // row 0: +inf times +-w: inf, or NaN once both signs meet
    x[static_cast<std::size_t>(k + 7)] = nan;  // row 1: NaN from the start of its chains
    x[static_cast<std::size_t>(2 * k + 9)] = nan | 0x8000;
    w[static_cast<std::size_t>(11 * n + 3)] = nan;  // column 3: a NaN weight in every row's chain
    w[static_cast<std::size_t>(40 * n + 3)] = inf;
    w[static_cast<std::size_t>(20 * n + 50)] = inf | 0x8000;
    for (const bool trans : {false, true}) {  // the same values read as an n x k weight: other columns meet them
      std::vector<std::uint16_t> portable(static_cast<std::size_t>(rows * n));
      chain_matmul_at(CpuIsa::portable, t, x.data(), rows, k, w.data(), n, trans, portable.data());
      for (const CpuIsa isa : lv) {
        std::vector<std::uint16_t> got(portable.size(), 0xDEAD);
        chain_matmul_at(isa, t, x.data(), rows, k, w.data(), n, trans, got.data());
        EXPECT_EQ(got, portable) << chain_kernel_path(isa) << " path vs portable" << (trans ? ", W n x k" : "");
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(All, ChainKernel,
                         ::testing::Combine(::testing::Values(DType::f16, DType::bf16), ::testing::Bool(), ::testing::Bool()),
                         [](const auto& info) {
                           return std::string(std::get<0>(info.param) == DType::f16 ? "fp16" : "bf16") +
                                  (std::get<1>(info.param) ? "_trans" : "_plain") +
                                  (std::get<2>(info.param) ? "_subnormal_weights" : "_normal");
                         });

// A tile of at most kSmallMRows rows takes the kernel through PreparedWeight wherever route_of
// says so — FP16 always, BF16 where the host has no native BF16 route — with or without a packed
// copy (the route never depends on how the weight was prepared). On a native-BF16 host a BF16 tile
// takes it too when its data fail the exactness rule (a value below 2^-56 in x), D82.
TEST(ChainKernel, PreparedWeightRoutesSmallTilesToIt) {
  std::mt19937_64 rng(7);
  const std::int64_t k = 96, n = 40;
  for (const DType t : {DType::f16, DType::bf16}) {
    const bool chain_route = route_of(t, kSmallMRows, k, n) == Route::chain;
    EXPECT_EQ(chain_route, t == DType::f16 || !native_bf16_matmul()) << to_string(t);
    const auto w = random_bits(t, static_cast<std::size_t>(k * n), rng, false);
    auto x = random_bits(t, static_cast<std::size_t>(kSmallMRows * k), rng, false);
    if (!chain_route) x[5] = gmmav::numeric::double_to_bf16(std::ldexp(1.0, -60));  // off the bf16 route
    const auto want = fma_chain(t, x, kSmallMRows, k, w, n, false);
    for (const auto packing :
         {PreparedWeight::Packing::now, PreparedWeight::Packing::small_tiles, PreparedWeight::Packing::first_need}) {
      PreparedWeight pw;
      pw.prepare(t, w.data(), k, n, false, packing);
      std::vector<std::uint16_t> got(want.size());
      pw.matmul_rows(x.data(), kSmallMRows, got.data());
      EXPECT_EQ(got, want) << to_string(t);
      if (packing == PreparedWeight::Packing::first_need && chain_route) {
        EXPECT_EQ(pw.bytes(), 0u) << "no packed copy for small tiles";
      }
    }
  }
}

// BF16 tiles of every row count take oneDNN's native BF16 matmul where the host has one (D82):
// with data whose every partial sum is exact in FP32 (small multiples of powers of two), every
// route gives the exact result, so the native route is checked against the chain, whatever the
// packing, both layouts; and it is taken (the packed BF16 copy exists after a small tile).
TEST(ChainKernel, SmallBf16TilesTakeTheNativeRouteWhereTheHostHasIt) {
  if (!native_bf16_matmul()) GTEST_SKIP() << "no native BF16 matmul at this ISA level: BF16 tiles take the chain kernel";
  std::mt19937_64 rng(11);
  std::uniform_int_distribution<int> small(-8, 8);
  const std::int64_t k = 200, n = 72;
  const auto exact_values = [&](std::size_t count, int scale) {
    std::vector<std::uint16_t> v(count);
    for (auto& e : v) e = gmmav::numeric::double_to_bf16(std::ldexp(small(rng), scale));
    return v;
  };
  for (const bool trans : {false, true})
    for (const std::int64_t rows : {std::int64_t{1}, std::int64_t{3}, std::int64_t{16}, kSmallMRows, kSmallMRows + 1}) {
      SCOPED_TRACE(::testing::Message() << rows << " rows, trans " << trans);
      EXPECT_EQ(route_of(DType::bf16, rows, k, n), Route::onednn_bf16);
      const auto w = exact_values(static_cast<std::size_t>(k * n), -4);
      const auto x = exact_values(static_cast<std::size_t>(rows * k), -3);
      const auto want = fma_chain(DType::bf16, x, rows, k, w, n, trans);
      for (const auto packing :
           {PreparedWeight::Packing::now, PreparedWeight::Packing::small_tiles, PreparedWeight::Packing::first_need}) {
        PreparedWeight pw;
        pw.prepare(DType::bf16, w.data(), k, n, trans, packing);
        std::vector<std::uint16_t> got(want.size());
        pw.matmul_rows(x.data(), rows, got.data());
        EXPECT_EQ(got, want);
        EXPECT_TRUE(pw.bf16_route());
        EXPECT_GT(pw.bytes(), 0u) << "the BF16 copy was packed";
      }
    }
  // Which copies a weight's preparation packs: the BF16 one for small GEMMs, nothing for FP16 ones.
  EXPECT_EQ(packing_for(DType::bf16, kSmallMRows, k, n), PreparedWeight::Packing::small_tiles);
  EXPECT_EQ(packing_for(DType::bf16, kSmallMRows + 1, k, n), PreparedWeight::Packing::now);
  EXPECT_EQ(packing_for(DType::f16, kSmallMRows, k, n), PreparedWeight::Packing::first_need);
  EXPECT_EQ(packing_for(DType::bf16, 0, k, n), PreparedWeight::Packing::first_need);
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

// The guard in front of every oneDNN call (D65): oneDNN 2.6 keeps dimensions in 32-bit ints and
// died with SIGFPE creating a primitive for K = 2^36 (AVX-512 hosts; an AVX2 host never reaches
// oneDNN with it, so the guard itself is tested here, on any host).
TEST(OneDnnGuard, RefusesEveryDimensionOneDnnCannotTake) {
  EXPECT_TRUE(onednn_accepts(1, 1, 1));
  EXPECT_TRUE(onednn_accepts(128, 7168, 4096));
  EXPECT_TRUE(onednn_accepts(kOneDnnMaxDim, kOneDnnMaxDim, kOneDnnMaxDim));
  EXPECT_EQ(kOneDnnMaxDim * 4, (std::int64_t{1} << 31) - 4) << "a row of FP32 values stays below 2^31 bytes";
  constexpr std::int64_t p31 = std::int64_t{1} << 31, p32 = std::int64_t{1} << 32;
  for (const std::int64_t bad : {std::int64_t{0}, std::int64_t{-1}, kOneDnnMaxDim + 1, p31 - 1, p31, p32 - 1, p32, p32 + 1,
                                 std::int64_t{1} << 36, std::numeric_limits<std::int64_t>::max()}) {
    SCOPED_TRACE(bad);
    EXPECT_FALSE(onednn_accepts(bad, 64, 64)) << "m";
    EXPECT_FALSE(onednn_accepts(64, bad, 64)) << "k";
    EXPECT_FALSE(onednn_accepts(64, 64, bad)) << "n";
  }
  for (const DType t : {DType::f16, DType::bf16}) {
    EXPECT_FALSE(packs_weights(t, std::int64_t{1} << 36, 1));
    EXPECT_FALSE(packs_weights(t, 1, std::int64_t{1} << 36));
    EXPECT_EQ(packs_weights(t, 7168, 4096), packs_weights(t)) << "ordinary shapes: as the host decides";
  }
}

// A weight beyond the guard is never handed to oneDNN, whatever the host: preparing it packs
// nothing, and a tile of any row count takes the chain kernel, which fails cleanly with
// Errc::out_of_memory when the tile's FP32 rows cannot be had (2^36 x 4 bytes per row here).
TEST(OneDnnGuard, WeightBeyondItTakesTheChainKernel) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "the sanitizers' allocators abort on a request this large instead of failing it";
#endif
  constexpr std::int64_t k = std::int64_t{1} << 36, n = 1, rows = kSmallMRows + 1;
  const std::size_t w_bytes = static_cast<std::size_t>(k) * 2, x_bytes = w_bytes * rows;
  void* w = mmap(nullptr, w_bytes, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  void* x = mmap(nullptr, x_bytes, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (w == MAP_FAILED || x == MAP_FAILED) GTEST_SKIP() << "cannot reserve the address space here";
  for (const DType t : {DType::f16, DType::bf16}) {
    PreparedWeight pw;
    pw.prepare(t, static_cast<const std::uint16_t*>(w), k, n, false, PreparedWeight::Packing::now);
    EXPECT_EQ(pw.bytes(), 0u) << "nothing packed";
    EXPECT_FALSE(pw.bf16_route());
    std::vector<std::uint16_t> out(rows, 0x7E00);
    for (const std::int64_t r : {std::int64_t{1}, rows}) {
      try {
        pw.matmul_rows(static_cast<const std::uint16_t*>(x), r, out.data());
        ADD_FAILURE() << "expected out_of_memory for " << r << " rows";
      } catch (const gmmav::Error& e) {
        EXPECT_EQ(e.code(), gmmav::Errc::out_of_memory) << e.what();
        EXPECT_NE(std::string(e.what()).find("FP32 rows"), std::string::npos) << "the chain kernel's buffer: " << e.what();
      }
    }
    EXPECT_EQ(out, std::vector<std::uint16_t>(rows, 0x7E00));
  }
  munmap(w, w_bytes);
  munmap(x, x_bytes);
}

}  // namespace
