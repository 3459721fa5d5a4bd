#include "engine/plan_log.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "engine/tile_schedule.hpp"
#include "gemm/chain_kernel.hpp"
#include "gemm/tile_matmul.hpp"

namespace gmmav::engine {
namespace {

// The GEMMs of one k x n weight by route (gemm/tile_matmul.hpp), each named with its kernel: up
// to kSmallMRows rows the chain kernel (its ISA path) on the weight as stored; more rows the chain
// kernel too where oneDNN has no FP32 brgemm (D24) or cannot take the shape (D65), else oneDNN on
// the packed weight (its implementation). BF16 with a native BF16 matmul: its native route when
// the GEMM's inputs allow it exactly, else the f32 route (decided per GEMM from the data).
struct Routes {
  std::size_t chain = 0, large = 0;
  std::int64_t largest = 0;
  void add(std::int64_t rows) {
    (rows > gemm::kSmallMRows ? large : chain) += 1;
    largest = std::max(largest, rows);
  }
  std::string text(DType dtype, std::int64_t k, std::int64_t n) const {
    const std::string chain_name = fmt::format("chain {}", gemm::chain_kernel_path());
    const bool fits = gemm::onednn_accepts(kTileRows, k, n);
    const bool bf16 = dtype == DType::bf16 && gemm::native_bf16_matmul() && fits;
    const bool f32_packs = gemm::f32_route_packs() && fits;
    const std::string f32 = f32_packs ? fmt::format("oneDNN f32 {}", gemm::onednn_impl(false)) : chain_name;
    const char* beyond = fits || large == 0 ? "" : ", the shape is beyond oneDNN's limits";
    if (bf16)
      return fmt::format("{} {} + {} oneDNN bf16 {} or {} (largest {} rows)", chain, chain_name, large, gemm::onednn_impl(true),
                         f32, largest);
    if (!f32_packs) return fmt::format("{} {} (largest {} rows{})", chain + large, chain_name, largest, beyond);
    return fmt::format("{} {} + {} {} (largest {} rows)", chain, chain_name, large, f32, largest);
  }
};

}  // namespace

std::string describe_call(const Plan& plan, const PackedWeights* packed, std::size_t workspace, std::size_t min_workspace) {
  const ProblemDesc& d = plan.desc();
  std::string out = fmt::format("rank {}/{} {} e={} A={} BSK={} H1={} N1={} tile={} rows{}", d.rank, d.world_size,
                                to_string(d.dtype), d.local_experts, plan.rows_in(), plan.rows_out(), d.h1, d.n1, kTileRows,
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
                       groups.size(), remote, routes.text(d.dtype, d.h1, d.n1));
  }
  if (d.shared) {
    Routes routes;
    const auto tiles = shared_tiles(plan);
    for (const SharedTile& t : tiles) routes.add(t.rows);
    out += fmt::format(" | shared expert: {} rows in {} GEMMs: {}", d.shared->bs, tiles.size(),
                       routes.text(d.dtype, d.shared->h2, d.shared->n2));
  }
  out += packed ? std::string(" | weights: PackedWeights (nothing packed in the call)")
         : gemm::packs_weights(d.dtype, d.h1, d.n1)
             ? fmt::format(" | weights: packed in the call for GEMMs of more than {} rows", gemm::kSmallMRows)
             : std::string(" | weights: read as stored (nothing converted or packed)");
  out += fmt::format(" | {}", gemm::isa_info());
  out += fmt::format(" | workspace {} B (backend minimum {} B)", workspace, min_workspace);
  return out;
}

}  // namespace gmmav::engine
