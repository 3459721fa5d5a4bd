// The validation rules of docs/spec.md §5 that concern counts, sizes and flags (not tensors).
#include <array>
#include <initializer_list>
#include <limits>
#include <string>

#include "common/fail.hpp"
#include "plan/rules.hpp"

namespace gmmav::detail {
namespace {

constexpr std::int64_t kMaxI64 = std::numeric_limits<std::int64_t>::max();

void check_range(const char* param, std::int64_t v, std::int64_t lo, std::int64_t hi) {
  if (v < lo || v > hi) fail(Errc::invalid_argument, param, "expected a value in [{}, {}], got {}", lo, hi, v);
}

// Sum of a count list; every element non-negative; no int64 overflow.
std::int64_t checked_sum(const char* param, const std::vector<std::int64_t>& counts) {
  std::int64_t sum = 0;
  for (std::size_t i = 0; i < counts.size(); ++i) {
    if (counts[i] < 0) fail(Errc::invalid_argument, param, "expected counts >= 0, got {} at index {}", counts[i], i);
    if (counts[i] > kMaxI64 - sum)
      fail(Errc::invalid_argument, param,
           "sum overflows int64: expected sum({}) <= {}, got counts [0..{}] = {} plus count [{}] = {}", param, kMaxI64, i - 1,
           sum, i, counts[i]);
    sum += counts[i];
  }
  return sum;
}

// a * b * c <= limit, for factors >= 0 (no product is formed before it is known to fit).
bool product_fits(std::int64_t limit, std::initializer_list<std::int64_t> factors) {
  for (std::int64_t f : factors)
    if (f == 0) return true;
  for (std::int64_t f : factors) {
    if (f > limit) return false;
    limit /= f;
  }
  return true;
}

void check_strict_a3(const ProblemDesc& d) {
  constexpr std::array<int, 5> kWorldSizes = {8, 16, 32, 64, 128};
  bool ok = false;
  for (int w : kWorldSizes) ok = ok || d.world_size == w;
  if (!ok)
    fail(Errc::invalid_argument, "epWorldSize", "expected one of 8, 16, 32, 64, 128 (GMMAV_STRICT_A3=1), got {}", d.world_size);
  constexpr std::int64_t kMin = 2LL << 20, kMax = 100LL << 20;
  const int e = d.local_experts;
  for (int list = 0; list < 2; ++list) {
    const auto& counts = list == 0 ? d.send_counts : d.recv_counts;
    const char* param = list == 0 ? "sendCounts" : "recvCounts";
    for (int r = 0; r < d.world_size; ++r) {
      std::int64_t rows = 0;
      for (int j = 0; j < e; ++j) rows += counts[static_cast<std::size_t>(r * e + j)];
      // Partial sums of a list whose sum fits; the product is checked too (not left to the checks before).
      std::int64_t bytes = 0;
      const bool fits = !__builtin_mul_overflow(rows, d.h1, &bytes) && !__builtin_mul_overflow(bytes, 2, &bytes);
      if (!fits || bytes < kMin || bytes > kMax)
        fail(Errc::invalid_argument, param,
             "expected the volume of rank block {} (rows * H1 * 2 bytes) in [2 MiB, 100 MiB] (GMMAV_STRICT_A3=1), got {}", r,
             fits ? std::to_string(bytes) + " bytes" : std::to_string(rows) + " * " + std::to_string(d.h1) + " * 2 bytes");
    }
  }
}

}  // namespace

void validate_problem(const ProblemDesc& d, Envelope envelope) {
  const bool hw = envelope != Envelope::native;  // the hardware limits apply
  if (d.op != Op::combine && d.op != Op::dispatch)
    fail(Errc::invalid_argument, "op", "expected Op::combine or Op::dispatch, got {}", static_cast<int>(d.op));
  const bool dispatch = d.op == Op::dispatch;
  if (!dispatch && d.permute_out)
    fail(Errc::invalid_argument, "permuteOutOptional",
         "expected no permuteOut for the combine op (only the dispatch op has one), got one");
  if (d.dtype != DType::f16 && d.dtype != DType::bf16)
    fail(Errc::invalid_argument, "gmmX", "expected dtype float16 or bfloat16, got {}", to_string(d.dtype));
  if (d.world_size < 1) fail(Errc::invalid_argument, "epWorldSize", "expected >= 1, got {}", d.world_size);
  if (d.rank < 0 || d.rank >= d.world_size)
    fail(Errc::invalid_argument, "rank", "expected a rank in [0, {}), got {}", d.world_size, d.rank);
  if (d.local_experts < 1) fail(Errc::invalid_argument, "gmmWeight", "expected e (dim 0) >= 1, got {}", d.local_experts);
  if (hw) check_range("gmmWeight", d.local_experts, 1, 32);
  const std::int64_t n = static_cast<std::int64_t>(d.local_experts) * d.world_size;
  if (hw && n > 256)
    fail(Errc::invalid_argument, "epWorldSize", "expected e * epWorldSize <= 256, got {} * {} = {}", d.local_experts,
         d.world_size, n);
  for (int list = 0; list < 2; ++list) {
    const auto& counts = list == 0 ? d.send_counts : d.recv_counts;
    const char* param = list == 0 ? "sendCounts" : "recvCounts";
    if (hw && counts.size() > 256) fail(Errc::invalid_argument, param, "expected length <= 256, got {}", counts.size());
    if (static_cast<std::int64_t>(counts.size()) != n)
      fail(Errc::invalid_argument, param, "expected length e * epWorldSize = {} * {} = {}, got {}", d.local_experts, d.world_size,
           n, counts.size());
  }
  const std::int64_t rows_in = checked_sum("sendCounts", d.send_counts);
  const std::int64_t rows_out = checked_sum("recvCounts", d.recv_counts);
  // The vendor's BSK (the tokens' rows, K per token) is y's rows for the
  // combine op and gmmX's for the dispatch op; the routed GEMMs run on the other side's rows.
  const std::int64_t bsk = dispatch ? rows_in : rows_out;
  const char* bsk_param = dispatch ? "sendCounts" : "recvCounts";
  const std::int64_t gemm_rows = dispatch ? rows_out : rows_in;
  const char* gemm_param = dispatch ? "recvCounts" : "sendCounts";
  if (d.h1 < 1) fail(Errc::invalid_argument, "gmmWeight", "expected H1 >= 1, got {}", d.h1);
  if (d.n1 < 1) fail(Errc::invalid_argument, "gmmWeight", "expected N1 >= 1, got {}", d.n1);
  if (hw) {
    check_range("gmmWeight", d.h1, 1, 65535);
    check_range("gmmWeight", d.n1, 1, 65535);
    if (bsk < 1 || bsk > 52428799)
      fail(Errc::invalid_argument, bsk_param, "expected BSK = sum({}) in [1, 52428799], got {}", bsk_param, bsk);
  }
  // Element counts must fit comfortably in int64 byte offsets.
  const auto fits = [](std::int64_t rows, std::int64_t cols) { return rows == 0 || cols <= kMaxI64 / 4 / rows; };
  if (!fits(rows_in, d.h1))
    fail(Errc::invalid_argument, "sendCounts", "expected gmmX to fit in memory offsets, got {} x {} elements", rows_in, d.h1);
  if (!fits(rows_out, d.n1))
    fail(Errc::invalid_argument, "recvCounts", "expected y to fit in memory offsets, got {} x {} elements", rows_out, d.n1);
  if (dispatch && !fits(rows_out, d.h1))
    fail(Errc::invalid_argument, "recvCounts", "expected permuteOut to fit in memory offsets, got {} x {} elements", rows_out,
         d.h1);
  // The weight's bytes (packed as FP32: 4 per element) and flops() must not wrap
  // either: a wrapped byte range would hide an overlap of y with the weight.
  if (!product_fits(kMaxI64 / 4, {d.local_experts, d.h1, d.n1}))
    fail(Errc::invalid_argument, "gmmWeight", "expected e * H1 * N1 <= 2^61 elements (memory offsets), got {} * {} * {}",
         d.local_experts, d.h1, d.n1);
  if (!product_fits(kMaxI64 / 2, {gemm_rows, d.h1, d.n1}))
    fail(Errc::invalid_argument, gemm_param,
         "expected 2 * A * H1 * N1 (the routed flops) to fit in int64, got A = {}, H1 = {}, N1 = {}", gemm_rows, d.h1, d.n1);

  if (d.shared) {
    const SharedExpertDesc& s = *d.shared;
    if (s.bs < 1) fail(Errc::invalid_argument, "mmXOptional", "expected BS (dim 0) >= 1, got {}", s.bs);
    if (s.h2 < 1) fail(Errc::invalid_argument, "mmWeightOptional", "expected H2 >= 1, got {}", s.h2);
    if (s.n2 < 1) fail(Errc::invalid_argument, "mmWeightOptional", "expected N2 >= 1, got {}", s.n2);
    if (!fits(s.bs, s.h2) || !fits(s.bs, s.n2) || !fits(s.h2, s.n2))
      fail(Errc::invalid_argument, "mmXOptional",
           "expected the shared-expert tensors to fit in memory offsets, got BS={} H2={} N2={}", s.bs, s.h2, s.n2);
    const std::int64_t routed_flops = 2 * gemm_rows * d.h1 * d.n1;  // fits: checked above
    if (!product_fits((kMaxI64 - routed_flops) / 2, {s.bs, s.h2, s.n2}))
      fail(Errc::invalid_argument, "mmXOptional",
           "expected 2 * A * H1 * N1 + 2 * BS * H2 * N2 (the call's flops) to fit in int64, got BS = {}, H2 = {}, N2 = {} (and A "
           "* H1 * N1 = {})",
           s.bs, s.h2, s.n2, gemm_rows * d.h1 * d.n1);
    if (hw) {
      check_range("mmWeightOptional", s.h2, 1, 12288);
      check_range("mmWeightOptional", s.n2, 1, 65535);
      if (bsk % s.bs != 0)
        fail(Errc::invalid_argument, "mmXOptional", "expected BSK = {} to be a multiple of BS, got BS = {}", bsk, s.bs);
      const std::int64_t k = bsk / s.bs;
      if (k < 2 || k > 8)
        fail(Errc::invalid_argument, "mmXOptional", "expected K = BSK / BS in [2, 8], got {} / {} = {}", bsk, s.bs, k);
    }
  }
  if (envelope == Envelope::strict_a3) check_strict_a3(d);
}

}  // namespace gmmav::detail
