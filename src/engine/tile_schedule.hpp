// The tile pipeline's unit of work: row tiles of each (expert, destination)
// block, and row tiles of the shared expert. The decomposition depends only on
// the plan (never on thread count or backend), which is what keeps results
// bit-identical everywhere.
#pragma once

#include <cstdint>
#include <vector>

#include "gmmav/plan.hpp"

namespace gmmav::engine {

/// Rows per tile. Part of the numerics contract: every backend and thread count tiles the same way.
constexpr std::int64_t kTileRows = 128;

struct RoutedTile {
  int expert = 0;            // local expert j
  int dest = 0;              // destination rank d
  std::int64_t first = 0;    // first row within block (j, d)
  std::int64_t rows = 0;
  std::int64_t src_row = 0;  // gmmX row of the tile's first row
};

struct SharedTile {
  std::int64_t first = 0;  // first row of mmX / mmY
  std::int64_t rows = 0;
};

/// Tiles of expert j: remote blocks first, larger blocks first, ties in
/// rotated order starting after this rank (ranks spread over their peers).
std::vector<RoutedTile> routed_tiles(const Plan& plan, int j);
std::vector<SharedTile> shared_tiles(const Plan& plan);

}  // namespace gmmav::engine
