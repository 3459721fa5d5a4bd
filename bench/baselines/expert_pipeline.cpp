#include "expert_pipeline.hpp"

#include <algorithm>
#include <memory>

#include "engine/compute_pool.hpp"
#include "engine/pipeline.hpp"
#include "engine/schedule.hpp"
#include "gemm/tile_matmul.hpp"
#include "local_exchange.hpp"

namespace gmmav::bench {
namespace {

const std::uint16_t* u16(const void* p) { return static_cast<const std::uint16_t*>(p); }

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

namespace {

// The hooks as steps after the schedule's jobs: after a job, after_expert for each expert up to
// the one whose tiles ended in it and those without rows before the next job's (or, once every
// routed tile has run, for every expert left, then after_routed).
void step_in(engine::Schedule& sc, int experts, const PipelineHooks& h) {
  if (h.idle)
    sc.idle = [ex_idle = sc.idle, idle = h.idle] {
      if (ex_idle) ex_idle();
      idle();
    };
  auto issued = std::make_shared<int>(0);
  bool routed_seen = false;
  for (std::size_t i = 0; i < sc.jobs.size(); ++i) {
    const engine::Job& job = sc.jobs[i];
    const bool last_routed = job.routed_done && !routed_seen;
    routed_seen = routed_seen || job.routed_done;
    int upto = job.expert;
    if (i + 1 < sc.jobs.size() && sc.jobs[i + 1].expert >= 0) upto = std::max(upto, sc.jobs[i + 1].expert - 1);
    if (last_routed) upto = experts - 1;
    if (upto < 0 && !last_routed) continue;
    sc.then_also(i, [h, issued, upto, last_routed](Tasks& next) {
      for (; h.after_expert && *issued <= upto; ++*issued) h.after_expert(*issued, next);
      if (last_routed && h.after_routed) h.after_routed();
    });
  }
}

}  // namespace

void run_expert_pipeline(const Plan& plan, const OpTensors& in, std::byte* gmm_y, std::uint16_t* mm_y, const PipelineHooks& hooks,
                         const PackedWeights* packed_weights) {
  // The engine's own schedule, tiles and routes: a local Exchange puts every
  // routed tile at its gmmX row of gmm_y.
  LocalExchange ex(plan, gmm_y);
  OpTensors t = in;
  if (t.mm_y) t.mm_y->data = mm_y;
  const engine::Grouping grouping =
      packed_weights && !hooks.after_expert ? engine::Grouping::routed_then_shared : engine::Grouping::by_stage;
  engine::Schedule sc = engine::combine_schedule(plan, t, ex, packed_weights, grouping);
  step_in(sc, plan.desc().local_experts, hooks);
  engine::execute(sc);
}

}  // namespace gmmav::bench
