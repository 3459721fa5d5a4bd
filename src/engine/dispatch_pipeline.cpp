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
#include "engine/schedule.hpp"
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

namespace {

// What a dispatch schedule's tasks refer to.
struct DispatchState {
  const Plan* plan = nullptr;
  OpTensors t;
  comm::Exchange* ex = nullptr;
  const std::byte* received = nullptr;
  const detail::PackedWeightsData* packed = nullptr;
  std::size_t row_bytes = 0;
  std::vector<RoutedTile> sends;  // every gmmX tile: remote blocks first, larger first
  std::vector<SharedTile> shared;
  std::vector<int> experts;  // with rows, in order
  gemm::PreparedWeight prepared[2], shared_weight;

  const ProblemDesc& d() const { return plan->desc(); }
  const gemm::PreparedWeight& expert_weight(std::size_t k) const { return packed ? packed->expert(experts[k]) : prepared[k % 2]; }
  const gemm::PreparedWeight& shared_w() const { return packed ? *packed->shared : shared_weight; }
  void prepare(std::size_t k) {  // the k-th expert with rows, into slot k % 2
    const int j = experts[k];
    prepared[k % 2].prepare(d().dtype, u16(t.gmm_weight.data) + static_cast<std::int64_t>(j) * d().h1 * d().n1, d().h1, d().n1,
                            d().trans_gmm_weight, gemm::packing_for(d().dtype, plan->group_rows(j), d().h1, d().n1));
  }
  void prepare_shared() {
    const SharedExpertDesc& s = *d().shared;
    shared_weight.prepare(d().dtype, u16(t.mm_weight->data), s.h2, s.n2, s.trans_mm_weight,
                          gemm::packing_for(d().dtype, max_rows(shared), s.h2, s.n2), "mmWeightOptional");
  }
  void send(std::size_t i) {
    const RoutedTile& tile = sends[i];
    void* dst = ex->rows_for(tile.dest, tile.expert, tile.first, tile.rows);
    std::memcpy(dst, static_cast<const std::byte*>(t.gmm_x.data) + static_cast<std::size_t>(tile.src_row) * row_bytes,
                static_cast<std::size_t>(tile.rows) * row_bytes);
    ex->rows_done(tile.dest, tile.expert, tile.first, tile.rows, dst);
  }
  void shared_gemm(std::size_t i) {
    const SharedExpertDesc& s = *d().shared;
    shared_tile(*ex, shared_w(), u16(t.mm_x->data) + shared[i].first * s.h2, shared[i].rows, s.n2,
                static_cast<std::uint16_t*>(t.mm_y->data) + shared[i].first * s.n2);
    ex->progress();
  }
  void routed_gemm(std::size_t k, const GroupTile& tile) {
    expert_weight(k).matmul_rows(
        reinterpret_cast<const std::uint16_t*>(received + static_cast<std::size_t>(tile.first) * row_bytes), tile.rows,
        static_cast<std::uint16_t*>(t.y.data) + tile.first * d().n1);
  }
};

// 1. Send: every tile of gmmX to where its rows go (remote blocks first, larger
// first: routed_tiles' order), with the shared expert's weight and the first
// expert's weight preparation in the same job, after them; then the shared
// expert's tiles: they fill the time the rows take to arrive (MPI's progress
// driven between its tiles).
void add_send_jobs(Schedule& sc, DispatchState& st) {
  Job send;
  for (std::size_t i = 0; i < st.sends.size(); ++i) send.tasks.push_back([&st, i] { st.send(i); });
  if (st.d().shared && !st.packed) send.tasks.push_back([&st] { st.prepare_shared(); });
  if (!st.packed && !st.experts.empty()) send.tasks.push_back([&st] { st.prepare(0); });
  sc.jobs.push_back(std::move(send));
  if (!st.d().shared) return;
  Job shared;
  for (std::size_t i = 0; i < st.shared.size(); ++i) shared.tasks.push_back([&st, i] { st.shared_gemm(i); });
  sc.jobs.push_back(std::move(shared));
}

// 2./3. The routed GEMMs, expert by expert (the next expert's weight prepared
// by the first task of the current one's job), each as soon as its rows are in
// where the backend tells (the rest of the call's rows still travel meanwhile),
// else once every row is in (with packed weights too: one job per expert,
// nothing to prepare).
void add_expert_jobs(Schedule& sc, DispatchState& st) {
  comm::Exchange& ex = *st.ex;
  const bool early = ex.reports_arrivals();
  if (!early) sc.jobs.push_back(Job{[&ex] { ex.finish(); }});
  for (std::size_t k = 0; k < st.experts.size(); ++k) {
    Job job;
    if (early) job.before = [&ex, j = st.experts[k]] { ex.wait_received(j); };
    if (!st.packed && k + 1 < st.experts.size()) job.tasks.push_back([&st, k] { st.prepare(k + 1); });
    job.lead = job.tasks.size();
    for (const GroupTile& tile : group_tiles(*st.plan, st.experts[k]))
      job.tasks.push_back([&st, k, tile] { st.routed_gemm(k, tile); });
    job.poll = early;
    job.expert = st.experts[k];
    sc.jobs.push_back(std::move(job));
  }
  if (early) sc.jobs.push_back(Job{[&ex] { ex.finish(); }});
}

}  // namespace

Schedule dispatch_schedule(const Plan& plan, const OpTensors& t, comm::Exchange& ex, const std::byte* received,
                           const PackedWeights* packed_weights) {
  if (plan.op() != Op::dispatch) fail(Errc::internal, "op", "expected a dispatch plan, got {}", to_string(plan.op()));
  auto st = std::make_shared<DispatchState>();
  st->plan = &plan;
  st->t = t;
  st->ex = &ex;
  st->received = received;
  st->packed = packed_weights ? &detail::check_packed(*packed_weights, plan, t) : nullptr;
  const ProblemDesc& d = plan.desc();
  st->row_bytes = static_cast<std::size_t>(d.h1) * element_size(d.dtype);
  for (int j = 0; j < d.local_experts; ++j) {
    auto tiles = routed_tiles(plan, j);
    st->sends.insert(st->sends.end(), tiles.begin(), tiles.end());
    if (plan.group_rows(j) > 0) st->experts.push_back(j);
  }
  std::stable_sort(st->sends.begin(), st->sends.end(),
                   [me = plan.rank()](const RoutedTile& a, const RoutedTile& b) { return (a.dest != me) > (b.dest != me); });
  if (d.shared) st->shared = shared_tiles(plan);
  Schedule sc;
  if (ex.needs_poll()) sc.idle = [&ex] { ex.poll(); };
  add_send_jobs(sc, *st);
  add_expert_jobs(sc, *st);
  sc.state = st;
  return sc;
}

void compute_dispatch(const Plan& plan, const OpTensors& t, comm::Exchange& ex, const std::byte* received,
                      const PackedWeights* packed) {
  Schedule sc = dispatch_schedule(plan, t, ex, received, packed);
  execute(sc);
}

}  // namespace gmmav::engine
