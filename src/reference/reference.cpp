#include "reference/reference.hpp"

#include <cmath>
#include <cstdio>
#include <limits>
#include <stdexcept>

#include "numeric/half.hpp"
#include "reference/fp64_rows.hpp"

namespace gmmav::reference {

double to_double(DType dtype, std::uint16_t bits) { return numeric::to_float(dtype, bits); }

double ulp(DType dtype, double v) {
  const int man = dtype == DType::f16 ? 10 : 7;
  const int emin = dtype == DType::f16 ? -14 : -126;
  const double a = std::fabs(v);
  if (a == 0) return std::ldexp(1.0, emin - man);  // frexp(0) gives exponent 0: that would be the ulp at 0.5
  int e2 = 0;
  std::frexp(a, &e2);
  const int E = std::max(e2 - 1, emin);
  return std::ldexp(1.0, E - man);
}

std::uint16_t round_once(DType dtype, double v) { return numeric::from_double(dtype, v); }

// out row = x row @ W, in FP64; w is k x n or n x k (trans).
void dot_rows(DType dt, const std::uint16_t* x, std::int64_t rows, std::int64_t k, const std::uint16_t* w, std::int64_t n,
              bool trans, Output& out, std::int64_t out_row) {
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t c = 0; c < n; ++c) {
      double s = 0, a = 0;
      for (std::int64_t i = 0; i < k; ++i) {
        const double xv = to_double(dt, x[r * k + i]);
        const double wv = to_double(dt, trans ? w[c * k + i] : w[i * n + c]);
        s += xv * wv;
        a += std::fabs(xv * wv);
      }
      const std::size_t idx = static_cast<std::size_t>((out_row + r) * n + c);
      out.exact[idx] = s;
      out.abs_sum[idx] = a;
      out.bits[idx] = round_once(dt, s);
    }
  }
}

void resize(Output& o, std::int64_t elems, std::int64_t k) {
  o.bits.assign(static_cast<std::size_t>(elems), 0);
  o.exact.assign(static_cast<std::size_t>(elems), 0);
  o.abs_sum.assign(static_cast<std::size_t>(elems), 0);
  o.k = k;
}

std::vector<RankOutputs> compute(const Shapes& sh, std::span<const RankInputs> ranks) {
  const int W = sh.world_size, e = sh.local_experts;
  if (static_cast<int>(ranks.size()) != W) throw std::invalid_argument("reference: one RankInputs per rank expected");
  const std::int64_t n1 = sh.n1, h1 = sh.h1;
  // 1. GroupedMatMul per rank: gmmY rows in gmmX order (expert-major).
  std::vector<Output> gmm_y(static_cast<std::size_t>(W));
  std::vector<RankOutputs> out(static_cast<std::size_t>(W));
  for (int r = 0; r < W; ++r) {
    const RankInputs& in = ranks[static_cast<std::size_t>(r)];
    std::int64_t a = 0;
    for (auto c : in.send_counts) a += c;
    resize(gmm_y[static_cast<std::size_t>(r)], a * n1, h1);
    std::int64_t row = 0;
    for (int j = 0; j < e; ++j) {
      std::int64_t g = 0;
      for (int d = 0; d < W; ++d) g += in.send_counts[static_cast<std::size_t>(d * e + j)];
      dot_rows(sh.dtype, in.gmm_x + row * h1, g, h1, in.gmm_weight + static_cast<std::int64_t>(j) * h1 * n1, n1,
               sh.trans_gmm_weight, gmm_y[static_cast<std::size_t>(r)], row);
      row += g;
    }
    if (in.mm_x != nullptr) {
      resize(out[static_cast<std::size_t>(r)].mm_y, in.bs * sh.n2, sh.h2);
      dot_rows(sh.dtype, in.mm_x, in.bs, sh.h2, in.mm_weight, sh.n2, sh.trans_mm_weight, out[static_cast<std::size_t>(r)].mm_y,
               0);
    }
  }
  // 2. Unpermute: sendBuf = concat_d concat_j block(j, d), as row indices into gmmY.
  std::vector<std::vector<std::vector<std::int64_t>>> send_rows(static_cast<std::size_t>(W));  // [r][d] -> rows
  for (int r = 0; r < W; ++r) {
    const RankInputs& in = ranks[static_cast<std::size_t>(r)];
    std::vector<std::int64_t> block_start(static_cast<std::size_t>(e * W));
    std::int64_t row = 0;
    for (int j = 0; j < e; ++j)
      for (int d = 0; d < W; ++d) {
        block_start[static_cast<std::size_t>(j * W + d)] = row;
        row += in.send_counts[static_cast<std::size_t>(d * e + j)];
      }
    send_rows[static_cast<std::size_t>(r)].resize(static_cast<std::size_t>(W));
    for (int d = 0; d < W; ++d)
      for (int j = 0; j < e; ++j)
        for (std::int64_t i = 0; i < in.send_counts[static_cast<std::size_t>(d * e + j)]; ++i)
          send_rows[static_cast<std::size_t>(r)][static_cast<std::size_t>(d)].push_back(
              block_start[static_cast<std::size_t>(j * W + d)] + i);
  }
  // 3. AlltoAllv: y on rank d = concat_s (what s sends to d).
  for (int d = 0; d < W; ++d) {
    std::int64_t bsk = 0;
    for (auto c : ranks[static_cast<std::size_t>(d)].recv_counts) bsk += c;
    Output& y = out[static_cast<std::size_t>(d)].y;
    resize(y, bsk * n1, h1);
    std::int64_t row = 0;
    for (int s = 0; s < W; ++s) {
      for (std::int64_t src : send_rows[static_cast<std::size_t>(s)][static_cast<std::size_t>(d)]) {
        if (row >= bsk) throw std::invalid_argument("reference: recvCounts smaller than what peers send");
        const Output& g = gmm_y[static_cast<std::size_t>(s)];
        for (std::int64_t c = 0; c < n1; ++c) {
          const auto di = static_cast<std::size_t>(row * n1 + c), si = static_cast<std::size_t>(src * n1 + c);
          y.bits[di] = g.bits[si];
          y.exact[di] = g.exact[si];
          y.abs_sum[di] = g.abs_sum[si];
        }
        ++row;
      }
    }
    if (row != bsk) throw std::invalid_argument("reference: recvCounts larger than what peers send");
  }
  return out;
}

Comparison compare(DType dtype, std::span<const std::uint16_t> got, const Output& ref, bool exact) {
  Comparison c;
  c.elements = static_cast<std::int64_t>(got.size());
  if (got.size() != ref.bits.size()) {
    c.mismatches = c.elements ? c.elements : 1;
    c.first_mismatch = 0;
    c.first_mismatch_text = "size differs from the reference";
    return c;
  }
  const double u = std::ldexp(1.0, -24);
  const double gamma = ref.k * u / (1 - ref.k * u);
  double rel_sum = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double g = to_double(dtype, got[i]);
    const double v = ref.exact[i];
    const double err = std::fabs(g - v);
    const bool bits_differ = got[i] != ref.bits[i];
    c.bit_differences += bits_differ;
    const double one_ulp = ulp(dtype, v);
    const double bound = one_ulp + gamma * ref.abs_sum[i];
    bool bad = exact ? bits_differ : !(err <= bound);
    if (std::isnan(g) != std::isnan(v)) bad = true;
    if (std::isnan(g) && std::isnan(v)) bad = false;
    if (std::isnan(g) != std::isnan(v)) {
      c.max_error_to_bound = c.max_ulp_error = std::numeric_limits<double>::infinity();
    } else if (!std::isnan(err)) {
      c.max_error_to_bound = std::max(c.max_error_to_bound, err / bound);
      c.max_ulp_error = std::max(c.max_ulp_error, err / one_ulp);
    }
    const double rel = v != 0 ? err / std::fabs(v) : (g == 0 ? 0.0 : 1.0);
    if (!std::isnan(err)) {
      c.max_abs_error = std::max(c.max_abs_error, err);
      c.max_rel_error = std::max(c.max_rel_error, rel);
      rel_sum += rel;
    }
    if (bad) {
      if (c.mismatches == 0) {
        c.first_mismatch = static_cast<std::int64_t>(i);
        char buf[160];
        std::snprintf(buf, sizeof buf, "element %zu: got %.9g (0x%04x), expected %.9g (0x%04x, exact %.17g)", i, g, got[i],
                      to_double(dtype, ref.bits[i]), ref.bits[i], v);
        c.first_mismatch_text = buf;
      }
      ++c.mismatches;
    }
  }
  c.mean_rel_error = got.empty() ? 0 : rel_sum / static_cast<double>(got.size());
  return c;
}

}  // namespace gmmav::reference
