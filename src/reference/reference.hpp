// The reference: an independent, deliberately simple implementation of the
// operator straight from docs/spec.md §1-§3 (per-rank GroupedMatMul in FP64, an
// explicit Unpermute into a send buffer, an explicit AlltoAllv), used by the
// tests, the CLI's verification and the benchmarks' checks.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "gmmav/types.hpp"

namespace gmmav::reference {

/// One rank's inputs (16-bit bit patterns, row-major).
struct RankInputs {
  std::vector<std::int64_t> send_counts, recv_counts;
  const std::uint16_t* gmm_x = nullptr;       // (A, h1)
  const std::uint16_t* gmm_weight = nullptr;  // (e, h1, n1) or (e, n1, h1)
  const std::uint16_t* mm_x = nullptr;        // (bs, h2), null = no shared expert
  const std::uint16_t* mm_weight = nullptr;   // (h2, n2) or (n2, h2)
  std::int64_t bs = 0;
};

struct Shapes {
  DType dtype = DType::f16;
  int world_size = 1;
  int local_experts = 1;
  std::int64_t h1 = 0, n1 = 0, h2 = 0, n2 = 0;
  bool trans_gmm_weight = false, trans_mm_weight = false;
};

/// One output tensor: the value rounded once (bits), the unrounded FP64 value,
/// and sum |a*b| over the dot product (for the FP32 accumulation bound).
struct Output {
  std::vector<std::uint16_t> bits;
  std::vector<double> exact;
  std::vector<double> abs_sum;
  std::int64_t k = 0;  // dot-product length
};

struct RankOutputs {
  Output y;
  Output mm_y;
};

/// Every rank's expected y and mmY.
std::vector<RankOutputs> compute(const Shapes& shapes, std::span<const RankInputs> ranks);

/// Result of comparing a computed tensor with the reference.
struct Comparison {
  std::int64_t elements = 0;
  std::int64_t mismatches = 0;       // outside the tolerance (or, if exact, not bit-equal)
  std::int64_t first_mismatch = -1;  // element index
  std::int64_t bit_differences = 0;  // elements whose bits differ from the reference rounding
  double max_abs_error = 0;          // vs the FP64 value
  double max_rel_error = 0;
  double mean_rel_error = 0;
  double max_error_to_bound = 0;  // worst |got - exact| / (1 ulp + FP32 accumulation bound): <= 1 passes
  double max_ulp_error = 0;       // worst |got - exact| in ulps of the output dtype at the exact value
  std::string first_mismatch_text;
  bool ok() const { return mismatches == 0; }
};

/// Compares `got` with `ref`. Tolerance per element (docs/spec.md §4): its rounding
/// (1 ulp of the output type at the value) plus the FP32 accumulation bound
/// k * 2^-24 / (1 - k * 2^-24) * sum|a*b|. With `exact`, any bit difference
/// from the reference's single rounding is a mismatch.
Comparison compare(DType dtype, std::span<const std::uint16_t> got, const Output& ref, bool exact);

/// Size of one ulp of `dtype` at magnitude |v| (subnormal spacing below the normal range).
double ulp(DType dtype, double v);
double to_double(DType dtype, std::uint16_t bits);

}  // namespace gmmav::reference
