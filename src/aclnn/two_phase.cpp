// The two phases of the aclnn entry points of both operators (two_phase.hpp).
#include "aclnn/two_phase.hpp"

#include <cstring>
#include <limits>
#include <span>
#include <string_view>

#include "aclnn/executor.hpp"
#include "aclnn/tensor_args.hpp"
#include "aclnn/weight_cache.hpp"
#include "common/config.hpp"
#include "gmmav/gmmav.hpp"
#include "runtime/api_guard.hpp"
#include "runtime/device.hpp"
#include "runtime/hccl_comm.hpp"
#include "runtime/memory_versions.hpp"
#include "runtime/status_codes.hpp"
#include "runtime/stream.hpp"

namespace gmmav::aclnn {
namespace {

using runtime::guarded;
using runtime::kAclnnCodes;
using runtime::raise;

constexpr std::size_t kGroupNameMax = 128;  // vendor HCCL_GROUP_NAME_MAX, incl. the NUL

void require(const void* p, const char* param, const char* what) {
  if (p == nullptr) raise(ACLNN_ERR_PARAM_NULLPTR, param, "expected {}, got null", what);
}

// GMMAV_STRICT_A3=1 adds the A3 hardware envelope (docs/spec.md §5). Read per call: cheap next to planning.
Envelope envelope() { return config::strict_a3() ? Envelope::strict_a3 : Envelope::aclnn; }

// The communication engines a V2 call may name. On a CPU there is one engine:
// the mode is checked and otherwise ignored.
constexpr std::string_view kCommModes[] = {"aiv", "ai_cpu", "ccu"};

void check_comm_mode(const char* mode) {
  for (std::string_view m : kCommModes)
    if (m == mode) return;
  raise(ACLNN_ERR_PARAM_INVALID, "commMode", "expected \"aiv\", \"ai_cpu\" or \"ccu\", got \"{}\"",
        std::string_view(mode, strnlen(mode, 64)));
}

}  // namespace

aclnnStatus prepare(const EntryPoint& entry, const PrepareArgs& a) noexcept {
  return guarded(entry.prepare, kAclnnCodes, [&] {
    const bool dispatch = entry.op == Op::dispatch;
    // 161001: missing required pointers, in the order of docs/spec.md §5.
    require(a.gmm_x, "gmmX", "a tensor");
    require(a.gmm_weight, "gmmWeight", "a tensor");
    require(a.y, entry.y_param, "a tensor");
    require(a.group, "group", "a communicator name");
    if (a.has_comm_mode) require(a.comm_mode, "commMode", "\"aiv\", \"ai_cpu\" or \"ccu\"");
    require(a.send_counts, "sendCounts", "an aclIntArray");
    require(a.recv_counts, "recvCounts", "an aclIntArray");
    require(a.workspace_size, "workspaceSize", "a place to store the workspace size");
    require(a.executor, "executor", "a place to store the executor");
    const int shared = int(a.mm_x != nullptr) + int(a.mm_weight != nullptr) + int(a.mm_y != nullptr);
    if (shared != 0 && shared != 3)
      raise(ACLNN_ERR_PARAM_NULLPTR,
            !a.mm_x        ? "mmXOptional"
            : !a.mm_weight ? "mmWeightOptional"
                           : "mmYOptional",
            "expected mmXOptional, mmWeightOptional and mmYOptional all given or all null, got {} of 3", shared);
    if (dispatch && a.permute_out_flag != (a.permute_out != nullptr))
      raise(ACLNN_ERR_PARAM_NULLPTR, "permuteOutOptional", "expected {} with permuteOutFlag = {}, got {}",
            a.permute_out_flag ? "a tensor" : "null", a.permute_out_flag, a.permute_out ? "a tensor" : "null");

    // The vendor's dispatch op reports the unsupported count tensors and an
    // empty group as missing arguments (161001), its combine op as invalid ones.
    const int unsupported = dispatch ? ACLNN_ERR_PARAM_NULLPTR : ACLNN_ERR_PARAM_INVALID;
    if (a.send_counts_tensor != nullptr)
      raise(unsupported, "sendCountsTensorOptional", "expected null (not supported; pass sendCounts), got a tensor");
    if (a.recv_counts_tensor != nullptr)
      raise(unsupported, "recvCountsTensorOptional", "expected null (not supported; pass recvCounts), got a tensor");
    const std::size_t name_len = strnlen(a.group, kGroupNameMax);
    if (name_len == 0) raise(unsupported, "group", "expected a communicator name, got an empty string");

    // 161002: what only this interface can get wrong.
    if (a.has_comm_mode) check_comm_mode(a.comm_mode);
    if (name_len >= kGroupNameMax)
      raise(ACLNN_ERR_PARAM_INVALID, "group", "expected a name shorter than {} characters, got {} or more", kGroupNameMax,
            kGroupNameMax);
    if (a.ep_world_size < 1 || a.ep_world_size > std::numeric_limits<int>::max())
      raise(ACLNN_ERR_PARAM_INVALID, "epWorldSize", "expected a rank count >= 1, got {}", a.ep_world_size);
    const std::string name(a.group, name_len);
    const runtime::ResolvedGroup resolved = runtime::resolve_group(name, runtime::current_device());
    const Comm& comm = resolved.comm;
    if (comm.size() != a.ep_world_size)
      raise(ACLNN_ERR_PARAM_INVALID, "epWorldSize", "expected the size of group '{}', {}, got {}", name, comm.size(),
            a.ep_world_size);

    OpTensors t;
    t.gmm_x = input_view(*a.gmm_x, "gmmX", 2);
    t.gmm_weight = input_view(*a.gmm_weight, "gmmWeight", 3);
    t.y = output_view(*a.y, entry.y_param, 2);
    if (shared == 3) {
      t.mm_x = input_view(*a.mm_x, "mmXOptional", 2);
      t.mm_weight = input_view(*a.mm_weight, "mmWeightOptional", 2);
      t.mm_y = output_view(*a.mm_y, "mmYOptional", 2);
    }
    if (dispatch && a.permute_out) t.permute_out = output_view(*a.permute_out, "permuteOutOptional", 2);
    // Everything else — shapes, counts, ranges, contiguity, overlaps — is the Plan's.
    Plan plan = Plan::from_tensors(comm.size(), comm.rank(), a.send_counts->values, a.recv_counts->values, t, a.trans_gmm_weight,
                                   a.trans_mm_weight, envelope(), entry.op);
    const std::size_t ws = workspace_size(plan, comm);
    weight_cache_enabled();  // a malformed GMMAV_WEIGHT_CACHE_MB is this call's error
    auto e = std::make_unique<aclOpExecutor>(
        aclOpExecutor{plan, comm, t, ws, fmt::format("rank {} of group '{}'", comm.rank(), name), resolved.device});
    *a.workspace_size = ws;
    *a.executor = adopt_executor(std::move(e));
    return ACLNN_SUCCESS;
  });
}

aclnnStatus execute(const EntryPoint& entry, void* workspace, std::uint64_t workspace_size, aclOpExecutor* executor,
                    aclrtStream stream) noexcept {
  return guarded(entry.run, kAclnnCodes, [&] {
    if (executor == nullptr) raise(ACLNN_ERR_PARAM_NULLPTR, "executor", "expected an executor from {}, got null", entry.prepare);
    const aclOpExecutor* live = find_executor(executor);
    if (live == nullptr)
      raise(ACLNN_ERR_PARAM_INVALID, "executor", "expected a live executor, got {} (already run, destroyed or never created)",
            static_cast<const void*>(executor));
    // An executor prepared for the other operator would run it under this one's name.
    if (live->plan.op() != entry.op)
      raise(ACLNN_ERR_PARAM_INVALID, "executor", "expected an executor of the {} op (from {}), got one of the {} op",
            to_string(entry.op), entry.prepare, to_string(live->plan.op()));
    if (workspace_size < live->workspace)
      raise(ACLNN_ERR_PARAM_INVALID, "workspaceSize", "expected at least {} bytes (from phase 1), got {}", live->workspace,
            workspace_size);
    if (workspace == nullptr && workspace_size > 0)
      raise(ACLNN_ERR_PARAM_NULLPTR, "workspace", "expected {} bytes of workspace, got null", workspace_size);
    runtime::Stream* s = nullptr;
    try {
      s = &runtime::resolve_stream(stream);
    } catch (const runtime::ApiError& err) {  // a bad stream is a bad argument of this call
      throw runtime::ApiError(stream == nullptr ? ACLNN_ERR_PARAM_NULLPTR : ACLNN_ERR_PARAM_INVALID, err.what());
    }
    // Two ranks' calls queued on one stream would wait for each other forever:
    // a rank's calls go to a stream of its own device.
    if (live->device >= 0 && s->device() != live->device)
      raise(ACLNN_ERR_PARAM_INVALID, "stream", "expected a stream of device {} (the device of {}), got a stream of device {}",
            live->device, live->who, s->device());
    // Consumed from here on: a failure of the run is the stream's error.
    std::shared_ptr<aclOpExecutor> e = take_executor(executor);
    if (!e) raise(ACLNN_ERR_PARAM_INVALID, "executor", "expected a live executor, got one consumed concurrently");
    const std::span<std::byte> ws(static_cast<std::byte*>(workspace), workspace != nullptr ? workspace_size : 0);
    const char* run_name = entry.run;  // a string literal: outlives the queued work
    s->enqueue([e, ws, run_name]() -> runtime::WorkResult {
      // This rank's outputs are written by the call (peers write into them too, but only between this
      // call's meet and its end): new write versions before and after, so nothing derived from
      // them earlier (packed weights) is trusted later.
      const OpTensors& t = e->tensors;
      const auto note_outputs = [&t] {
        runtime::note_write(t.y.data, t.y.bytes());
        if (t.mm_y) runtime::note_write(t.mm_y->data, t.mm_y->bytes());
        if (t.permute_out) runtime::note_write(t.permute_out->data, t.permute_out->bytes());
      };
      note_outputs();
      struct NoteAtExit {
        decltype(note_outputs)& f;
        ~NoteAtExit() { f(); }
      } note_at_exit{note_outputs};
      try {
        if (auto packed = cached_weights(e->plan, t))
          gmmav::run(e->plan, e->comm, t, *packed, ws);
        else
          gmmav::run(e->plan, e->comm, t, ws);
        return {};
      } catch (const Error& err) {
        return {runtime::kStreamWorkCodes.of(err.code()), fmt::format("{} ({}): {}", run_name, e->who, err.what())};
      } catch (const std::bad_alloc&) {
        return {runtime::kStreamWorkCodes.no_memory, fmt::format("{} ({}): out of host memory", run_name, e->who)};
      }
    });
    return ACLNN_SUCCESS;
  });
}

}  // namespace gmmav::aclnn
