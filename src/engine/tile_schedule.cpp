#include "engine/tile_schedule.hpp"

#include <algorithm>

#include "engine/compute_pool.hpp"

namespace gmmav::engine {

comm::Tiling tiling() { return comm::Tiling{kTileRows, ComputePool::instance().threads()}; }

std::vector<RoutedTile> routed_tiles(const Plan& plan, int j) {
  std::vector<RoutedTile> tiles;
  const int W = plan.world_size();
  // Remote blocks before the local one, larger blocks first (their transfers
  // take longest), ties in rotated order so ranks spread over their peers.
  std::vector<int> dests;
  for (int i = 1; i <= W; ++i) dests.push_back((plan.rank() + i) % W);
  std::stable_sort(dests.begin(), dests.end(), [&](int a, int b) {
    const bool la = a == plan.rank(), lb = b == plan.rank();
    if (la != lb) return lb;
    return plan.send_block_rows(j, a) > plan.send_block_rows(j, b);
  });
  for (int d : dests) {
    const std::int64_t rows = plan.send_block_rows(j, d);
    const std::int64_t base = plan.send_block_offset(j, d);
    for (std::int64_t first = 0; first < rows; first += kTileRows)
      tiles.push_back({j, d, first, std::min(kTileRows, rows - first), base + first});
  }
  return tiles;
}

std::vector<TileGroup> routed_groups(const Plan& plan, int j) {
  std::vector<TileGroup> groups;
  if (plan.desc().h1 < kMergeMinK) {
    for (const RoutedTile& t : routed_tiles(plan, j)) groups.push_back({t.src_row, t.rows, {t}});
    return groups;
  }
  // Walk the expert's rows in gmmX order (destination 0, 1, ...), tile by tile.
  for (int d = 0; d < plan.world_size(); ++d) {
    const std::int64_t rows = plan.send_block_rows(j, d);
    const std::int64_t base = plan.send_block_offset(j, d);
    for (std::int64_t first = 0; first < rows; first += kTileRows) {
      const RoutedTile t{j, d, first, std::min(kTileRows, rows - first), base + first};
      if (groups.empty() || groups.back().rows + t.rows > kTileRows || groups.back().src_row + groups.back().rows != t.src_row)
        groups.push_back({t.src_row, 0, {}});
      groups.back().rows += t.rows;
      groups.back().parts.push_back(t);
    }
  }
  std::stable_sort(groups.begin(), groups.end(), [&](const TileGroup& a, const TileGroup& b) {
    const bool ra = a.remote(plan.rank()), rb = b.remote(plan.rank());
    if (ra != rb) return ra;
    return a.rows > b.rows;
  });
  return groups;
}

std::vector<SharedTile> shared_tiles(const Plan& plan) {
  std::vector<SharedTile> tiles;
  if (!plan.has_shared_expert()) return tiles;
  const std::int64_t bs = plan.desc().shared->bs;
  for (std::int64_t first = 0; first < bs; first += kTileRows) tiles.push_back({first, std::min(kTileRows, bs - first)});
  return tiles;
}

}  // namespace gmmav::engine
