// The engine's pipeline for the dispatch op (docs/dispatch-op.md): AlltoAllv
// -> Permute -> GroupedMatMul, plus the shared-expert MatMul.
//
// Communicate first, then compute: every row tile of gmmX is copied straight
// into the place the Exchange names for it (a peer's permuteOut or receive
// buffer in-process, a staging slot on its way to the peer under MPI); the
// Exchange lays received rows out expert-major, source-minor, so the permute
// is only an address computation. While the rows travel, the shared expert
// computes and the first expert's weight is prepared; each expert's GEMMs then
// run on row tiles of its contiguous group as soon as that group's rows are in
// (where the backend reports arrivals; else once every row is in).
//
// Tiles of the routed GEMMs are cut at multiples of kTileRows from the start
// of each expert's group: the cut depends only on the plan, so results are
// bit-identical across backends, thread counts and rank placements (D3).
#include <algorithm>
#include <cstring>
#include <functional>
#include <vector>

#include "common/fail.hpp"
#include "engine/compute_pool.hpp"
#include "engine/packed_weights.hpp"
#include "engine/pipeline.hpp"
#include "engine/shared_tile.hpp"
#include "engine/tile_schedule.hpp"
#include "gemm/tile_matmul.hpp"

namespace gmmav::engine {
namespace {

const std::uint16_t* u16(const void* p) { return static_cast<const std::uint16_t*>(p); }

struct GroupTile {
  std::int64_t first;  // row of the received rows (and of gmmY)
  std::int64_t rows;
};

// Expert j's group cut into tiles of kTileRows from its start (the cut of D3).
std::vector<GroupTile> group_tiles(const Plan& plan, int j) {
  std::vector<GroupTile> tiles;
  const std::int64_t base = plan.recv_block_offset(0, j), rows = plan.group_rows(j);
  for (std::int64_t first = 0; first < rows; first += kTileRows)
    tiles.push_back({base + first, std::min(kTileRows, rows - first)});
  return tiles;
}

}  // namespace

void compute_dispatch(const Plan& plan, const OpTensors& t, comm::Exchange& ex, const std::byte* received,
                      const PackedWeights* packed_weights) {
  if (plan.op() != Op::dispatch) fail(Errc::internal, "op", "expected a dispatch plan, got {}", to_string(plan.op()));
  const detail::PackedWeightsData* packed = packed_weights ? &detail::check_packed(*packed_weights, plan, t) : nullptr;
  auto& pool = ComputePool::instance();
  std::function<void()> poll;
  if (ex.needs_poll()) poll = [&ex] { ex.poll(); };
  const ProblemDesc& d = plan.desc();
  const int e = d.local_experts;
  const std::size_t row_bytes = static_cast<std::size_t>(d.h1) * element_size(d.dtype);

  // 1. Send: every tile of gmmX to where its rows go (remote blocks first,
  // larger first: routed_tiles' order), with the shared expert's tiles and the
  // first expert's weight preparation in the same job, after them: they fill
  // the time the rows take to arrive.
  std::vector<RoutedTile> sends;
  for (int j = 0; j < e; ++j) {
    auto tiles = routed_tiles(plan, j);
    sends.insert(sends.end(), tiles.begin(), tiles.end());
  }
  std::stable_sort(sends.begin(), sends.end(),
                   [me = plan.rank()](const RoutedTile& a, const RoutedTile& b) { return (a.dest != me) > (b.dest != me); });
  const auto shared = shared_tiles(plan);
  gemm::PreparedWeight prepared[2];
  std::vector<int> experts;  // with rows, in order
  for (int j = 0; j < e; ++j)
    if (plan.group_rows(j) > 0) experts.push_back(j);
  const auto weight_of = [&](int j) -> const std::uint16_t* {
    return u16(t.gmm_weight.data) + static_cast<std::int64_t>(j) * d.h1 * d.n1;
  };
  const auto prepare = [&](std::size_t k) {  // the k-th expert with rows, into slot k % 2
    const int j = experts[k];
    prepared[k % 2].prepare(d.dtype, weight_of(j), d.h1, d.n1, d.trans_gmm_weight,
                            gemm::packing_for(d.dtype, plan.group_rows(j), d.h1, d.n1));
  };
  const bool prepare_first = !packed && !experts.empty();
  const bool prepare_shared = d.shared && !packed;
  gemm::PreparedWeight shared_weight;
  const gemm::PreparedWeight* shared_w = packed ? packed->shared.get() : &shared_weight;
  const std::size_t n_sends = sends.size();
  pool.parallel_for(
      n_sends + (prepare_shared ? 1 : 0) + (prepare_first ? 1 : 0),
      [&](std::size_t i) {
        if (i < n_sends) {
          const RoutedTile& tile = sends[i];
          void* dst = ex.rows_for(tile.dest, tile.expert, tile.first, tile.rows);
          std::memcpy(dst, static_cast<const std::byte*>(t.gmm_x.data) + static_cast<std::size_t>(tile.src_row) * row_bytes,
                      static_cast<std::size_t>(tile.rows) * row_bytes);
          ex.rows_done(tile.dest, tile.expert, tile.first, tile.rows, dst);
        } else if (i == n_sends && prepare_shared) {
          const SharedExpertDesc& s = *d.shared;
          shared_weight.prepare(d.dtype, u16(t.mm_weight->data), s.h2, s.n2, s.trans_mm_weight,
                                gemm::packing_for(d.dtype, max_rows(shared), s.h2, s.n2), "mmWeightOptional");
        } else {
          prepare(0);
        }
      },
      poll);
  // The shared expert while the rows travel (MPI's progress driven between its tiles).
  if (d.shared) {
    const SharedExpertDesc& s = *d.shared;
    pool.parallel_for(
        shared.size(),
        [&](std::size_t i) {
          shared_tile(ex, *shared_w, u16(t.mm_x->data) + shared[i].first * s.h2, shared[i].rows, s.n2,
                      static_cast<std::uint16_t*>(t.mm_y->data) + shared[i].first * s.n2);
          ex.progress();
        },
        poll);
  }

  // 2./3. The routed GEMMs, expert by expert (the next expert's weight
  // prepared by the first task of the current one's job), each as soon as its
  // rows are in where the backend tells (the rest of the call's rows still
  // travel meanwhile), else once every row is in (with packed weights too: one job per expert, nothing to prepare).
  const bool early = ex.reports_arrivals();
  if (!early) ex.finish();
  const std::function<void()> idle = early ? poll : std::function<void()>{};
  const auto run_tile = [&](const gemm::PreparedWeight& w, const GroupTile& tile) {
    w.matmul_rows(reinterpret_cast<const std::uint16_t*>(received + static_cast<std::size_t>(tile.first) * row_bytes), tile.rows,
                  static_cast<std::uint16_t*>(t.y.data) + tile.first * d.n1);
  };
  for (std::size_t k = 0; k < experts.size(); ++k) {
    const bool next = !packed && k + 1 < experts.size();
    const std::vector<GroupTile> tiles = group_tiles(plan, experts[k]);
    if (early) ex.wait_received(experts[k]);
    const gemm::PreparedWeight& w = packed ? packed->expert(experts[k]) : prepared[k % 2];
    pool.parallel_for(
        tiles.size() + (next ? 1 : 0),
        [&](std::size_t i) {
          if (next && i == 0) return prepare(k + 1);
          run_tile(w, tiles[i - (next ? 1 : 0)]);
        },
        idle);
  }
  if (early) ex.finish();
}

}  // namespace gmmav::engine
