// The tile pipeline's unit of work: row tiles of each (expert, destination)
// block, and row tiles of the shared expert. The decomposition depends only on
// the plan (never on thread count or backend), which is what keeps results
// bit-identical everywhere.
#pragma once

#include <cstdint>
#include <vector>

#include "comm/communicator.hpp"
#include "gmmav/plan.hpp"

namespace gmmav::engine {

/// Rows per tile. Part of the numerics contract: every backend and thread count tiles the same way.
constexpr std::int64_t kTileRows = 128;

/// What a backend is told about the cut (comm::Tiling): kTileRows, and the
/// threads of the process's pool that compute a call (they call the Exchange at once).
comm::Tiling tiling();

struct RoutedTile {
  int expert = 0;          // local expert j
  int dest = 0;            // destination rank d
  std::int64_t first = 0;  // first row within block (j, d)
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

/// Contraction length from which small tiles of one expert are merged into
/// one GEMM (below it the copy out of the merged result would cost about as
/// much as the GEMM itself).
constexpr std::int64_t kMergeMinK = 256;

/// Tiles of one expert that run as one GEMM: consecutive tiles of its rows in
/// gmmX (blocks in destination order), packed while their rows fit in
/// kTileRows. Many small blocks (many ranks, few rows each) would otherwise
/// each stream the whole weight through the cache for a few rows. Every part
/// is still one tile: its own rows_for, message and tag.
struct TileGroup {
  std::int64_t src_row = 0;  // gmmX row of the first part's first row
  std::int64_t rows = 0;     // sum of the parts' rows (contiguous in gmmX)
  std::vector<RoutedTile> parts;
  bool remote(int me) const {
    for (const RoutedTile& t : parts)
      if (t.dest != me) return true;
    return false;
  }
};

/// The GEMMs of expert j: with h1 >= kMergeMinK, merged groups (those with a
/// remote part first, larger first, stable); otherwise one group per tile of
/// routed_tiles, in its order. Depends only on the plan.
std::vector<TileGroup> routed_groups(const Plan& plan, int j);
std::vector<SharedTile> shared_tiles(const Plan& plan);

/// The most rows of any of these GEMMs (TileGroup or SharedTile; 0 for none): what decides which
/// copies of their weight are packed (gemm::packing_for).
template <class Gemm>
std::int64_t max_rows(const std::vector<Gemm>& gemms) {
  std::int64_t m = 0;
  for (const Gemm& g : gemms) m = g.rows > m ? g.rows : m;
  return m;
}

}  // namespace gmmav::engine
