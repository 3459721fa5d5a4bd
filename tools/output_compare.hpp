// Comparing a computed 16-bit output tensor with an expected one (`gmmav verify`).
//
// Relative error of an element (the vendor's MERE/MARE, with a floor):
//   rel = |got - expected| / max(|expected|, floor)
// The floor (default 1e-3) keeps exact and near zeros from exploding: below it
// the error is measured against the floor, i.e. as an absolute error.
// MERE = mean of rel over the tensor, MARE = max of rel.
//
// An element is a mismatch when rel > tolerance AND its error exceeds what
// docs/spec.md §4 allows a correct implementation (FP32 accumulation, one rounding)
// against an FP64 result rounded once:
//   allowance = 1 ulp + gamma_K * sum_k |a_k * b_k|,  gamma_K = K u / (1 - K u), u = 2^-24
// One ulp is the output's own rounding step (for BF16 alone it is a relative
// error of 0.39-0.78 %, above the vendor's 0.5 % bar); the second term is the
// FP32 accumulation bound, which dominates near zero after cancellation.
// Without the sums |a*b| (empty `abs_sums`) the allowance is 1 ulp.
// The tensor passes when MERE <= tolerance and there is no mismatch.
// With `exact`, every element must be bit-identical (NaNs compare by bits).
#pragma once

#include <cstdint>
#include <span>

#include "gmmav/types.hpp"

namespace gmmav::cli {

struct CompareOptions {
  bool exact = false;
  double tolerance = 0.005;
  double floor = 1e-3;
};

struct TensorComparison {
  std::int64_t elements = 0;
  std::int64_t mismatches = 0;
  double mere = 0;
  double mare = 0;
  std::int64_t max_ulp = 0;  // largest distance in representable values
  // Worst element error as a share of what it may be: max(tolerance * max(|expected|, floor),
  // 1 ulp + accumulation bound). An element passes when <= 1 (not used with `exact`).
  double max_err_to_bound = 0;
  // The first mismatching element (row-major), if any.
  std::int64_t first_row = -1, first_col = -1;
  std::uint16_t first_got = 0, first_expected = 0;
  bool pass = true;
};

/// Compares `got` with `expected` (same size; `cols` elements per row).
/// `abs_sums` (same size, or empty): each element's sum |a_k * b_k| over its
/// dot product of length `k`, in FP64 (a 16-bit sum would overflow).
TensorComparison compare_tensor(DType dtype, std::span<const std::uint16_t> got, std::span<const std::uint16_t> expected,
                                std::int64_t cols, const CompareOptions& options, std::span<const double> abs_sums = {},
                                std::int64_t k = 0);

/// Distance between two 16-bit floats in units of representable values
/// (+0 and -0 are the same value). Not meaningful for NaN.
std::int64_t ulp_distance(std::uint16_t a, std::uint16_t b);

/// The value of a 16-bit pattern of `dtype` as a double (exact).
double value_of(DType dtype, std::uint16_t bits);

}  // namespace gmmav::cli
