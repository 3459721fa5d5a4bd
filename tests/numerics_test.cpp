// Numerics (docs/spec.md §4): conversions are exact and round once to nearest-even,
// subnormals are kept, overflow goes to infinity -- in the scalar helpers, in
// the bulk (F16C) paths, and end to end through the operator.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <thread>

#include "gemm/tile_matmul.hpp"
#include "gmmav/gmmav.hpp"
#include "numeric/convert.hpp"
#include "numeric/half.hpp"
#include "reference/synthetic_case.hpp"

namespace {

using namespace gmmav::numeric;
using gmmav::DType;

TEST(Conversions, HalfRoundTripAllPatterns) {
  std::vector<std::uint16_t> all(65536), back(65536);
  std::vector<float> f(65536);
  for (std::uint32_t i = 0; i < 65536; ++i) all[i] = static_cast<std::uint16_t>(i);
  to_float(DType::f16, all.data(), f.data(), all.size());
  from_float(DType::f16, f.data(), back.data(), f.size());
  for (std::uint32_t i = 0; i < 65536; ++i) {
    ASSERT_EQ(bits_of(f[i]), bits_of(half_to_float(all[i]))) << "bulk vs scalar at " << i;
    if ((i & 0x7C00) == 0x7C00 && (i & 0x3FF)) continue;  // nan payloads may be quieted
    ASSERT_EQ(back[i], all[i]) << "pattern " << i;
    ASSERT_EQ(float_to_half(f[i]), all[i]) << "pattern " << i;
  }
}

TEST(Conversions, HalfKnownRoundings) {
  EXPECT_EQ(double_to_half(65504.0), 0x7BFF);
  EXPECT_EQ(double_to_half(65519.0), 0x7BFF);
  EXPECT_EQ(double_to_half(65520.0), 0x7C00);  // halfway to 65536 -> even -> overflow
  EXPECT_EQ(double_to_half(-65520.0), 0xFC00);
  EXPECT_EQ(double_to_half(std::ldexp(1.0, -24)), 0x0001);
  EXPECT_EQ(double_to_half(std::ldexp(1.0, -25)), 0x0000);        // tie -> even (0)
  EXPECT_EQ(double_to_half(std::ldexp(3.0, -25)), 0x0002);        // 1.5 ulp -> 2
  EXPECT_EQ(double_to_half(std::ldexp(5.0, -25)), 0x0002);        // 2.5 ulp -> 2
  EXPECT_EQ(double_to_half(std::ldexp(1023.5, -24)), 0x0400);     // rounds up into the normals
  EXPECT_EQ(double_to_half(1.0 + std::ldexp(1.0, -11)), 0x3C00);  // tie -> even
  EXPECT_EQ(double_to_half(1.0 + std::ldexp(3.0, -11)), 0x3C02);
  EXPECT_EQ(double_to_half(-0.0), 0x8000);
}

TEST(Conversions, BulkFloatToHalfMatchesScalarOnRandomFloats) {
  std::mt19937 rng(5);
  std::vector<float> f(1 << 18);
  for (auto& x : f) {
    // Random bit patterns concentrated on the half range (exponents 100..145) plus anything.
    std::uint32_t u = rng();
    if (rng() % 4) u = (u & 0x807FFFFFu) | ((100u + rng() % 46) << 23);
    x = float_of(u);
  }
  std::vector<std::uint16_t> bulk(f.size());
  from_float(DType::f16, f.data(), bulk.data(), f.size());
  for (std::size_t i = 0; i < f.size(); ++i) {
    if (std::isnan(f[i])) continue;
    ASSERT_EQ(bulk[i], double_to_half(f[i])) << "float " << f[i];
  }
}

// The bulk BF16 rounding (AVX2 where the host has it) gives float_to_bf16's bits for every
// pattern class: ties, carries into the exponent, infinities, NaNs (quieted, payload kept),
// subnormals, and the remainder after the last full vector.
TEST(Conversions, BulkFloatToBf16MatchesScalarOnEveryPattern) {
  std::mt19937 rng(6);
  std::vector<float> f((1 << 18) + 5);
  for (auto& x : f) {
    std::uint32_t u = rng();
    switch (rng() % 6) {
      case 0:
        u = (u & 0xFFFF0000u) | 0x8000u;
        break;  // exact tie
      case 1:
        u |= 0x7F800000u;
        break;  // inf or NaN
      case 2:
        u &= 0x807FFFFFu;
        break;  // zero or subnormal
      case 3:
        u = (u & 0xFF800000u) | 0x007FFFFFu;
        break;  // rounds up into the exponent
      default:
        break;
    }
    x = float_of(u);
  }
  std::vector<std::uint16_t> bulk(f.size());
  from_float(DType::bf16, f.data(), bulk.data(), f.size());
  for (std::size_t i = 0; i < f.size(); ++i) ASSERT_EQ(bulk[i], float_to_bf16(f[i])) << "bits " << std::hex << bits_of(f[i]);
}

TEST(Conversions, Bf16RoundingMatchesDoubleRounding) {
  std::mt19937 rng(9);
  for (int i = 0; i < 1 << 20; ++i) {
    const float f = float_of(rng());
    if (std::isnan(f)) continue;
    ASSERT_EQ(float_to_bf16(f), double_to_bf16(f)) << "float bits " << bits_of(f);
  }
  EXPECT_EQ(float_to_bf16(float_of(0x00000001u)), 0x0000);  // below half the smallest bf16 subnormal
  EXPECT_EQ(float_to_bf16(float_of(0x00018000u)), 0x0002);  // tie -> even
  EXPECT_EQ(float_to_bf16(float_of(0x7F7FFFFFu)), 0x7F80);  // overflow -> inf
}

// Runs a W = 1, e = 1 operator: out(rows x n) = x(rows x k) @ w(k x n).
std::vector<std::uint16_t> run_single(DType t, std::int64_t rows, std::int64_t k, std::int64_t n,
                                      const std::vector<std::uint16_t>& x, const std::vector<std::uint16_t>& w) {
  gmmav::ProblemDesc d;
  d.send_counts = {rows};
  d.recv_counts = {rows};
  d.h1 = k;
  d.n1 = n;
  d.dtype = t;
  std::vector<std::uint16_t> y(static_cast<std::size_t>(rows * n), 0xA5A5);
  gmmav::OpTensors o;
  o.gmm_x = gmmav::ConstTensorView::matrix(x.data(), t, rows, k);
  o.gmm_weight = gmmav::ConstTensorView::cube(w.data(), t, 1, k, n);
  o.y = gmmav::TensorView::matrix(y.data(), t, rows, n);
  auto comms = gmmav::create_in_process_group(1);
  gmmav::run(gmmav::Plan::create(d), comms[0], o);
  return y;
}

TEST(OperatorNumerics, Fp16SubnormalOutputsRoundOnce) {
  // y = 2^-14 * (m * 2^-11) = m/2 subnormal ulps: ties go to even.
  const std::vector<int> m = {1, 2, 3, 5, 7, 9, 2047};
  std::vector<std::uint16_t> x = {double_to_half(std::ldexp(1.0, -14))}, w;
  for (int v : m) w.push_back(double_to_half(std::ldexp(v, -11)));
  const auto y = run_single(DType::f16, 1, 1, static_cast<std::int64_t>(m.size()), x, w);
  const std::vector<std::uint16_t> expect = {0x0000, 0x0001, 0x0002, 0x0002, 0x0004, 0x0004, 0x0400};
  EXPECT_EQ(y, expect);
}

TEST(OperatorNumerics, Fp16SubnormalInputsKept) {
  // x subnormal (2^-24 * 3), w = 2^10: y = 3 * 2^-14 (normal). Flushing inputs would give 0.
  std::vector<std::uint16_t> x = {0x0003, 0x0001}, w = {double_to_half(1024.0), double_to_half(1024.0)};
  const auto y = run_single(DType::f16, 1, 2, 1, x, w);
  EXPECT_EQ(y[0], double_to_half(4.0 * std::ldexp(1.0, -14)));
}

TEST(OperatorNumerics, Fp16NearOverflow) {
  const double one = 1.0;
  const std::vector<std::vector<double>> rows = {
      {32768, 32736, 0}, {32768, 32736, 15}, {32768, 32736, 16}, {-32768, -32736, -16}, {32768, 32736, -32}};
  std::vector<std::uint16_t> x, w = {double_to_half(one), double_to_half(one), double_to_half(one)};
  for (const auto& r : rows)
    for (double v : r) x.push_back(double_to_half(v));
  const auto y = run_single(DType::f16, 5, 3, 1, x, w);
  EXPECT_EQ(y, (std::vector<std::uint16_t>{0x7BFF, 0x7BFF, 0x7C00, 0xFC00, 0x7BFE}));
}

TEST(OperatorNumerics, SeedValuesExact) {
  // The seed's data: gmmX = fp16 bits (r+1)*1024, weights (r+1)*512 (subnormal for r = 0), H = 7168.
  for (int r = 0; r < 4; ++r) {
    const std::int64_t k = 7168, n = 16, rows = 3;
    std::vector<std::uint16_t> x(static_cast<std::size_t>(rows * k), static_cast<std::uint16_t>((r + 1) * 1024));
    std::vector<std::uint16_t> w(static_cast<std::size_t>(k * n), static_cast<std::uint16_t>((r + 1) * 512));
    const auto y = run_single(DType::f16, rows, k, n, x, w);
    const double exact = static_cast<double>(k) * half_to_float(static_cast<std::uint16_t>((r + 1) * 1024)) *
                         half_to_float(static_cast<std::uint16_t>((r + 1) * 512));
    for (auto v : y) ASSERT_EQ(v, double_to_half(exact)) << "rank value " << r;
  }
  // r = 0 gives a subnormal result: 7168 * 2^-14 * 2^-15 = 224 * 2^-24.
  EXPECT_EQ(double_to_half(7168.0 * std::ldexp(1.0, -29)), 224);
}

TEST(OperatorNumerics, Bf16SubnormalsKept) {
  // x = smallest normal bf16 2^-126, w = 0.5: y = 2^-127 is a bf16 subnormal (0x0040).
  std::vector<std::uint16_t> x = {0x0080}, w = {double_to_bf16(0.5)};
  EXPECT_EQ(run_single(DType::bf16, 1, 1, 1, x, w)[0], 0x0040);
  // Subnormal input: 0x0001 (2^-133) * 2^10 = 2^-123 (normal).
  std::vector<std::uint16_t> x2 = {0x0001}, w2 = {double_to_bf16(1024.0)};
  EXPECT_EQ(run_single(DType::bf16, 1, 1, 1, x2, w2)[0], double_to_bf16(std::ldexp(1.0, -123)));
}

}  // namespace

namespace {

TEST(Bf16Route, ExactnessCheck) {
  using gmmav::gemm::bf16_dot_exact;
  const std::vector<std::uint16_t> normal = {0x3F80 /*1*/, 0xBF80 /*-1*/, 0x0000, 0x8000, 0x2380 /*2^-56*/};
  EXPECT_TRUE(bf16_dot_exact(normal.data(), normal.size()));
  const std::uint16_t tiny[] = {0x2300};  // 2^-57: a product could reach the subnormal range
  EXPECT_FALSE(bf16_dot_exact(tiny, 1));
  const std::uint16_t sub[] = {0x0001};  // a subnormal
  EXPECT_FALSE(bf16_dot_exact(sub, 1));
  // Long arrays (the vector path): one offending value anywhere is found; zeros never count.
  std::vector<std::uint16_t> big(1003, 0x3F80);
  big[17] = 0x0000;
  big[18] = 0x8000;
  EXPECT_TRUE(bf16_dot_exact(big.data(), big.size()));
  for (std::size_t at : {std::size_t{0}, std::size_t{31}, std::size_t{500}, std::size_t{1002}}) {
    auto v = big;
    v[at] = 0x8300;  // -2^-121
    EXPECT_FALSE(bf16_dot_exact(v.data(), v.size())) << at;
  }
}

TEST(Bf16Route, NativeRouteTakenForOrdinaryWeightsAndIsExactOnDyadicData) {
  // K = 300 with values in multiples of 1/16: FP32 accumulation is exact, so the native
  // route (if this CPU has one) must give exactly the reference rounding.
  const std::int64_t k = 300, n = 37, rows = 200;
  std::mt19937 rng(3);
  std::vector<std::uint16_t> x(static_cast<std::size_t>(rows * k)), w(static_cast<std::size_t>(k * n));
  for (auto& v : x) v = double_to_bf16(static_cast<int>(rng() % 33) / 16.0 - 1.0);
  for (auto& v : w) v = double_to_bf16(static_cast<int>(rng() % 33) / 16.0 - 1.0);
  gmmav::gemm::PreparedWeight pw;
  pw.prepare(DType::bf16, w.data(), k, n, false);
  if (gmmav::gemm::implementation_info().find("avx512_core_bf16") != std::string::npos) {
    EXPECT_TRUE(pw.bf16_route());
  }
  std::vector<std::uint16_t> out(static_cast<std::size_t>(rows * n));
  pw.matmul_rows(x.data(), rows, out.data());
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < n; ++c) {
      double s = 0;
      for (std::int64_t i = 0; i < k; ++i)
        s += static_cast<double>(bf16_to_float(x[static_cast<std::size_t>(r * k + i)])) *
             bf16_to_float(w[static_cast<std::size_t>(i * n + c)]);
      ASSERT_EQ(out[static_cast<std::size_t>(r * n + c)], double_to_bf16(s)) << r << "," << c;
    }
}

TEST(Bf16Route, TinyWeightsTakeTheExactRoute) {
  // 2^-60 * 2^-70 = 2^-130: an FP32 and BF16 subnormal; the native kernels would flush it.
  std::vector<std::uint16_t> w = {double_to_bf16(std::ldexp(1.0, -70))}, x = {double_to_bf16(std::ldexp(1.0, -60))};
  gmmav::gemm::PreparedWeight pw;
  pw.prepare(DType::bf16, w.data(), 1, 1, false);
  EXPECT_FALSE(pw.bf16_route());
  std::uint16_t out = 0xFFFF;
  pw.matmul_rows(x.data(), 1, &out);
  EXPECT_EQ(out, double_to_bf16(std::ldexp(1.0, -130)));
  EXPECT_NE(out, 0);
}

}  // namespace
