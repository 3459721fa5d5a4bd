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

void engine::compute_tiles(const Plan& plan, const OpTensors& t, comm::Exchange& ex, const PackedWeights* packed_weights,
                           const StageHooks* hooks) {
  if (plan.op() != Op::combine) fail(Errc::internal, "op", "expected a combine plan, got {}", to_string(plan.op()));
  const detail::PackedWeightsData* packed = packed_weights ? &detail::check_packed(*packed_weights, plan, t) : nullptr;
  auto& pool = engine::ComputePool::instance();
  std::function<void()> poll;
  if (ex.needs_poll()) poll = [&ex] { ex.poll(); };
  if (hooks && hooks->idle)
    poll = [&ex, hooks, poll_ex = ex.needs_poll()] {
      if (poll_ex) ex.poll();
      hooks->idle();
    };
  const ProblemDesc& d = plan.desc();
  // Tiles that may be computed in parts (run_group): one per thread, where
  // every tile runs on the chain kernel (D24: a row's bits never depend on its GEMM's other rows).
  std::atomic<int> early_tiles{gemm::packs_weights(d.dtype) ? 0 : pool.threads()};

  std::vector<Stage> stages;
  std::vector<std::vector<engine::TileGroup>> routed(static_cast<std::size_t>(d.local_experts));
  for (int j = 0; j < d.local_experts; ++j) {
    if (plan.group_rows(j) == 0) continue;
    auto& groups = routed[static_cast<std::size_t>(j)] = engine::routed_groups(plan, j);
    stages.push_back(
        {j, u16(t.gmm_weight.data) + static_cast<std::int64_t>(j) * d.h1 * d.n1, d.h1, d.n1, d.trans_gmm_weight, groups.size(),
         [&, j](const gemm::PreparedWeight& w, std::size_t i) {
           run_group(routed[static_cast<std::size_t>(j)][i], w, u16(t.gmm_x.data), d.h1, d.n1, plan.rank(), ex, early_tiles);
         },
         packed ? &packed->expert(j) : nullptr, &groups, engine::max_rows(groups)});
  }
  const auto shared = engine::shared_tiles(plan);
  if (d.shared) {
    const SharedExpertDesc& s = *d.shared;
    stages.push_back({-1, u16(t.mm_weight->data), s.h2, s.n2, s.trans_mm_weight, shared.size(),
                      [&](const gemm::PreparedWeight& w, std::size_t i) {
                        const engine::SharedTile& tile = shared[i];
                        shared_tile(ex, w, u16(t.mm_x->data) + tile.first * s.h2, tile.rows, s.n2,
                                    static_cast<std::uint16_t*>(t.mm_y->data) + tile.first * s.n2);
                        ex.progress();
                      },
                      packed ? packed->shared.get() : nullptr, nullptr, engine::max_rows(shared)});
  }
  // The hooks' points in the stage loop (none for gmmav::run).
  std::vector<std::function<void()>> front;  // tasks for the front of the next job
  int issued = 0;                            // experts whose after_expert ran
  const auto issue_upto = [&](int j_last) {
    for (; hooks && issued <= j_last; ++issued)
      if (hooks->after_expert) hooks->after_expert(issued, front);
  };
  bool routed_done = false;
  const auto finish_routed = [&] {
    if (routed_done || !hooks) return;
    routed_done = true;
    issue_upto(d.local_experts - 1);
    if (hooks->after_routed) hooks->after_routed();
  };
  if (stages.empty()) return finish_routed();
  if (packed && !(hooks && hooks->after_expert)) {
    // Nothing to prepare: every tile of the call in one job (one hand-off to
    // the pool and back per call, not one per stage), in the order that gives
    // the exchange the most time: every expert's remote tiles first, then the
    // tiles that stay on this rank, then the shared expert's (which fill the
    // time the last transfers take). With an after_routed hook, the shared
    // expert's tiles are a second job after it.
    const bool split = hooks && hooks->after_routed;
    std::vector<std::pair<std::size_t, std::size_t>> order;  // (stage, tile)
    for (int pass = 0; pass < 3; ++pass)
      for (std::size_t s = 0; s < stages.size(); ++s) {
        const bool is_routed = stages[s].routed != nullptr;
        for (std::size_t i = 0; i < stages[s].tiles; ++i) {
          const bool remote = is_routed && (*stages[s].routed)[i].remote(plan.rank());
          if ((pass == 0 && remote) || (pass == 1 && is_routed && !remote) || (pass == 2 && !is_routed)) order.emplace_back(s, i);
        }
      }
    const std::size_t routed_tiles =
        static_cast<std::size_t>(std::count_if(order.begin(), order.end(), [&](const std::pair<std::size_t, std::size_t>& o) {
          return stages[o.first].routed != nullptr;
        }));
    const auto run = [&](std::size_t k) { stages[order[k].first].run_tile(*stages[order[k].first].packed, order[k].second); };
    pool.parallel_for(split ? routed_tiles : order.size(), run, poll);
    finish_routed();
    if (split && routed_tiles < order.size())
      pool.parallel_for(
          order.size() - routed_tiles, [&](std::size_t k) { run(routed_tiles + k); }, poll);
    return;
  }
  // Stage by stage: the next stage's weight prepared by the first task of the
  // current stage's job (unless packed), the hooks' tasks at the front.
  gemm::PreparedWeight weights[2];
  const auto prepare = [&](std::size_t s) {
    const Stage& st = stages[s];
    // Pack only what the stage's GEMMs read (nothing where they all take the chain kernel).
    weights[s % 2].prepare(d.dtype, st.weight, st.k, st.n, st.trans, gemm::packing_for(d.dtype, st.max_rows, st.k, st.n),
                           st.routed ? "gmmWeight" : "mmWeightOptional");
  };
  if (!packed)
    pool.parallel_for(
        1, [&](std::size_t) { prepare(0); }, poll);
  for (std::size_t s = 0; s < stages.size(); ++s) {
    if (stages[s].expert < 0)
      finish_routed();
    else
      issue_upto(stages[s].expert - 1);  // experts without rows before this one
    const bool next = !packed && s + 1 < stages.size();
    const gemm::PreparedWeight& w = packed ? *stages[s].packed : weights[s % 2];
    std::vector<std::function<void()>> tasks;
    tasks.swap(front);
    const std::size_t head = (next ? 1 : 0) + tasks.size();
    pool.parallel_for(
        head + stages[s].tiles,
        [&](std::size_t i) {
          if (next && i == 0) return prepare(s + 1);
          if (i < head) return tasks[i - (next ? 1 : 0)]();
          stages[s].run_tile(w, i - head);
        },
        poll);
    if (stages[s].expert >= 0) issue_upto(stages[s].expert);
  }
  finish_routed();
  if (!front.empty())
    pool.parallel_for(
        front.size(), [&](std::size_t i) { front[i](); }, poll);
}

}  // namespace gmmav
