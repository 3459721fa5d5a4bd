// Native API: gmmav::run and the other entry points of gmmav/gmmav.hpp —
// checks, the call's meeting, then the engine's pipeline (engine/pipeline.hpp).
#include <cstdio>
#include <exception>
#include <mutex>
#include <new>
#include <string>

#include <fmt/format.h>

#include "api/comm_access.hpp"
#include "comm/communicator.hpp"
#include "common/config.hpp"
#include "common/fail.hpp"
#include "engine/compute_pool.hpp"
#include "engine/packed_weights.hpp"
#include "engine/pipeline.hpp"
#include "engine/plan_log.hpp"
#include "engine/tile_schedule.hpp"
#include "gmmav/gmmav.hpp"

namespace gmmav {

namespace {

// The dispatch op without permuteOut receives its rows into the front of the
// workspace (A x H1, 64-byte aligned); the backend's staging follows.
std::size_t receive_buffer_bytes(const Plan& plan) {
  if (plan.op() != Op::dispatch || plan.desc().permute_out) return 0;
  const std::size_t bytes = static_cast<std::size_t>(plan.rows_out() * plan.desc().h1) * element_size(plan.desc().dtype);
  return (bytes + 63) / 64 * 64;
}

}  // namespace

std::size_t workspace_size(const Plan& plan, const Comm& comm) {
  if (!comm) fail(Errc::null_argument, "group", "expected a communicator, got none");
  return receive_buffer_bytes(plan) + detail::CommAccess::impl(comm).workspace_bytes(plan, engine::tiling());
}

namespace {

// GMMAV_LOG=plan: one line per call, whole lines from concurrent ranks.
void log_plan(const std::string& line) {
  static std::mutex mu;
  std::lock_guard lk(mu);
  std::fprintf(stderr, "[gmmav] plan: %s\n", line.c_str());
  std::fflush(stderr);
}

void run_impl(const Plan& plan, const Comm& comm, const OpTensors& t, const PackedWeights* packed,
              std::span<std::byte> workspace) {
  if (!comm) fail(Errc::null_argument, "group", "expected a communicator, got none");
  plan.check(t);
  if (packed) detail::check_packed(*packed, plan, t);
  if (comm.size() != plan.world_size())
    fail(Errc::invalid_argument, "epWorldSize", "expected the group's size {}, got {}", comm.size(), plan.world_size());
  if (comm.rank() != plan.rank())
    fail(Errc::invalid_argument, "rank", "expected the communicator's rank {}, got a plan for rank {}", comm.rank(), plan.rank());
  const comm::Tiling tiling = engine::tiling();
  const std::size_t receive_bytes = receive_buffer_bytes(plan);
  const std::size_t need = receive_bytes + detail::CommAccess::impl(comm).min_workspace_bytes(plan, tiling);
  if (workspace.size() < need)
    fail(Errc::invalid_argument, "workspaceSize", "expected at least {} bytes of workspace, got {}", need, workspace.size());
  if (config::log().plan) log_plan(engine::describe_call(plan, packed, workspace.size(), need));  // a bad GMMAV_LOG throws here

  const ProblemDesc& d = plan.desc();
  const bool dispatch = d.op == Op::dispatch;
  // The dispatch op's rows arrive in permuteOut, or in the receive buffer.
  std::byte* received = dispatch ? (t.permute_out ? static_cast<std::byte*>(t.permute_out->data) : workspace.data()) : nullptr;
  comm::CallInfo mine;
  mine.tiling = tiling;
  mine.op = d.op;
  mine.local_experts = d.local_experts;
  mine.dtype = d.dtype;
  mine.row_width = plan.exchange_width();
  mine.send_counts = d.send_counts;
  mine.recv_counts = d.recv_counts;
  mine.y = dispatch ? static_cast<void*>(received) : t.y.data;
  // For backends whose ranks share memory: no rank's output may be another rank's tensor.
  const auto bytes = [](const auto& v, const char* name) { return comm::TensorBytes{v.data, v.bytes(), name}; };
  mine.inputs[0] = bytes(t.gmm_x, "gmmX");
  mine.inputs[1] = bytes(t.gmm_weight, "gmmWeight");
  mine.outputs[0] = bytes(t.y, dispatch ? "gmmY" : "y");
  if (t.permute_out)
    mine.outputs[2] = bytes(*t.permute_out, "permuteOutOptional");
  else if (receive_bytes)
    mine.outputs[2] = comm::TensorBytes{received, receive_bytes, "workspace"};
  if (t.mm_y) {
    mine.inputs[2] = bytes(*t.mm_x, "mmXOptional");
    mine.inputs[3] = bytes(*t.mm_weight, "mmWeightOptional");
    mine.outputs[1] = bytes(*t.mm_y, "mmYOptional");
  }
  auto ex = detail::CommAccess::impl(comm).meet(mine, workspace.subspan(receive_bytes));
  try {
    if (dispatch) {
      engine::compute_dispatch(plan, t, *ex, received, packed);  // finishes the exchange itself, before the routed GEMMs
      return;
    }
    engine::compute_tiles(plan, t, *ex, packed);
  } catch (const Error& e) {
    ex->abort(e.what());
    throw;
  } catch (const std::bad_alloc&) {  // a buffer sized by the call's shapes (the GEMM's own ones name their weight)
    const std::string msg =
        fmt::format("y: expected host memory for the call's buffers (N1 = {}, H1 = {}), got an allocation failure", d.n1, d.h1);
    ex->abort(msg);
    throw Error(Errc::out_of_memory, "y", msg);
  } catch (const std::exception& e) {  // a library or allocation failure: still a gmmav::Error
    ex->abort(e.what());
    throw Error(Errc::internal, "", std::string("internal error: ") + e.what());
  }
  ex->finish();
}

}  // namespace

void run(const Plan& plan, const Comm& comm, const OpTensors& t, std::span<std::byte> workspace) {
  run_impl(plan, comm, t, nullptr, workspace);
}

void detail::run_packed(const Plan& plan, const Comm& comm, const OpTensors& t, const PackedWeights& packed,
                        std::span<std::byte> workspace) {
  run_impl(plan, comm, t, &packed, workspace);
}

int compute_threads() { return engine::ComputePool::instance().threads(); }
void set_compute_threads(int n) { engine::ComputePool::instance().set_threads(n); }

}  // namespace gmmav
