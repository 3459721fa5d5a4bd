#include "engine/tile_schedule.hpp"

namespace gmmav::engine {

std::vector<RoutedTile> routed_tiles(const Plan& plan, int j) {
  std::vector<RoutedTile> tiles;
  const int W = plan.world_size();
  for (int i = 1; i <= W; ++i) {
    const int d = (plan.rank() + i) % W;
    const std::int64_t rows = plan.send_block_rows(j, d);
    const std::int64_t base = plan.send_block_offset(j, d);
    for (std::int64_t first = 0; first < rows; first += kTileRows)
      tiles.push_back({j, d, first, std::min(kTileRows, rows - first), base + first});
  }
  return tiles;
}

std::vector<SharedTile> shared_tiles(const Plan& plan) {
  std::vector<SharedTile> tiles;
  if (!plan.has_shared_expert()) return tiles;
  const std::int64_t bs = plan.desc().shared->bs;
  for (std::int64_t first = 0; first < bs; first += kTileRows) tiles.push_back({first, std::min(kTileRows, bs - first)});
  return tiles;
}

}  // namespace gmmav::engine
