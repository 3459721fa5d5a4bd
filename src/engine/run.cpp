// The fused operator for one rank: routed GroupedMatMul -> Unpermute ->
// AlltoAllv, plus the shared-expert MatMul.
//
// There is no separate unpermute or send buffer: each row tile of block
// (expert j, destination d) is computed straight into the memory the backend
// names for it (the peer's y in-process), so the block transpose of SPEC §3 is
// only an address computation.
#include <exception>
#include <functional>

#include "comm/communicator.hpp"
#include "common/fail.hpp"
#include "engine/compute_pool.hpp"
#include "engine/tile_schedule.hpp"
#include "gemm/tile_matmul.hpp"
#include "gmmav/gmmav.hpp"

namespace gmmav {
namespace {

const std::uint16_t* u16(const void* p) { return static_cast<const std::uint16_t*>(p); }

void compute_all(const Plan& plan, const OpTensors& t, comm::Exchange& ex) {
  auto& pool = engine::ComputePool::instance();
  std::function<void()> poll;
  if (ex.needs_poll()) poll = [&ex] { ex.poll(); };
  // Every pool job polls the exchange while it waits (MPI progress between tiles).
  const auto parallel_for = [&](std::size_t n, const std::function<void(std::size_t)>& fn) { pool.parallel_for(n, fn, poll); };
  const ProblemDesc& d = plan.desc();
  gemm::PreparedWeight w;
  for (int j = 0; j < d.local_experts; ++j) {
    if (plan.group_rows(j) == 0) continue;
    const std::uint16_t* wj = u16(t.gmm_weight.data) + static_cast<std::int64_t>(j) * d.h1 * d.n1;
    w.reset(d.dtype, d.h1, d.n1, d.trans_gmm_weight);
    parallel_for(w.chunks(), [&](std::size_t c) { w.prepare_chunk(c, wj); });
    const auto tiles = engine::routed_tiles(plan, j);
    parallel_for(tiles.size(), [&](std::size_t i) {
      const engine::RoutedTile& tile = tiles[i];
      void* dst = ex.rows_for(tile.dest, j, tile.first, tile.rows);
      gemm::matmul_rows(w, u16(t.gmm_x.data) + tile.src_row * d.h1, tile.rows, static_cast<std::uint16_t*>(dst));
      ex.rows_done(tile.dest, j, tile.first, tile.rows, dst);
    });
  }
  if (d.shared) {
    const SharedExpertDesc& s = *d.shared;
    w.reset(d.dtype, s.h2, s.n2, s.trans_mm_weight);
    parallel_for(w.chunks(), [&](std::size_t c) { w.prepare_chunk(c, u16(t.mm_weight->data)); });
    const auto tiles = engine::shared_tiles(plan);
    parallel_for(tiles.size(), [&](std::size_t i) {
      const engine::SharedTile& tile = tiles[i];
      gemm::matmul_rows(w, u16(t.mm_x->data) + tile.first * s.h2, tile.rows,
                        static_cast<std::uint16_t*>(t.mm_y->data) + tile.first * s.n2);
      ex.progress();
    });
  }
}

}  // namespace

std::size_t workspace_size(const Plan& plan, const Comm& comm) {
  if (!comm) fail(Errc::null_argument, "group", "expected a communicator, got none");
  return comm.impl().workspace_bytes(plan);
}

void run(const Plan& plan, const Comm& comm, const OpTensors& t, std::span<std::byte> workspace) {
  if (!comm) fail(Errc::null_argument, "group", "expected a communicator, got none");
  plan.check(t);
  if (comm.size() != plan.world_size())
    fail(Errc::invalid_argument, "epWorldSize", "expected the group's size {}, got {}", comm.size(), plan.world_size());
  if (comm.rank() != plan.rank())
    fail(Errc::invalid_argument, "rank", "expected the communicator's rank {}, got a plan for rank {}", comm.rank(), plan.rank());
  const std::size_t need = comm.impl().workspace_bytes(plan);
  if (workspace.size() < need)
    fail(Errc::invalid_argument, "workspaceSize", "expected at least {} bytes of workspace, got {}", need, workspace.size());

  const ProblemDesc& d = plan.desc();
  comm::CallInfo mine;
  mine.local_experts = d.local_experts;
  mine.dtype = d.dtype;
  mine.n1 = d.n1;
  mine.send_counts = d.send_counts;
  mine.recv_counts = d.recv_counts;
  mine.y = t.y.data;
  auto ex = comm.impl().meet(mine, workspace);
  try {
    compute_all(plan, t, *ex);
  } catch (const std::exception& e) {
    ex->abort(e.what());
    throw;
  }
  ex->finish();
}

int compute_threads() { return engine::ComputePool::instance().threads(); }
void set_compute_threads(int n) { engine::ComputePool::instance().set_threads(n); }

}  // namespace gmmav
