#include "engine/plan_log.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "engine/tile_schedule.hpp"
#include "gemm/small_m_kernel.hpp"

namespace gmmav::engine {
namespace {

// The GEMMs of one weight by route (gemm/tile_matmul.hpp): up to kSmallMRows rows the small-M
// kernel on the weight as stored; more rows oneDNN on the packed weight (BF16: its native route
// when the GEMM's inputs allow it exactly, else the f32 route — decided per GEMM from the data).
struct Routes {
  std::size_t small_m = 0, onednn = 0;
  std::int64_t largest = 0;
  void add(std::int64_t rows) {
    (rows > gemm::kSmallMRows ? onednn : small_m) += 1;
    largest = std::max(largest, rows);
  }
  std::string text(DType dtype) const {
    return fmt::format("{} small-M + {} oneDNN {} (largest {} rows)", small_m, onednn, dtype == DType::bf16 ? "bf16-or-f32" : "f32",
                       largest);
  }
};

}  // namespace

std::string describe_call(const Plan& plan, const PackedWeights* packed, std::size_t workspace, std::size_t min_workspace) {
  const ProblemDesc& d = plan.desc();
  std::string out = fmt::format("rank {}/{} {} e={} A={} BSK={} H1={} N1={} tile={} rows{}", d.rank, d.world_size, to_string(d.dtype),
                                d.local_experts, plan.rows_in(), plan.rows_out(), d.h1, d.n1, kTileRows,
                                d.h1 >= kMergeMinK ? ", small tiles merged (H1 >= 256)" : "");
  for (int j = 0; j < d.local_experts; ++j) {
    if (plan.group_rows(j) == 0) {
      out += fmt::format(" | expert {}: no rows", j);
      continue;
    }
    const auto groups = routed_groups(plan, j);
    Routes routes;
    std::size_t tiles = 0, remote = 0;
    for (const TileGroup& g : groups) {
      routes.add(g.rows);
      tiles += g.parts.size();
      remote += g.remote(d.rank) ? 1 : 0;
    }
    out += fmt::format(" | expert {}: {} rows, {} tiles in {} GEMMs ({} with rows for peers): {}", j, plan.group_rows(j), tiles,
                       groups.size(), remote, routes.text(d.dtype));
  }
  if (d.shared) {
    Routes routes;
    const auto tiles = shared_tiles(plan);
    for (const SharedTile& t : tiles) routes.add(t.rows);
    out += fmt::format(" | shared expert: {} rows in {} GEMMs: {}", d.shared->bs, tiles.size(), routes.text(d.dtype));
  }
  out += packed ? " | weights: PackedWeights (nothing packed in the call)" : " | weights: converted/packed in the call";
  out += fmt::format(" | workspace {} B (backend minimum {} B)", workspace, min_workspace);
  return out;
}

}  // namespace gmmav::engine
