// The reference of the dispatch op (aclnnAlltoAllvGroupedMatMul, docs/dispatch-op.md):
// AlltoAllv -> Permute -> GroupedMatMul, plus the shared expert, written
// straight from the definition (an explicit all-to-all, an explicit permute,
// FP64 dot products), like reference.hpp for the combine op.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "reference/reference.hpp"

namespace gmmav::reference {

/// One rank's dispatch inputs. Same fields as the combine op's RankInputs, other meanings:
/// gmm_x is (BSK, h1), BSK = sum(send_counts), rows in ascending global expert g = d*e + j;
/// send_counts[d*e + j] rows go to rank d's local expert j; recv_counts[s*e + j] rows come
/// from rank s for local expert j.
using DispatchRankInputs = RankInputs;

struct DispatchRankOutputs {
  /// (A, h1), A = sum(recv_counts): the received rows, expert-major, source-minor; copies of
  /// the senders' gmmX rows (no arithmetic).
  std::vector<std::uint16_t> permute_out;
  Output gmm_y;  ///< (A, n1) = permute_out rows @ W_j, block by block
  Output mm_y;   ///< (bs, n2), empty without a shared expert
};

/// Every rank's permuteOut, gmmY and mmY. Throws std::invalid_argument when the
/// counts break the cross-rank contract recv@r[s*e + j] == send@s[r*e + j].
std::vector<DispatchRankOutputs> compute_dispatch(const Shapes& shapes, std::span<const DispatchRankInputs> ranks);

}  // namespace gmmav::reference
