#include "expert_pipeline.hpp"

#include "engine/compute_pool.hpp"
#include "engine/pipeline.hpp"
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

void run_expert_pipeline(const Plan& plan, const OpTensors& in, std::byte* gmm_y, std::uint16_t* mm_y, const PipelineHooks& hooks,
                         const PackedWeights* packed_weights) {
  // The engine's own stage loop, tiles and routes (engine::StageHooks): a
  // local Exchange puts every routed tile at its gmmX row of gmm_y.
  LocalExchange ex(plan, gmm_y);
  OpTensors t = in;
  if (t.mm_y) t.mm_y->data = mm_y;
  engine::StageHooks stage_hooks{hooks.after_expert, hooks.after_routed, hooks.idle};
  engine::compute_tiles(plan, t, ex, packed_weights, &stage_hooks);
}

}  // namespace gmmav::bench
