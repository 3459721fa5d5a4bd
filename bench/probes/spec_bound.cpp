#include "spec_bound.hpp"

#include <algorithm>
#include <cmath>

#include "gmmav/plan.hpp"
#include "reference/reference.hpp"

namespace gmmav::bench {
namespace {

// ||row||_2 of each row of a (rows x cols) matrix; ||column||_2 of each column.
std::vector<double> row_norms(DType t, const std::uint16_t* m, std::int64_t rows, std::int64_t cols) {
  std::vector<double> n(static_cast<std::size_t>(rows));
  for (std::int64_t i = 0; i < rows; ++i) {
    double s = 0;
    for (std::int64_t k = 0; k < cols; ++k) {
      const double v = reference::to_double(t, m[i * cols + k]);
      s += v * v;
    }
    n[static_cast<std::size_t>(i)] = std::sqrt(s);
  }
  return n;
}

std::vector<double> col_norms(DType t, const std::uint16_t* m, std::int64_t rows, std::int64_t cols) {
  std::vector<double> s(static_cast<std::size_t>(cols), 0.0);
  for (std::int64_t i = 0; i < rows; ++i)
    for (std::int64_t k = 0; k < cols; ++k) {
      const double v = reference::to_double(t, m[i * cols + k]);
      s[static_cast<std::size_t>(k)] += v * v;
    }
  for (double& x : s) x = std::sqrt(x);
  return s;
}

// The weight's norms over K for each output column n: (K, N) stored -> column norms; (N, K) -> row norms.
std::vector<double> k_norms(DType t, const std::uint16_t* w, std::int64_t k, std::int64_t n, bool transposed) {
  return transposed ? row_norms(t, w, n, k) : col_norms(t, w, k, n);
}

double gamma(std::int64_t k) {
  const double u = std::ldexp(static_cast<double>(k), -24);
  return u / (1 - u);
}

// Elements where |a - b| exceeds twice one result's docs/spec.md §4 tolerance (the ulp taken at twice the larger
// magnitude, so it is never below the ulp at the exact value).
std::int64_t count_violations(DType t, const std::vector<std::uint16_t>& a, const std::vector<std::uint16_t>& b,
                              std::int64_t cols, std::int64_t k, const std::vector<double>& row_norm,
                              const std::vector<const std::vector<double>*>& col_norm_of_row) {
  const double g = gamma(k);
  std::int64_t bad = 0;
  for (std::size_t e = 0; e < a.size() && e < b.size(); ++e) {
    if (a[e] == b[e]) continue;
    const auto row = static_cast<std::size_t>(static_cast<std::int64_t>(e) / cols);
    const auto col = static_cast<std::size_t>(static_cast<std::int64_t>(e) % cols);
    const double x = reference::to_double(t, a[e]), y = reference::to_double(t, b[e]);
    const double bound =
        2 * (reference::ulp(t, 2 * std::max(std::fabs(x), std::fabs(y))) + g * row_norm[row] * (*col_norm_of_row[row])[col]);
    if (!(std::fabs(x - y) <= bound)) ++bad;  // NaN counts as a violation
  }
  return bad;
}

}  // namespace

SpecBoundBetweenResults::SpecBoundBetweenResults(const reference::Case& kase) : kase_(kase) {
  const reference::CaseSpec& s = kase.spec;
  const int W = s.world_size, e = s.local_experts;
  std::vector<Plan> plans;
  for (int r = 0; r < W; ++r) plans.push_back(Plan::create(kase.desc(r)));
  w_col_norm_.resize(static_cast<std::size_t>(W));
  for (int r = 0; r < W; ++r)
    for (int j = 0; j < e; ++j)
      w_col_norm_[static_cast<std::size_t>(r)].push_back(k_norms(
          s.dtype, kase.ranks[static_cast<std::size_t>(r)].gmm_weight.data() + j * s.h1 * s.n1, s.h1, s.n1, s.trans_gmm_weight));
  // y row of rank d, block (s, j), k-th row <- gmmX row send_block_offset(j, d) + k of rank s (docs/spec.md §3).
  y_row_norm_.resize(static_cast<std::size_t>(W));
  y_row_weight_.resize(static_cast<std::size_t>(W));
  std::vector<std::vector<double>> x_norm;
  for (int r = 0; r < W; ++r)
    x_norm.push_back(row_norms(s.dtype, kase.ranks[static_cast<std::size_t>(r)].gmm_x.data(),
                               plans[static_cast<std::size_t>(r)].rows_in(), s.h1));
  for (int d = 0; d < W; ++d) {
    const Plan& pd = plans[static_cast<std::size_t>(d)];
    auto& norms = y_row_norm_[static_cast<std::size_t>(d)];
    auto& weights = y_row_weight_[static_cast<std::size_t>(d)];
    norms.resize(static_cast<std::size_t>(pd.rows_out()));
    weights.resize(norms.size());
    for (int src = 0; src < W; ++src)
      for (int j = 0; j < e; ++j) {
        const std::int64_t first = pd.recv_block_offset(src, j),
                           from = plans[static_cast<std::size_t>(src)].send_block_offset(j, d);
        for (std::int64_t k = 0; k < pd.recv_block_rows(src, j); ++k) {
          norms[static_cast<std::size_t>(first + k)] = x_norm[static_cast<std::size_t>(src)][static_cast<std::size_t>(from + k)];
          weights[static_cast<std::size_t>(first + k)] = &w_col_norm_[static_cast<std::size_t>(src)][static_cast<std::size_t>(j)];
        }
      }
  }
  if (s.shared_expert)
    for (int r = 0; r < W; ++r) {
      const reference::RankData& rd = kase.ranks[static_cast<std::size_t>(r)];
      mm_row_norm_.push_back(row_norms(s.dtype, rd.mm_x.data(), s.bs, s.h2));
      mm_col_norm_.push_back(k_norms(s.dtype, rd.mm_weight.data(), s.h2, s.n2, s.trans_mm_weight));
    }
}

std::int64_t SpecBoundBetweenResults::y_violations(int r, const std::vector<std::uint16_t>& a,
                                                   const std::vector<std::uint16_t>& b) const {
  const auto q = static_cast<std::size_t>(r);
  return count_violations(kase_.spec.dtype, a, b, kase_.spec.n1, kase_.spec.h1, y_row_norm_[q], y_row_weight_[q]);
}

std::int64_t SpecBoundBetweenResults::mm_y_violations(int r, const std::vector<std::uint16_t>& a,
                                                      const std::vector<std::uint16_t>& b) const {
  const auto q = static_cast<std::size_t>(r);
  const std::vector<const std::vector<double>*> cols(mm_row_norm_[q].size(), &mm_col_norm_[q]);
  return count_violations(kase_.spec.dtype, a, b, kase_.spec.n2, kase_.spec.h2, mm_row_norm_[q], cols);
}

}  // namespace gmmav::bench
