#include "engine/plan_log.hpp"

#include <algorithm>
#include <map>

#include <fmt/format.h>

#include "engine/tile_schedule.hpp"
#include "gemm/chain_kernel.hpp"
#include "gemm/tile_matmul.hpp"

namespace gmmav::engine {
namespace {

// The GEMMs of one k x n weight by route (gemm::route_of, the gemm layer's one statement of the
// rule), each named with its kernel. A BF16 GEMM on the bf16 route leaves it when its inputs fail
// D8's exactness rule (decided per GEMM from the data): the line says where such GEMMs go.
struct Routes {
  std::map<gemm::Route, std::size_t> gemms;
  std::int64_t largest = 0;
  void add(DType dtype, std::int64_t rows, std::int64_t k, std::int64_t n) {
    ++gemms[gemm::route_of(dtype, rows, k, n)];
    largest = std::max(largest, rows);
  }
  std::string text(std::int64_t k, std::int64_t n) const {
    std::string out;
    for (const auto& [route, count] : gemms)
      out += fmt::format("{}{} {}", out.empty() ? "" : " + ", count, gemm::kernel_name(route));
    if (gemms.count(gemm::Route::onednn_bf16))
      out += fmt::format(" (off the bf16 route when the data are not exact: {} up to {} rows, else {})",
                         gemm::kernel_name(gemm::Route::chain), gemm::kSmallMRows,
                         gemm::kernel_name(gemm::route_of(DType::f16, gemm::kSmallMRows + 1, k, n)));
    const bool beyond = !gemm::onednn_accepts(kTileRows, k, n);
    return out + fmt::format(" (largest {} rows{})", largest, beyond ? ", the shape is beyond oneDNN's limits" : "");
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
      routes.add(d.dtype, g.rows, d.h1, d.n1);
      tiles += g.parts.size();
      remote += g.remote(d.rank) ? 1 : 0;
    }
    out += fmt::format(" | expert {}: {} rows, {} tiles in {} GEMMs ({} with rows for peers): {}", j, plan.group_rows(j), tiles,
                       groups.size(), remote, routes.text(d.h1, d.n1));
  }
  if (d.shared) {
    Routes routes;
    const auto tiles = shared_tiles(plan);
    for (const SharedTile& t : tiles) routes.add(d.dtype, t.rows, d.shared->h2, d.shared->n2);
    out += fmt::format(" | shared expert: {} rows in {} GEMMs: {}", d.shared->bs, tiles.size(),
                       routes.text(d.shared->h2, d.shared->n2));
  }
  out += packed ? std::string(" | weights: PackedWeights (nothing packed in the call)")
         : gemm::packs_weights(d.dtype, d.h1, d.n1)
             ? std::string(" | weights: packed in the call for the GEMMs on a oneDNN route")
             : std::string(" | weights: read as stored (nothing converted or packed)");
  out += fmt::format(" | {}", gemm::isa_info());
  out += fmt::format(" | workspace {} B (backend minimum {} B)", workspace, min_workspace);
  return out;
}

}  // namespace gmmav::engine
