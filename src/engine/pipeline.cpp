// The engine's tile pipeline for one rank's call: routed GroupedMatMul ->
// Unpermute -> AlltoAllv, plus the shared-expert MatMul, computed tile by tile
// into the places an Exchange names. (The public entry points, gmmav::run and
// friends, are API glue: src/api/run.cpp.)
//
// There is no separate unpermute or send buffer: each row tile of block
// (expert j, destination d) is computed straight into the memory the backend
// names for it (the peer's y in-process), so the block transpose of docs/spec.md §3 is
// only an address computation.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <exception>
#include <functional>
#include <new>
#include <vector>

#include "comm/communicator.hpp"
#include "common/fail.hpp"
#include "engine/compute_pool.hpp"
#include "engine/packed_weights.hpp"
#include "engine/pipeline.hpp"
#include "engine/schedule.hpp"
#include "engine/shared_tile.hpp"
#include "engine/tile_schedule.hpp"
#include "gemm/tile_matmul.hpp"
#include "gmmav/packed_weights.hpp"
#include "gmmav/plan.hpp"

namespace gmmav {
namespace {

const std::uint16_t* u16(const void* p) { return static_cast<const std::uint16_t*>(p); }

// One weight and its row tiles (routed experts: tile groups). Without packed
// weights, stage s+1's weight is prepared by the first task of stage s's job,
// so packing overlaps the previous stage's GEMMs; with them, every stage's
// tiles run in one job.
struct Stage {
  int expert;  // local expert j; -1: the shared expert
  const std::uint16_t* weight;
  std::int64_t k, n;
  bool trans;
  std::size_t tiles;
  std::function<void(const gemm::PreparedWeight&, std::size_t)> run_tile;
  const gemm::PreparedWeight* packed = nullptr;            // from PackedWeights, when given
  const std::vector<engine::TileGroup>* routed = nullptr;  // a routed expert's GEMMs (null: the shared expert)
  std::int64_t max_rows = 0;                               // of its GEMMs (gemm::packing_for: what to pack when preparing it)
};

// A GEMM of several tiles (engine::routed_groups) computes into this thread's
// scratch, then each part is copied to where the exchange wants it.
std::vector<std::uint16_t>& group_scratch(std::size_t elements) {
  thread_local std::vector<std::uint16_t> scratch;
  if (scratch.size() < elements) scratch.resize(elements);
  return scratch;
}

// Rows of one GEMM when a remote tile is computed in parts (Exchange::early_rows):
// whole messages, at least this many rows (the chain kernel's efficiency).
constexpr std::int64_t kEarlyPartMinRows = 32;

void run_group(const engine::TileGroup& g, const gemm::PreparedWeight& w, const std::uint16_t* x, std::int64_t h1,
               std::int64_t n1, int me, comm::Exchange& ex, std::atomic<int>& early_tiles) {
  const int j = g.parts.front().expert;
  if (g.parts.size() == 1) {  // one tile: computed straight into its destination
    const engine::RoutedTile& tile = g.parts.front();
    auto* dst = static_cast<std::uint16_t*>(ex.rows_for(tile.dest, j, tile.first, tile.rows));
    // The call's first tiles (one per thread) whose messages are smaller than
    // a tile (to another machine) are computed in parts, each sent as soon as
    // it is written, so the wire starts before the tile's last row (later
    // tiles are not cut: each part reads the weight again). Only where a row's
    // result does not depend on the GEMM's other rows (early_tiles is 0
    // otherwise: every tile on the chain kernel, bits unchanged).
    std::int64_t message = ex.early_rows(tile.dest);
    if (message > 0 && early_tiles.fetch_sub(1, std::memory_order_relaxed) <= 0) message = 0;
    const std::int64_t part = message > 0 ? (kEarlyPartMinRows + message - 1) / message * message : tile.rows;
    for (std::int64_t at = 0; at < tile.rows; at += part) {
      const std::int64_t n = std::min(part, tile.rows - at);
      w.matmul_rows(x + (tile.src_row + at) * h1, n, dst + at * n1);
      ex.rows_done(tile.dest, j, tile.first + at, n, dst + at * n1);
    }
    return;
  }
  std::uint16_t* out = group_scratch(static_cast<std::size_t>(g.rows * n1)).data();
  w.matmul_rows(x + g.src_row * h1, g.rows, out);
  // Parts for peers first: they can leave (or wait in staging) while the
  // part for this rank may still wait for the call's agreement.
  for (const bool remote : {true, false})
    for (const engine::RoutedTile& tile : g.parts) {
      if ((tile.dest != me) != remote) continue;
      void* dst = ex.rows_for(tile.dest, j, tile.first, tile.rows);
      std::memcpy(dst, out + (tile.src_row - g.src_row) * n1, static_cast<std::size_t>(tile.rows * n1) * sizeof(std::uint16_t));
      ex.rows_done(tile.dest, j, tile.first, tile.rows, dst);
    }
}

}  // namespace

namespace {

// What a combine schedule's tasks refer to: the stages, their tiles and the
// two weights being prepared (stage s in slot s % 2: the next stage's weight is
// prepared while the current one computes).
struct CombineState {
  const Plan* plan = nullptr;
  const detail::PackedWeightsData* packed = nullptr;
  std::vector<std::vector<engine::TileGroup>> routed;  // per local expert
  std::vector<engine::SharedTile> shared;
  std::vector<Stage> stages;
  gemm::PreparedWeight weights[2];
  std::atomic<int> early_tiles{0};

  const gemm::PreparedWeight& weight(std::size_t s) const { return packed ? *stages[s].packed : weights[s % 2]; }
  void prepare(std::size_t s) {
    const Stage& st = stages[s];
    // Pack only what the stage's GEMMs read (nothing where they all take the chain kernel).
    weights[s % 2].prepare(plan->desc().dtype, st.weight, st.k, st.n, st.trans,
                           gemm::packing_for(plan->desc().dtype, st.max_rows, st.k, st.n),
                           st.routed ? "gmmWeight" : "mmWeightOptional");
  }
  engine::Task tile(std::size_t s, std::size_t i) {
    return [this, s, i] { stages[s].run_tile(weight(s), i); };
  }
};

// The stages of one call: each routed expert with rows, then the shared expert.
void make_stages(CombineState& st, const OpTensors& t, comm::Exchange& ex) {
  const Plan& plan = *st.plan;
  const ProblemDesc& d = plan.desc();
  st.routed.resize(static_cast<std::size_t>(d.local_experts));
  for (int j = 0; j < d.local_experts; ++j) {
    if (plan.group_rows(j) == 0) continue;
    auto& groups = st.routed[static_cast<std::size_t>(j)] = engine::routed_groups(plan, j);
    st.stages.push_back({j, u16(t.gmm_weight.data) + static_cast<std::int64_t>(j) * d.h1 * d.n1, d.h1, d.n1, d.trans_gmm_weight,
                         groups.size(),
                         [&st, &ex, t, j](const gemm::PreparedWeight& w, std::size_t i) {
                           const ProblemDesc& pd = st.plan->desc();
                           run_group(st.routed[static_cast<std::size_t>(j)][i], w, u16(t.gmm_x.data), pd.h1, pd.n1,
                                     st.plan->rank(), ex, st.early_tiles);
                         },
                         st.packed ? &st.packed->expert(j) : nullptr, &groups, engine::max_rows(groups)});
  }
  if (!d.shared) return;
  st.shared = engine::shared_tiles(plan);
  const SharedExpertDesc& s = *d.shared;
  st.stages.push_back({-1, u16(t.mm_weight->data), s.h2, s.n2, s.trans_mm_weight, st.shared.size(),
                       [&st, &ex, t](const gemm::PreparedWeight& w, std::size_t i) {
                         const engine::SharedTile& tile = st.shared[i];
                         const SharedExpertDesc& sd = *st.plan->desc().shared;
                         engine::shared_tile(ex, w, u16(t.mm_x->data) + tile.first * sd.h2, tile.rows, sd.n2,
                                             static_cast<std::uint16_t*>(t.mm_y->data) + tile.first * sd.n2);
                         ex.progress();
                       },
                       st.packed ? st.packed->shared.get() : nullptr, nullptr, engine::max_rows(st.shared)});
}

// Packed weights, nothing to prepare: every tile in as few jobs as asked, in the
// order that gives the exchange the most time: every expert's remote tiles
// first, then the tiles that stay on this rank, then the shared expert's (which
// fill the time the last transfers take).
void add_tile_jobs(engine::Schedule& sc, CombineState& st, bool shared_apart) {
  const int me = st.plan->rank();
  engine::Job routed, shared;
  routed.routed_done = true;
  for (int pass = 0; pass < 2; ++pass)
    for (std::size_t s = 0; s < st.stages.size(); ++s) {
      if (!st.stages[s].routed) continue;
      for (std::size_t i = 0; i < st.stages[s].tiles; ++i)
        if ((*st.stages[s].routed)[i].remote(me) == (pass == 0)) routed.tasks.push_back(st.tile(s, i));
    }
  for (std::size_t s = 0; s < st.stages.size(); ++s)
    if (!st.stages[s].routed)
      for (std::size_t i = 0; i < st.stages[s].tiles; ++i) (shared_apart ? shared : routed).tasks.push_back(st.tile(s, i));
  sc.jobs.push_back(std::move(routed));
  if (shared_apart) sc.jobs.push_back(std::move(shared));
}

// Stage by stage: a first job prepares stage 0's weight (empty with packed
// weights); stage s's job prepares stage s+1's first (unless packed), then runs
// its tiles.
void add_stage_jobs(engine::Schedule& sc, CombineState& st) {
  engine::Job first;
  if (!st.packed && !st.stages.empty()) first.tasks.push_back([&st] { st.prepare(0); });
  first.lead = first.tasks.size();
  first.routed_done = st.stages.empty() || !st.stages.front().routed;
  sc.jobs.push_back(std::move(first));
  for (std::size_t s = 0; s < st.stages.size(); ++s) {
    engine::Job job;
    if (!st.packed && s + 1 < st.stages.size()) job.tasks.push_back([&st, s] { st.prepare(s + 1); });
    job.lead = job.tasks.size();
    for (std::size_t i = 0; i < st.stages[s].tiles; ++i) job.tasks.push_back(st.tile(s, i));
    job.expert = st.stages[s].expert;
    job.routed_done = s + 1 == st.stages.size() || !st.stages[s + 1].routed;
    if (!st.stages[s].routed) job.routed_done = true;
    sc.jobs.push_back(std::move(job));
  }
}

}  // namespace

engine::Schedule engine::combine_schedule(const Plan& plan, const OpTensors& t, comm::Exchange& ex,
                                          const PackedWeights* packed_weights, Grouping grouping) {
  if (plan.op() != Op::combine) fail(Errc::internal, "op", "expected a combine plan, got {}", to_string(plan.op()));
  auto st = std::make_shared<CombineState>();
  st->plan = &plan;
  st->packed = packed_weights ? &detail::check_packed(*packed_weights, plan, t) : nullptr;
  if (grouping != Grouping::by_stage && !st->packed)
    fail(Errc::internal, "packedWeights", "expected packed weights for a schedule of whole-call jobs, got none");
  // Tiles that may be computed in parts (run_group): one per thread, where
  // every tile runs on the chain kernel (D24: a row's bits never depend on its GEMM's other rows).
  st->early_tiles = gemm::packs_weights(plan.desc().dtype) ? 0 : ComputePool::instance().threads();
  make_stages(*st, t, ex);
  Schedule sc;
  if (ex.needs_poll()) sc.idle = [&ex] { ex.poll(); };
  if (grouping == Grouping::by_stage)
    add_stage_jobs(sc, *st);
  else
    add_tile_jobs(sc, *st, grouping == Grouping::routed_then_shared);
  sc.state = st;
  return sc;
}

void engine::compute_tiles(const Plan& plan, const OpTensors& t, comm::Exchange& ex, const PackedWeights* packed) {
  Schedule sc = combine_schedule(plan, t, ex, packed, packed ? Grouping::whole_call : Grouping::by_stage);
  execute(sc);
}

}  // namespace gmmav
