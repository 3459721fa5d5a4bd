#include "output_compare.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "numeric/half.hpp"
#include "reference/reference.hpp"

namespace gmmav::cli {
namespace {

bool is_nan(DType dtype, std::uint16_t b) {
  const std::uint16_t exp_mask = dtype == DType::f16 ? 0x7C00 : 0x7F80;
  const std::uint16_t man_mask = dtype == DType::f16 ? 0x03FF : 0x007F;
  return (b & exp_mask) == exp_mask && (b & man_mask) != 0;
}

}  // namespace

double value_of(DType dtype, std::uint16_t bits) { return numeric::to_float(dtype, bits); }

std::int64_t ulp_distance(std::uint16_t a, std::uint16_t b) {
  // Sign-magnitude -> a line of integers ordered like the values.
  auto ordered = [](std::uint16_t v) -> std::int64_t {
    const std::int64_t mag = v & 0x7FFF;
    return (v & 0x8000) ? -mag : mag;
  };
  return std::llabs(ordered(a) - ordered(b));
}

TensorComparison compare_tensor(DType dtype, std::span<const std::uint16_t> got, std::span<const std::uint16_t> expected,
                                std::int64_t cols, const CompareOptions& o, std::span<const double> abs_sums, std::int64_t k) {
  TensorComparison c;
  c.elements = static_cast<std::int64_t>(got.size());
  const double inf = std::numeric_limits<double>::infinity();
  const double u = std::ldexp(1.0, -24);
  const double kd = static_cast<double>(k);
  const double gamma = kd * u < 1 ? kd * u / (1 - kd * u) : inf;
  const bool have_sums = !abs_sums.empty();
  double rel_sum = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const std::uint16_t g = got[i], x = expected[i];
    double rel = 0, err = 0, allowance = 0;
    std::int64_t ulps = 0;
    if (g != x) {
      const bool gn = is_nan(dtype, g), xn = is_nan(dtype, x);
      if (gn && xn) {
        rel = 0;  // both NaN: same value, different payload
      } else if (gn || xn) {
        rel = err = inf;
        ulps = 0xFFFF;
      } else {
        const double gv = value_of(dtype, g), xv = value_of(dtype, x);
        err = gv == xv ? 0.0 : std::fabs(gv - xv);  // inf - inf is handled by the equality
        rel = err / std::max(std::fabs(xv), o.floor);
        if (std::isnan(rel)) rel = inf;  // err and the denominator both infinite
        ulps = ulp_distance(g, x);
        if (std::isfinite(gv) && std::isfinite(xv)) {  // an infinity that differs is never allowed
          allowance = reference::ulp(dtype, std::max(std::fabs(gv), std::fabs(xv)));
          if (have_sums) allowance += gamma * abs_sums[i];
        }
      }
    }
    const bool bad = o.exact ? g != x : (rel > o.tolerance && !(err <= allowance));
    // The element passes when err <= max(tolerance * max(|expected|, floor), allowance): its share of that.
    if (err > 0) {
      const double bound = std::max(rel > 0 ? o.tolerance * err / rel : 0.0, allowance);
      c.max_err_to_bound = std::max(c.max_err_to_bound, bound > 0 && std::isfinite(err) ? err / bound : inf);
    }
    rel_sum += rel;
    c.mare = std::max(c.mare, rel);
    c.max_ulp = std::max(c.max_ulp, ulps);
    if (bad) {
      if (c.mismatches == 0) {
        c.first_row = static_cast<std::int64_t>(i) / cols;
        c.first_col = static_cast<std::int64_t>(i) % cols;
        c.first_got = g;
        c.first_expected = x;
      }
      ++c.mismatches;
    }
  }
  c.mere = got.empty() ? 0 : rel_sum / static_cast<double>(got.size());
  c.pass = c.mismatches == 0 && (o.exact || c.mere <= o.tolerance);
  return c;
}

}  // namespace gmmav::cli
