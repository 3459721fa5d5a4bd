// compare_tensor, the element check of `gmmav verify`: relative error with a
// floor, the one-ulp and FP32-accumulation allowance, NaN/inf, --exact.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "numeric/half.hpp"
#include "output_compare.hpp"
#include "reference/reference.hpp"

namespace gmmav::cli {
namespace {

std::uint16_t h(double v) { return numeric::double_to_half(v); }
std::uint16_t b(double v) { return numeric::double_to_bf16(v); }

TEST(Compare, IdenticalTensorsPass) {
  const std::vector<std::uint16_t> x = {h(1), h(-2.5), h(0), h(1e-3)};
  const auto c = compare_tensor(DType::f16, x, x, 2, {});
  EXPECT_TRUE(c.pass);
  EXPECT_EQ(c.mismatches, 0);
  EXPECT_EQ(c.mere, 0);
  EXPECT_EQ(c.mare, 0);
  EXPECT_EQ(c.max_ulp, 0);
}

TEST(Compare, OneUlpIsAllowedButNotUnderExact) {
  // BF16: one ulp at 1.0 is 2^-7 = 0.78 %, above the 0.5 % tolerance, yet it is the output's own rounding step.
  const std::vector<std::uint16_t> want = {b(1.0), b(3.0)};
  const std::vector<std::uint16_t> got = {static_cast<std::uint16_t>(b(1.0) + 1), b(3.0)};
  const auto c = compare_tensor(DType::bf16, got, want, 2, {});
  EXPECT_TRUE(c.pass);
  EXPECT_EQ(c.max_ulp, 1);
  EXPECT_NEAR(c.mare, 1.0 / 128, 1e-12);
  CompareOptions exact;
  exact.exact = true;
  const auto e = compare_tensor(DType::bf16, got, want, 2, exact);
  EXPECT_FALSE(e.pass);
  EXPECT_EQ(e.mismatches, 1);
  EXPECT_EQ(e.first_row, 0);
  EXPECT_EQ(e.first_col, 0);
}

TEST(Compare, TwoUlpsBeyondTheToleranceFail) {
  const std::vector<std::uint16_t> want = {b(1.0), b(1.0), b(1.0), b(1.0)};
  std::vector<std::uint16_t> got = want;
  got[3] = static_cast<std::uint16_t>(got[3] + 2);
  const auto c = compare_tensor(DType::bf16, got, want, 2, {});
  EXPECT_FALSE(c.pass);
  EXPECT_EQ(c.mismatches, 1);
  EXPECT_EQ(c.first_row, 1);
  EXPECT_EQ(c.first_col, 1);
  EXPECT_EQ(c.first_got, got[3]);
  EXPECT_EQ(c.first_expected, want[3]);
}

TEST(Compare, FloorKeepsZerosFromExploding) {
  // expected 0, got 2^-20 (~1e-6): rel = 1e-6 / 1e-3 = 1e-3 <= 0.005.
  const std::vector<std::uint16_t> want = {h(0)}, got = {h(std::ldexp(1.0, -20))};
  EXPECT_TRUE(compare_tensor(DType::f16, got, want, 1, {}).pass);
  CompareOptions no_floor;
  no_floor.floor = 0;
  const auto c = compare_tensor(DType::f16, got, want, 1, no_floor);
  EXPECT_FALSE(c.pass);  // pure relative error: infinite, and 2^-20 is many ulps away from 0
}

TEST(Compare, AccumulationBoundAllowsCancellation) {
  // expected 0.01, got 0.0101 (1 % off, ~10 ulps): wrong unless the dot product's sum |a*b| is large.
  // (The element's rel alone, 1 %, would fail MERE on a 1-element tensor; the mismatch count is what matters here.)
  const std::vector<std::uint16_t> want = {h(0.01)}, got = {h(0.0101)};
  EXPECT_EQ(compare_tensor(DType::f16, got, want, 1, {}).mismatches, 1);
  const std::vector<double> small = {1.0}, large = {4096.0};
  EXPECT_EQ(compare_tensor(DType::f16, got, want, 1, {}, small, 512).mismatches, 1);
  // 512 * 2^-24 * 4096 = 0.125: the FP32 accumulation bound covers the difference.
  EXPECT_EQ(compare_tensor(DType::f16, got, want, 1, {}, large, 512).mismatches, 0);
}

TEST(Compare, NanAndInfinity) {
  const std::uint16_t nan = 0x7E00, inf = 0x7C00;
  EXPECT_TRUE(
      compare_tensor(DType::f16, std::vector<std::uint16_t>{nan, inf}, std::vector<std::uint16_t>{0x7E01, inf}, 2, {}).pass);
  EXPECT_FALSE(compare_tensor(DType::f16, std::vector<std::uint16_t>{nan}, std::vector<std::uint16_t>{h(1)}, 1, {}).pass);
  EXPECT_FALSE(compare_tensor(DType::f16, std::vector<std::uint16_t>{h(1)}, std::vector<std::uint16_t>{nan}, 1, {}).pass);
  // Even an infinite sum |a*b| allows no infinity.
  EXPECT_FALSE(compare_tensor(DType::f16, std::vector<std::uint16_t>{inf}, std::vector<std::uint16_t>{0x7BFF}, 1, {},
                              std::vector<double>{std::numeric_limits<double>::infinity()}, 16)
                   .pass);
}

// Issue 16: a sum |a*b| above FP16's range (here 2^17) must still bound the
// allowance: 64 * 2^-24 * 2^17 = 0.5, so an element 200 % wrong at 1024 fails.
TEST(Compare, LargeAccumulationSumStillBoundsTheError) {
  const std::vector<std::uint16_t> want(64, h(1024.0)), got = [&] {
    std::vector<std::uint16_t> g = want;
    g[5] = h(-1024.0);
    return g;
  }();
  const std::vector<double> sums(64, 131072.0);
  const auto c = compare_tensor(DType::f16, got, want, 8, {}, sums, 64);
  EXPECT_EQ(c.mismatches, 1);
  EXPECT_FALSE(c.pass);
}

// One ulp at an exact zero is the smallest subnormal step, not the step at 0.5.
TEST(Compare, UlpAtZeroIsTheSubnormalStep) {
  EXPECT_EQ(reference::ulp(DType::f16, 0.0), std::ldexp(1.0, -24));
  EXPECT_EQ(reference::ulp(DType::bf16, -0.0), std::ldexp(1.0, -133));
  EXPECT_EQ(reference::ulp(DType::f16, std::ldexp(1.0, -20)), std::ldexp(1.0, -24));  // subnormal range
  // The FP64 result is exactly 0 with no accumulation term; got 2^-14 is 1024 subnormal steps away.
  reference::Output ref;
  ref.bits = {h(0.0)};
  ref.exact = {0.0};
  ref.abs_sum = {0.0};
  ref.k = 1;
  const std::vector<std::uint16_t> got = {h(std::ldexp(1.0, -14))};
  const auto c = reference::compare(DType::f16, got, ref, false);
  EXPECT_EQ(c.mismatches, 1);
  EXPECT_EQ(c.max_ulp_error, 1024.0);
}

TEST(Compare, MereAboveToleranceFails) {
  // Every element 1 ulp off in BF16 at 1.0: no single mismatch, but MERE = 0.78 % > 0.5 %.
  const std::vector<std::uint16_t> want(8, b(1.0)), got(8, static_cast<std::uint16_t>(b(1.0) + 1));
  const auto c = compare_tensor(DType::bf16, got, want, 4, {});
  EXPECT_EQ(c.mismatches, 0);
  EXPECT_FALSE(c.pass);
}

TEST(Compare, UlpDistance) {
  EXPECT_EQ(ulp_distance(0x0000, 0x8000), 0);  // +0 and -0
  EXPECT_EQ(ulp_distance(0x0001, 0x8001), 2);  // smallest subnormals of both signs
  EXPECT_EQ(ulp_distance(0x3C00, 0x3BFF), 1);  // 1.0 and its predecessor
}

}  // namespace
}  // namespace gmmav::cli
