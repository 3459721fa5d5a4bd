// The row layout of docs/spec.md §3 over count lists indexed [r*e + j] (rank r, local
// expert j): the Plan and every comm backend lay rows out from these, so they
// cannot disagree on where a block's rows are.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "gmmav/plan.hpp"

namespace gmmav::layout {

/// Blocks in g = r*e + j order: offset[g] = first row of block g. Returns the rows of all blocks.
inline std::int64_t by_global_expert(std::span<const std::int64_t> counts, std::span<std::int64_t> offset) {
  std::int64_t row = 0;
  for (std::size_t g = 0; g < counts.size(); ++g) {
    offset[g] = row;
    row += counts[g];
  }
  return row;
}

/// Blocks expert-major (j, then r): offset[r*e + j] = first row of block (r, j). Returns the rows of all blocks.
inline std::int64_t expert_major(std::span<const std::int64_t> counts, int e, std::span<std::int64_t> offset) {
  const std::size_t E = static_cast<std::size_t>(e), W = E ? counts.size() / E : 0;
  std::int64_t row = 0;
  for (std::size_t j = 0; j < E; ++j)
    for (std::size_t r = 0; r < W; ++r) {
      offset[r * E + j] = row;
      row += counts[r * E + j];
    }
  return row;
}

// The dispatch op is the combine op's transpose (docs/dispatch-op.md): the combine
// op's gmmX and the dispatch op's y/permuteOut are expert-major; the combine op's y
// and the dispatch op's gmmX are ordered by global expert.

/// The send side (gmmX) of `op`, from the send counts [d*e + j]: offset per block, returns A (combine) or BSK (dispatch).
inline std::int64_t send_layout(Op op, std::span<const std::int64_t> send_counts, int e, std::span<std::int64_t> offset) {
  return op == Op::combine ? expert_major(send_counts, e, offset) : by_global_expert(send_counts, offset);
}

/// The receive side (y, permuteOut) of `op`, from the recv counts [s*e + j]: offset per block, returns BSK or A.
inline std::int64_t recv_layout(Op op, std::span<const std::int64_t> recv_counts, int e, std::span<std::int64_t> offset) {
  return op == Op::combine ? by_global_expert(recv_counts, offset) : expert_major(recv_counts, e, offset);
}

/// G_j, the rows expert j's GEMM takes: the rows this rank sends for it (combine op)
/// or receives for it (dispatch op), summed over the ranks.
inline std::vector<std::int64_t> group_rows(Op op, std::span<const std::int64_t> send_counts,
                                            std::span<const std::int64_t> recv_counts, int e) {
  const std::span<const std::int64_t> counts = op == Op::combine ? send_counts : recv_counts;
  const std::size_t E = static_cast<std::size_t>(e);
  std::vector<std::int64_t> rows(E, 0);
  if (E == 0) return rows;
  for (std::size_t g = 0; g < counts.size(); ++g) rows[g % E] += counts[g];
  return rows;
}

}  // namespace gmmav::layout
