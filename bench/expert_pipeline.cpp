#include "expert_pipeline.hpp"

#include "engine/compute_pool.hpp"
#include "engine/packed_weights.hpp"
#include "engine/tile_schedule.hpp"
#include "gemm/tile_matmul.hpp"

namespace gmmav::bench {
namespace {

const std::uint16_t* u16(const void* p) { return static_cast<const std::uint16_t*>(p); }

struct Stage {
  int expert;  // -1: the shared expert
  const std::uint16_t* weight;
  std::int64_t k, n;
  bool trans;
  std::vector<engine::TileGroup> routed;  // as the engine runs them (engine::routed_groups)
  std::vector<engine::SharedTile> shared;
  std::size_t tiles() const { return expert < 0 ? shared.size() : routed.size(); }
};

}  // namespace

void prepare_all_weights(const Plan& plan, const OpTensors& in) {
  const ProblemDesc& d = plan.desc();
  std::vector<int> stages;  // experts with rows, then -1 for the shared expert
  for (int j = 0; j < d.local_experts; ++j)
    if (plan.group_rows(j) > 0) stages.push_back(j);
  if (d.shared) stages.push_back(-1);
  engine::ComputePool::instance().parallel_for(stages.size(), [&](std::size_t i) {
    gemm::PreparedWeight w;
    if (stages[i] >= 0)
      w.prepare(d.dtype, u16(in.gmm_weight.data) + static_cast<std::int64_t>(stages[i]) * d.h1 * d.n1, d.h1, d.n1,
                d.trans_gmm_weight);
    else
      w.prepare(d.dtype, u16(in.mm_weight->data), d.shared->h2, d.shared->n2, d.shared->trans_mm_weight);
  });
}

void run_expert_pipeline(const Plan& plan, const OpTensors& in, std::byte* gmm_y, std::uint16_t* mm_y, const PipelineHooks& hooks,
                         const PackedWeights* packed_weights) {
  const detail::PackedWeightsData* packed = packed_weights ? &detail::check_packed(*packed_weights, plan, in) : nullptr;
  auto& pool = engine::ComputePool::instance();
  const ProblemDesc& d = plan.desc();
  const std::int64_t row_bytes = d.n1 * 2;
  std::vector<Stage> stages;
  for (int j = 0; j < d.local_experts; ++j) {
    if (plan.group_rows(j) == 0) continue;
    stages.push_back({j,
                      u16(in.gmm_weight.data) + static_cast<std::int64_t>(j) * d.h1 * d.n1,
                      d.h1,
                      d.n1,
                      d.trans_gmm_weight,
                      engine::routed_groups(plan, j),
                      {}});
  }
  if (d.shared)
    stages.push_back(
        {-1, u16(in.mm_weight->data), d.shared->h2, d.shared->n2, d.shared->trans_mm_weight, {}, engine::shared_tiles(plan)});

  Tasks extra;
  int issued = 0;  // experts whose after_expert hook ran
  const auto issue_upto = [&](int j_last) {
    for (; issued <= j_last; ++issued)
      if (hooks.after_expert) hooks.after_expert(issued, extra);
  };
  bool routed_done = false;
  const auto finish_routed = [&] {
    if (routed_done) return;
    issue_upto(d.local_experts - 1);
    if (hooks.after_routed) hooks.after_routed();
    routed_done = true;
  };

  const auto run_tile = [&](const Stage& st, const gemm::PreparedWeight& w, std::size_t t) {
    if (st.expert >= 0) {
      // gmmY has gmmX's row order: a group's rows are contiguous in both.
      const engine::TileGroup& g = st.routed[t];
      w.matmul_rows(u16(in.gmm_x.data) + g.src_row * d.h1, g.rows,
                    reinterpret_cast<std::uint16_t*>(gmm_y + g.src_row * row_bytes));
    } else {
      const engine::SharedTile& tile = st.shared[t];
      w.matmul_rows(u16(in.mm_x->data) + tile.first * d.shared->h2, tile.rows, mm_y + tile.first * d.shared->n2);
    }
  };
  const auto packed_weight = [&](const Stage& st) -> const gemm::PreparedWeight& {
    return st.expert >= 0 ? packed->expert(st.expert) : *packed->shared;
  };

  // Packed weights and no per-expert hook (the sequential design): every
  // routed tile in one job, the hook, then the shared expert's tiles in one
  // job — as few pool hand-offs as the engine's single job.
  if (packed && !hooks.after_expert) {
    std::vector<std::pair<std::size_t, std::size_t>> routed;  // (stage, tile)
    std::size_t shared_stage = stages.size();
    for (std::size_t s = 0; s < stages.size(); ++s) {
      if (stages[s].expert < 0)
        shared_stage = s;
      else
        for (std::size_t t = 0; t < stages[s].tiles(); ++t) routed.emplace_back(s, t);
    }
    pool.parallel_for(
        routed.size(),
        [&](std::size_t i) { run_tile(stages[routed[i].first], packed_weight(stages[routed[i].first]), routed[i].second); },
        hooks.idle);
    finish_routed();
    if (shared_stage < stages.size()) {
      const Stage& st = stages[shared_stage];
      pool.parallel_for(
          st.tiles(), [&](std::size_t t) { run_tile(st, packed_weight(st), t); }, hooks.idle);
    }
    return;
  }

  gemm::PreparedWeight weights[2];
  const auto prepare = [&](std::size_t s) {
    const Stage& st = stages[s];
    weights[s % 2].prepare(d.dtype, st.weight, st.k, st.n, st.trans);
  };
  const std::function<void()> idle = hooks.idle;
  if (!stages.empty() && !packed)
    pool.parallel_for(
        1, [&](std::size_t) { prepare(0); }, idle);
  for (std::size_t s = 0; s < stages.size(); ++s) {
    const Stage& st = stages[s];
    if (st.expert < 0)
      finish_routed();
    else
      issue_upto(st.expert - 1);  // experts without rows before this one
    const bool next = !packed && s + 1 < stages.size();
    const gemm::PreparedWeight& w = !packed ? weights[s % 2] : packed_weight(st);
    Tasks front;
    front.swap(extra);
    const std::size_t head = (next ? 1 : 0) + front.size();
    pool.parallel_for(
        head + st.tiles(),
        [&](std::size_t i) {
          if (next && i == 0) return prepare(s + 1);
          if (i < head) return front[i - (next ? 1 : 0)]();
          run_tile(st, w, i - head);
        },
        idle);
    if (st.expert >= 0) issue_upto(st.expert);
  }
  finish_routed();
  if (!extra.empty())
    pool.parallel_for(
        extra.size(), [&](std::size_t i) { extra[i](); }, idle);
}

}  // namespace gmmav::bench
