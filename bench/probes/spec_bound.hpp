// Whether two results of the operator can both be within docs/spec.md §4 of the exact
// value, decided without the FP64 reference (too slow above ~2 GFLOP): each
// result is within 1 ulp + gamma_K * sum|a_k b_k| of it, and Cauchy-Schwarz
// bounds sum|a_k b_k| by ||a||_2 ||b||_2, so two results may differ by at most
// twice that. Row norms of gmmX / mmX and column norms of the weights cost one
// pass over the inputs. Looser than the reference check (by ~1.3x for random
// data), so it catches wrong layouts and low-precision accumulation, not 1-ulp
// rounding differences.
#pragma once

#include <cstdint>
#include <vector>

#include "reference/synthetic_case.hpp"

namespace gmmav::bench {

class SpecBoundBetweenResults {
 public:
  explicit SpecBoundBetweenResults(const reference::Case& kase);

  /// Elements of rank r's y (row-major, BSK x N1) where `a` and `b` differ by more than the bound.
  std::int64_t y_violations(int r, const std::vector<std::uint16_t>& a, const std::vector<std::uint16_t>& b) const;
  /// The same for rank r's mmY (BS x N2).
  std::int64_t mm_y_violations(int r, const std::vector<std::uint16_t>& a, const std::vector<std::uint16_t>& b) const;

 private:
  const reference::Case& kase_;
  std::vector<std::vector<std::vector<double>>> w_col_norm_;           // [source rank][expert][n]: ||weight column||
  std::vector<std::vector<double>> y_row_norm_;                        // [rank][y row]: ||the gmmX row behind it||
  std::vector<std::vector<const std::vector<double>*>> y_row_weight_;  // [rank][y row]: its weight's column norms
  std::vector<std::vector<double>> mm_row_norm_, mm_col_norm_;         // [rank][row], [rank][n]
};

}  // namespace gmmav::bench
