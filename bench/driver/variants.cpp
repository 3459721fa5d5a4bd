#include "variants.hpp"

#include <cstring>

#include "aclnn_variant.hpp"
#include "engine/compute_pool.hpp"
#include "engine/pipeline.hpp"
#include "expert_pipeline.hpp"
#include "local_exchange.hpp"

namespace gmmav::bench {

const char* to_string(Variant v) {
  switch (v) {
    case Variant::fused:
      return "fused";
    case Variant::gemm_alone:
      return "gemm_alone";
    case Variant::a2a_alone:
      return "a2a_alone";
    case Variant::sequential:
      return "sequential";
    case Variant::per_expert:
      return "per_expert_overlap";
    case Variant::library:
      return "library_matmul";
    case Variant::fused_per_call:
      return "fused_per_call";
    case Variant::aclnn:
      return "aclnn";
  }
  return "?";
}

void RankBuffers::allocate(const Plan& plan, std::size_t workspace_bytes, bool per_call) {
  const ProblemDesc& d = plan.desc();
  const auto a = static_cast<std::size_t>(plan.rows_in() * d.n1);
  const auto bsk = static_cast<std::size_t>(plan.rows_out() * d.n1);
  // Filled (not just reserved) so no variant pays the first-touch page faults of another.
  gmm_y.assign(a, 0);
  send_buf.assign(a, 0);
  for (auto& v : y) v.assign(bsk, 0);
  if (d.shared) {
    const auto mm = static_cast<std::size_t>(d.shared->bs * d.shared->n2);
    mm_gemm.assign(mm, 0);
    mm_seq.assign(mm, 0);
    mm_pe.assign(mm, 0);
    if (per_call) mm_per_call.assign(mm, 0);
  }
  if (per_call) y_per_call.assign(bsk, 0);
  workspace.assign(workspace_bytes, std::byte{0});
}

std::array<std::byte*, kTargets> RankBuffers::y_pointers() {
  std::array<std::byte*, kTargets> p{};
  for (int t = 0; t < kTargets; ++t)
    p[static_cast<std::size_t>(t)] = reinterpret_cast<std::byte*>(y[static_cast<std::size_t>(t)].data());
  return p;
}

void RankVariants::unpermute() {
  const ProblemDesc& d = plan.desc();
  const int W = d.world_size, e = d.local_experts;
  const std::int64_t rb = d.n1 * 2;
  struct Block {
    std::int64_t from, to, rows;
  };
  std::vector<Block> blocks;
  std::int64_t row = 0;
  for (int dst = 0; dst < W; ++dst)
    for (int j = 0; j < e; ++j) {
      const std::int64_t rows = plan.send_block_rows(j, dst);
      if (rows > 0) blocks.push_back({plan.send_block_offset(j, dst), row, rows});
      row += rows;
    }
  const auto* from = reinterpret_cast<const std::byte*>(buf.gmm_y.data());
  auto* to = reinterpret_cast<std::byte*>(buf.send_buf.data());
  engine::ComputePool::instance().parallel_for(blocks.size(), [&](std::size_t i) {
    const Block& b = blocks[i];
    std::memcpy(to + b.to * rb, from + b.from * rb, static_cast<std::size_t>(b.rows * rb));
  });
}

void RankVariants::run(Variant v) {
  switch (v) {
    case Variant::fused:
      if (packed)
        gmmav::run(plan, comm, fused, *packed, buf.workspace);
      else
        gmmav::run(plan, comm, fused, buf.workspace);
      return;
    case Variant::gemm_alone: {
      LocalExchange ex(plan, buf.gmm_y.data());
      OpTensors t = fused;
      if (t.mm_y) t.mm_y->data = buf.mm_gemm.data();
      engine::compute_tiles(plan, t, ex, packed);
      return;
    }
    case Variant::a2a_alone:
      transport.alltoallv(reinterpret_cast<const std::byte*>(buf.send_buf.data()), Target::a2a);
      return;
    case Variant::sequential: {
      PipelineHooks h;
      h.after_routed = [&] {
        unpermute();
        transport.alltoallv(reinterpret_cast<const std::byte*>(buf.send_buf.data()), Target::sequential);
      };
      run_expert_pipeline(plan, fused, reinterpret_cast<std::byte*>(buf.gmm_y.data()), buf.mm_seq.data(), h, packed);
      return;
    }
    case Variant::per_expert: {
      PipelineHooks h;
      const auto* gy = reinterpret_cast<const std::byte*>(buf.gmm_y.data());
      h.after_expert = [&, gy](int j, Tasks& next) { transport.start_expert(j, gy, Target::per_expert, next); };
      if (transport.needs_poll()) h.idle = [&] { transport.poll(); };
      run_expert_pipeline(plan, fused, reinterpret_cast<std::byte*>(buf.gmm_y.data()), buf.mm_pe.data(), h, packed);
      transport.finish_experts();
      return;
    }
    case Variant::library:
      if (library) library->run();
      return;
    case Variant::fused_per_call: {
      OpTensors t = fused;
      t.y.data = buf.y_per_call.data();
      if (t.mm_y) t.mm_y->data = buf.mm_per_call.data();
      gmmav::run(plan, comm, t, buf.workspace);
      return;
    }
    case Variant::aclnn:
      if (aclnn) aclnn->call();
      return;
  }
}

}  // namespace gmmav::bench
