// Synthetic cases: random valid counts and data for W ranks, run on an
// in-process group and checked against the reference. Shared by the tests,
// the CLI's `run` and the benchmarks.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "gmmav/gmmav.hpp"
#include "reference/reference.hpp"

namespace gmmav::reference {

enum class CountPattern : std::uint8_t {
  balanced,  ///< every (source, destination, expert) gets rows_per_rank / (e*W)
  random,    ///< uniform random counts, including zeros
  skewed,    ///< one hot expert gets most rows; some ranks send nothing
  edges,     ///< empty, single-row and small blocks side by side, and one hot block per source
};

enum class ValueKind : std::uint8_t {
  exact,   ///< small dyadic values: FP32 accumulation is exact, so results must match bit for bit
  random,  ///< uniform in [-1, 1]: results must be within the docs/spec.md §4 tolerance
};

struct CaseSpec {
  /// The operator. A combine case's counts and tensors are also a valid
  /// dispatch case (gmmX has sum(sendCounts) rows, y sum(recvCounts) in both).
  Op op = Op::combine;
  bool permute_out = false;  ///< dispatch only: also write permuteOut
  int world_size = 2;
  int local_experts = 2;
  std::int64_t rows_per_rank = 64;  ///< target A per rank (BS * K)
  std::int64_t h1 = 32, n1 = 24;
  DType dtype = DType::f16;
  bool trans_gmm_weight = false;
  bool shared_expert = false;
  std::int64_t bs = 0;  ///< shared expert rows; 0 = rows_per_rank / 2
  std::int64_t h2 = 32, n2 = 16;
  bool trans_mm_weight = false;
  CountPattern counts = CountPattern::random;
  ValueKind values = ValueKind::exact;
  std::uint64_t seed = 1;
};

struct RankData {
  std::vector<std::int64_t> send_counts, recv_counts;
  std::vector<std::uint16_t> gmm_x, gmm_weight, y, mm_x, mm_weight, mm_y;
  std::vector<std::uint16_t> permute_out;  ///< dispatch with permute_out: (sum(recv_counts), h1)
};

struct Case {
  CaseSpec spec;
  std::vector<RankData> ranks;
  ProblemDesc desc(int rank) const;
  OpTensors tensors(int rank);
  reference::Shapes shapes() const;
  std::vector<reference::RankInputs> reference_inputs() const;
};

/// Builds a valid case (counts satisfy the cross-rank contract). y/mmY are
/// filled with a sentinel pattern (0xA5A5) so unwritten rows show.
Case make_case(const CaseSpec& spec);

/// Runs every rank of `c` on a fresh in-process group, one thread per rank.
/// Returns each rank's error message (empty = success).
std::vector<std::string> run_in_process(Case& c, const GroupOptions& options = {});

/// Checks every rank's y and mmY (or only `rank`'s) against the reference of
/// the case's op; for the dispatch op also permuteOut, bit for bit (a copy).
struct CaseCheck {
  bool ok = true;
  double max_rel_error = 0, mean_rel_error = 0, max_abs_error = 0;
  double max_error_to_bound = 0, max_ulp_error = 0;  // as in reference::Comparison
  std::int64_t bit_differences = 0;
  std::string first_failure;
};
CaseCheck check_case(const Case& c, bool exact, int rank = -1);

const char* to_string(CountPattern p);

}  // namespace gmmav::reference
